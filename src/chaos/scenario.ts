/**
 * The chaos run's contracts and amendments, from a seed: per contract a baseline (sequence 1)
 * with a few named users, then single changes (a user added, re-added or removed, a role
 * changed, a module added or removed, the contract suspended or reactivated), each planned
 * with the domain core against the contract the previous one produced, so every amendment
 * is valid. None needs approval: roles are member and viewer only (the reference policy asks
 * for approval when admin is granted or a contract is terminated, and neither happens here).
 * Emails are unique per contract (an own email domain): no account is shared by contracts.
 */
import { type Amendment, type AmendmentInput, AmendmentSchema, type Edit } from '../domain/amendment';
import type { Contract, NamedUser, Role } from '../domain/contract';
import type { Plan } from '../domain/plan';
import { type AppliedState, appliedAfter, planAmendment } from '../domain/planner';
import type { Ruleset } from '../domain/rules';
import { Rng } from './rng';

export const CHAOS_ROLES: readonly Role[] = ['member', 'viewer'];
export const CHAOS_MODULES: readonly string[] = ['analytics', 'billing', 'reports', 'exports'];
const BASELINE_USERS = 3;
const SEATS = 8;

export interface ContractScenario {
  customerId: string;
  contractId: string;
  /** The email domain of this contract's named users (and nobody else's). */
  domain: string;
  /** By sequence: amendments[0] is sequence 1. */
  amendments: Amendment[];
  /** The planner's plan of each, in sequence order, as if each completed. */
  plans: Plan[];
  /** The contract the last amendment produces. */
  final: Contract;
  /** Everyone the contract ever named, by email: each has an account in every target. */
  everNamed: Map<string, NamedUser>;
}

export interface Scenario {
  /** Part of every id of this run, so a run on shared servers never meets another's accounts. */
  tag: string;
  contracts: ContractScenario[];
  /** Every amendment of every contract, in the (shuffled) order they are submitted. */
  submissionOrder: Amendment[];
}

export interface ScenarioOptions {
  contracts: number;
  amendments: number;
  seed: number;
  tag: string;
}

export function generateScenario(opts: ScenarioOptions, ruleset: Ruleset): Scenario {
  const contracts = Array.from({ length: opts.contracts }, (_, i) =>
    generateContract(
      `c${opts.tag}-${String(i + 1).padStart(2, '0')}`,
      opts.amendments,
      Rng.stream(opts.seed, `contract ${i}`),
      ruleset,
    ),
  );
  const all = contracts.flatMap((c) => c.amendments);
  return { tag: opts.tag, contracts, submissionOrder: Rng.stream(opts.seed, 'submission order').shuffle(all) };
}

function generateContract(customerId: string, count: number, rng: Rng, ruleset: Ruleset): ContractScenario {
  const contractId = `${customerId}-msa`;
  const domain = `${customerId}.test`;
  const user = (n: number): NamedUser => ({ email: `u${n}@${domain}`, name: `User ${n}`, role: rng.pick(CHAOS_ROLES) });
  let nextUser = 1;
  const baseline: AmendmentInput = {
    amendmentId: amendmentIdFor(customerId, 1),
    contractId,
    sequence: 1,
    submittedBy: 'chaos',
    contract: {
      customer: { id: customerId, name: `Chaos customer ${customerId}` },
      status: 'active',
      tier: 'professional',
      seats: SEATS,
      modules: ['analytics'],
      namedUsers: Array.from({ length: BASELINE_USERS }, () => user(nextUser++)),
      term: { start: '2026-01-01' },
      region: 'eu',
      custom: {},
    },
  };
  const amendments: Amendment[] = [];
  const plans: Plan[] = [];
  const everNamed = new Map<string, NamedUser>();
  let applied: AppliedState | null = null;
  const accept = (doc: AmendmentInput): void => {
    const amendment = AmendmentSchema.parse(doc);
    const plan = planAmendment(amendment, applied, ruleset);
    // The generator only makes valid amendments that need no approval; anything else is its own bug.
    if (plan.violations.length > 0)
      throw new Error(
        `chaos scenario: ${amendment.amendmentId} is invalid: ${plan.violations.map((v) => v.message).join('; ')}`,
      );
    if (plan.approval.required)
      throw new Error(
        `chaos scenario: ${amendment.amendmentId} needs approval: ${plan.approval.reasons.map((r) => r.message).join('; ')}`,
      );
    amendments.push(amendment);
    plans.push(plan);
    applied = appliedAfter(plan, applied);
    for (const u of plan.after.namedUsers) everNamed.set(u.email, u);
  };
  accept(baseline);
  for (let sequence = 2; sequence <= count; sequence++) {
    const current = applied!.contract;
    const changes = nextEdits(current, [...everNamed.values()], () => user(nextUser++), rng);
    accept({ amendmentId: amendmentIdFor(customerId, sequence), contractId, sequence, submittedBy: 'chaos', changes });
  }
  return { customerId, contractId, domain, amendments, plans, final: applied!.contract, everNamed };
}

export const amendmentIdFor = (customerId: string, sequence: number): string =>
  `${customerId}-${String(sequence).padStart(3, '0')}`;

interface Candidate {
  weight: number;
  make(): Edit[];
}

/** The edits of one change that applies to `c`, drawn by weight among those that can. */
function nextEdits(c: Contract, everNamed: NamedUser[], newUser: () => NamedUser, rng: Rng): Edit[] {
  const named = new Set(c.namedUsers.map((u) => u.email));
  const removed = everNamed.filter((u) => !named.has(u.email));
  const unlicensed = CHAOS_MODULES.filter((m) => !c.modules.includes(m));
  const seatFree = c.namedUsers.length < c.seats;
  const candidates: Candidate[] = [
    { weight: seatFree ? 3 : 0, make: () => [{ op: 'add', path: 'namedUsers', value: { ...newUser() } }] },
    {
      weight: seatFree && removed.length > 0 ? 1 : 0,
      make: () => [{ op: 'add', path: 'namedUsers', value: { ...rng.pick(removed), role: rng.pick(CHAOS_ROLES) } }],
    },
    {
      weight: c.namedUsers.length > 1 ? 2 : 0,
      make: () => [{ op: 'remove', path: 'namedUsers', match: { email: rng.pick(c.namedUsers).email } }],
    },
    {
      weight: c.namedUsers.length > 0 ? 3 : 0,
      make: () => {
        const u = rng.pick(c.namedUsers);
        return [
          {
            op: 'set',
            path: 'namedUsers.role',
            match: { email: u.email },
            value: u.role === 'member' ? 'viewer' : 'member',
          },
        ];
      },
    },
    {
      weight: unlicensed.length > 0 ? 2 : 0,
      make: () => [{ op: 'add', path: 'modules', value: rng.pick(unlicensed) }],
    },
    {
      weight: c.modules.length > 0 ? 1 : 0,
      make: () => [{ op: 'remove', path: 'modules', value: rng.pick(c.modules) }],
    },
    { weight: c.status === 'active' ? 1 : 0, make: () => [{ op: 'set', path: 'status', value: 'suspended' }] },
    { weight: c.status === 'suspended' ? 6 : 0, make: () => [{ op: 'set', path: 'status', value: 'active' }] },
  ];
  const total = candidates.reduce((n, x) => n + x.weight, 0);
  let r = rng.between(0, total);
  for (const x of candidates) {
    if (r < x.weight) return x.make();
    r -= x.weight;
  }
  throw new Error('chaos scenario: no change applies'); // unreachable: a role change always applies
}
