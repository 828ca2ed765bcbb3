/**
 * The ruleset the worker plans with: read from a file, re-read when the file changes,
 * so a policy update reaches running workers without a restart. The plan records the
 * ruleset hash, so the audit trail says which policy decided.
 */
import { statSync } from 'node:fs';
import type { Amendment } from '../domain/amendment';
import { type AppliedState, loadRuleset, planAmendment, type Ruleset } from '../domain';
import { DEFAULT_MASS_CHANGE_GUARD, guarded, type MassChangeGuard } from '../domain/guard';
import type { Plan } from '../domain/plan';
import { readDocumentFile } from './config';

export interface RulesProvider {
  plan(amendment: Amendment, applied: AppliedState | null): Plan;
  /** The ruleset itself (drift derives what targets should hold from it); absent: drift cannot check. */
  current?(): Ruleset;
  /** The mass-change guard (drift's repairs honour it too). */
  readonly guard?: MassChangeGuard;
}

export class FileRulesProvider implements RulesProvider {
  private cached: { mtimeMs: number; size: number; ruleset: Ruleset } | undefined;
  /** `guard`: the mass-change guard of the approvals file (default: DEFAULT_MASS_CHANGE_GUARD). */
  constructor(
    readonly file: string,
    readonly guard: MassChangeGuard = DEFAULT_MASS_CHANGE_GUARD,
  ) {
    this.current(); // fail fast on a bad file
  }

  current(): Ruleset {
    let st;
    try {
      st = statSync(this.file);
    } catch {
      readDocumentFile(this.file, 'rules file', 'AMENDCTL_RULES'); // throws the InputError naming why
    }
    if (!this.cached || this.cached.mtimeMs !== st!.mtimeMs || this.cached.size !== st!.size) {
      this.cached = {
        mtimeMs: st!.mtimeMs,
        size: st!.size,
        ruleset: loadRuleset(readDocumentFile(this.file, 'rules file', 'AMENDCTL_RULES'), this.file),
      };
    }
    return this.cached.ruleset;
  }

  plan(amendment: Amendment, applied: AppliedState | null): Plan {
    return guarded(planAmendment(amendment, applied, this.current()), this.guard);
  }
}
