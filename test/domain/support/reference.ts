/** The reference policy and the acme story, read from examples/reference/. */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Amendment } from '../../../src/domain/amendment';
import { parseAmendmentText } from '../../../src/domain/document';
import type { Plan } from '../../../src/domain/plan';
import { type AppliedState, appliedAfter, planAmendment } from '../../../src/domain/planner';
import { type Ruleset, loadRuleset } from '../../../src/domain/rules';

export const ROOT = resolve(__dirname, '..', '..', '..');
export const REFERENCE = join(ROOT, 'examples', 'reference');

export function referenceRules(): Ruleset {
  return loadRuleset(readFileSync(join(REFERENCE, 'rules.yaml'), 'utf8'), 'examples/reference/rules.yaml');
}

export function amendmentFile(rel: string): Amendment {
  return parseAmendmentText(readFileSync(join(REFERENCE, rel), 'utf8'), rel);
}

export const STORY = [
  '01-baseline.json',
  '02-add-dave-and-billing.json',
  '03-role-and-name.json',
  '04-suspend.json',
  '05-reactivate.json',
  '06-too-many-users.invalid.json',
  '07-reverse-05.json',
  '08-terminate.json',
] as const;

/** The applied state after the story's amendments before `name` (as if each completed). */
export function stateBefore(name: (typeof STORY)[number], rules: Ruleset): AppliedState | null {
  let state: AppliedState | null = null;
  for (const f of STORY) {
    if (f === name) return state;
    state = appliedAfter(planAmendment(amendmentFile(`amendments/${f}`), state, rules), state);
  }
  throw new Error(`${name} is not in the story`);
}

export function planStory(name: (typeof STORY)[number], rules = referenceRules()): Plan {
  return planAmendment(amendmentFile(`amendments/${name}`), stateBefore(name, rules), rules);
}

export function amendment(over: Partial<Amendment> & Pick<Amendment, 'sequence'>): Amendment {
  return { amendmentId: `test-${over.sequence}`, contractId: 'acme-msa', submittedBy: 'test', ...over } as Amendment;
}
