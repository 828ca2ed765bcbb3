import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../src/domain/plan';
import { planAmendment } from '../../src/domain/planner';
import { amendmentFromWebhook, loadWebhookMapping } from '../../src/api/webhooks/mapping';
import { ROOT, amendmentFile, referenceRules, stateBefore } from './support/reference';

const rules = referenceRules();

/** The plan without provenance (clause refs and spans), which only the text form has. */
function comparable(p: Plan): unknown {
  return {
    ...p,
    changes: p.changes.map(({ source: _source, ...c }) => c),
    approval: { ...p.approval, reasons: p.approval.reasons.map(({ refs: _refs, ...r }) => r) },
  };
}

describe('one amendment, three forms (and a webhook): the same plan', () => {
  it('02 as changes, as a contract snapshot, as clause text and as a webhook', () => {
    const applied = stateBefore('02-add-dave-and-billing.json', rules);
    const changes = planAmendment(amendmentFile('amendments/02-add-dave-and-billing.json'), applied, rules);
    const contract = planAmendment(amendmentFile('forms/02-add-dave-and-billing.contract.json'), applied, rules);
    const clauses = planAmendment(amendmentFile('forms/02-add-dave-and-billing.clauses.json'), applied, rules);
    const mapping = loadWebhookMapping(
      readFileSync(join(ROOT, 'examples/webhook/mapping.yaml'), 'utf8'),
      'examples/webhook/mapping.yaml',
    );
    const hook = planAmendment(
      amendmentFromWebhook(JSON.parse(readFileSync(join(ROOT, 'examples/webhook/amendment-02.json'), 'utf8')), mapping),
      applied,
      rules,
    );
    expect(changes.operations.length).toBe(9);
    expect(comparable(contract)).toEqual(comparable(changes));
    expect(comparable(clauses)).toEqual(comparable(changes));
    expect(comparable(hook)).toEqual(comparable(changes));
    // the text form says where each change came from
    expect(clauses.changes.map((c) => [c.path, c.source?.ref, c.source?.span])).toEqual([
      ['modules[billing]', '3.1', 'Licensed modules: Analytics and Billing'],
      ['namedUsers[dave@acme.com]', '4.2', '4. Dave Davis (dave@acme.com) – Member'],
    ]);
  });

  it('01 baseline as a contract snapshot, as clause text and as a webhook', () => {
    const contract = planAmendment(amendmentFile('amendments/01-baseline.json'), null, rules);
    const clauses = planAmendment(amendmentFile('forms/01-baseline.clauses.json'), null, rules);
    const mapping = loadWebhookMapping(
      readFileSync(join(ROOT, 'examples/webhook/mapping.yaml'), 'utf8'),
      'examples/webhook/mapping.yaml',
    );
    const hookAmendment = amendmentFromWebhook(
      JSON.parse(readFileSync(join(ROOT, 'examples/webhook/baseline.json'), 'utf8')),
      mapping,
    );
    const hook = planAmendment({ ...hookAmendment, amendmentId: 'acme-msa-001' }, null, rules);
    expect(clauses.violations).toEqual([]);
    expect(comparable(clauses)).toEqual(comparable(contract));
    expect(comparable(hook)).toEqual(comparable(contract));
    expect(clauses.approval.reasons[0]!.refs).toEqual(['4.2']);
  });

  it('a difference in the text shows: another role gives another plan', () => {
    const applied = stateBefore('02-add-dave-and-billing.json', rules);
    const a = amendmentFile('forms/02-add-dave-and-billing.clauses.json');
    const edited = {
      ...a,
      clauses: a.clauses!.map((c) => ({
        ...c,
        text: c.text.replace('Dave Davis (dave@acme.com) – Member', 'Dave Davis (dave@acme.com) – Administrator'),
      })),
    };
    const plan = planAmendment(edited, applied, rules);
    expect(plan.operations.map((o) => o.id)).toContain('warehouse:grantRole:dave@acme.com:app_admin');
    expect(plan.approval.required).toBe(true);
  });
});
