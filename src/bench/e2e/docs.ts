/**
 * The bench's amendment documents (reference policy, examples/reference) and the floor's
 * operations for each: the amendctl planner's dry run (as `amendctl plan` does) counts the
 * operations per target, and the floor runs that many no-ops on that target.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AmendmentInput, AmendmentSchema } from '../../domain/amendment';
import type { Role } from '../../domain/contract';
import { type AppliedState, planAmendment } from '../../domain/planner';
import { loadRuleset, type Ruleset } from '../../domain/rules';
import type { FloorLane } from '../floor-workflows';
import { ROOT } from './stack';

export const REFERENCE_TARGETS = join(ROOT, 'examples', 'reference', 'targets.yaml');
export const REFERENCE_RULES = join(ROOT, 'examples', 'reference', 'rules.yaml');

export interface Customer {
  id: string;
  contractId: string;
  email(local: string): string;
}

/** Ids unique to this bench run, short enough for the warehouse's 63-byte role names. */
export class Docs {
  readonly tag = randomBytes(3).toString('hex');
  private ruleset: Ruleset | undefined;

  customer(kind: string, i: number): Customer {
    const id = `b${this.tag}-${kind}${i}`;
    return { id, contractId: `${id}-msa`, email: (local) => `${local}@${id}.test` };
  }

  /** A baseline with `users` named users (`u1`, `u2`, ...), roles cycling through `roles`; seats cover them. */
  baseline(c: Customer, users: number, roles: Role[] = ['member', 'viewer']): AmendmentInput {
    return {
      amendmentId: `${c.id}-1`,
      contractId: c.contractId,
      sequence: 1,
      submittedBy: 'contracts-system',
      contract: {
        customer: { id: c.id, name: `Bench customer ${c.id}` },
        status: 'active',
        tier: 'professional',
        seats: Math.max(10, users),
        modules: ['analytics'],
        namedUsers: Array.from({ length: users }, (_, i) => ({
          email: c.email(`u${i + 1}`),
          name: `User ${i + 1}`,
          role: roles[i % roles.length]!,
        })),
        term: { start: '2026-01-01' },
        region: 'eu',
        custom: {},
      },
    };
  }

  /** One named user added (5 operations under the reference policy, one module). */
  addUser(c: Customer, sequence: number, local: string, role: Role = 'member'): AmendmentInput {
    return {
      amendmentId: `${c.id}-${sequence}`,
      contractId: c.contractId,
      sequence,
      submittedBy: 'contracts-system',
      changes: [{ op: 'add', path: 'namedUsers', value: { email: c.email(local), name: local, role } }],
    };
  }

  /** One named user's role changed (4 operations: leave and join on idp, revoke and grant on warehouse). */
  setRole(c: Customer, sequence: number, local: string, role: Role): AmendmentInput {
    return {
      amendmentId: `${c.id}-${sequence}`,
      contractId: c.contractId,
      sequence,
      submittedBy: 'contracts-system',
      changes: [{ op: 'set', path: 'namedUsers.role', match: { email: c.email(local) }, value: role }],
    };
  }

  /** The plan's dry run: operations per target (the floor's lanes), and the applied state after it. */
  plan(
    doc: AmendmentInput,
    applied: AppliedState | null = null,
  ): { lanes: FloorLane[]; operations: number; approval: boolean; applied: AppliedState } {
    this.ruleset ??= loadRuleset(readFileSync(REFERENCE_RULES, 'utf8'), REFERENCE_RULES);
    const amendment = AmendmentSchema.parse(doc);
    const plan = planAmendment(amendment, applied, this.ruleset);
    if (plan.violations.length > 0)
      throw new Error(
        `bench document ${amendment.amendmentId} is invalid: ${plan.violations.map((v) => v.message).join('; ')}`,
      );
    const counts = new Map<string, number>();
    for (const op of plan.operations) counts.set(op.target, (counts.get(op.target) ?? 0) + 1);
    return {
      lanes: [...counts].map(([target, n]) => ({ target, n })),
      operations: plan.operations.length,
      approval: plan.approval.required,
      applied: {
        contract: plan.after,
        sequence: amendment.sequence,
        amendmentId: amendment.amendmentId,
        previous: plan.before,
      },
    };
  }
}

export const lanesText = (lanes: FloorLane[]): string => lanes.map((l) => `${l.target} ${l.n}`).join(', ');
