/**
 * The mass-change guard (src/domain/guard.ts) on plans of the reference policy: a suspension
 * of 12 named users needs approval and says so with the numbers; a small contract's suspension,
 * and a removal of a few, do not; more than maxAccounts always does; the approvals file
 * configures it; an invalid plan is left alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRuleset, planAmendment, type AppliedState } from '../../src/domain';
import type { Amendment } from '../../src/domain/amendment';
import type { Contract } from '../../src/domain/contract';
import { DEFAULT_MASS_CHANGE_GUARD, guarded, MASS_CHANGE_RULE } from '../../src/domain/guard';
import { governancePolicyFrom } from '../../src/worker/config';

const ROOT = join(__dirname, '..', '..');
const rules = loadRuleset(readFileSync(join(ROOT, 'examples', 'reference', 'rules.yaml'), 'utf8'), 'rules.yaml');

function contract(users: number): Contract {
  return {
    customer: { id: 'big', name: 'Big' },
    status: 'active',
    tier: 'enterprise',
    seats: users + 10,
    modules: [],
    namedUsers: Array.from({ length: users }, (_, i) => ({
      email: `u${i}@big.test`,
      name: `User ${i}`,
      role: 'member' as const,
    })),
    term: { start: '2026-01-01' },
    region: 'eu',
    custom: {},
  };
}

const applied = (c: Contract): AppliedState => ({ contract: c, sequence: 1, amendmentId: 'big-001', previous: null });
const amend = (changes: Amendment['changes']): Amendment => ({
  amendmentId: 'big-002',
  contractId: 'big-msa',
  sequence: 2,
  submittedBy: 'crm',
  changes,
});
const suspend = amend([{ op: 'set', path: 'status', value: 'suspended' }]);

test('suspending 12 named users needs approval, and the reason names the numbers', () => {
  const plan = guarded(planAmendment(suspend, applied(contract(12)), rules), DEFAULT_MASS_CHANGE_GUARD);
  expect(plan.approval.required).toBe(true);
  expect(plan.approval.reasons).toEqual([
    {
      ruleId: MASS_CHANGE_RULE,
      message: expect.stringMatching(
        /^deactivates 12 of the contract's 12 accounts \(100%\): more than the mass-change guard allows without approval \(100 accounts, or 20% of 10 or more\)$/,
      ),
    },
  ]);
});

test('a small contract suspended, or 2 of 12 users removed, pass without the guard', () => {
  const small = guarded(planAmendment(suspend, applied(contract(4)), rules), DEFAULT_MASS_CHANGE_GUARD);
  expect(small.approval).toEqual({ required: false, reasons: [] });
  const two = amend([
    { op: 'remove', path: 'namedUsers', match: { email: 'u0@big.test' } },
    { op: 'remove', path: 'namedUsers', match: { email: 'u1@big.test' } },
  ]);
  const few = guarded(planAmendment(two, applied(contract(12)), rules), DEFAULT_MASS_CHANGE_GUARD);
  expect(few.operations.filter((o) => o.action === 'deactivateAccount').length).toBe(4); // two people, two targets
  expect(few.approval).toEqual({ required: false, reasons: [] });
});

test('more than maxAccounts always trips it; the approvals file sets the thresholds', () => {
  const guard = governancePolicyFrom({ massChangeGuard: { maxAccounts: 3, maxPercent: 50, minAccounts: 1 } }).guard;
  expect(guard).toEqual({ maxAccounts: 3, maxPercent: 50, minAccounts: 1 });
  const two = amend([
    { op: 'remove', path: 'namedUsers', match: { email: 'u0@big.test' } },
    { op: 'remove', path: 'namedUsers', match: { email: 'u1@big.test' } },
  ]);
  expect(guarded(planAmendment(two, applied(contract(12)), rules), guard).approval.required).toBe(false); // 2 of 12: under 3 and under 50%
  const plan = guarded(planAmendment(suspend, applied(contract(12)), rules), guard);
  expect(plan.approval.reasons.map((r) => r.message)).toEqual([
    expect.stringContaining('deactivates 12 of the contract'),
  ]);
  expect(governancePolicyFrom({}).guard).toEqual(DEFAULT_MASS_CHANGE_GUARD);
  expect(() => governancePolicyFrom({ massChangeGuard: { maxPercent: 120 } }, 'approvals.yaml')).toThrow(
    /massChangeGuard\.maxPercent/,
  );
});

test('an invalid plan is left as it is: it changes nothing', () => {
  const tooMany = amend([
    { op: 'set', path: 'seats', value: 1 },
    { op: 'set', path: 'status', value: 'suspended' },
  ]);
  const plan = guarded(planAmendment(tooMany, applied(contract(12)), rules), DEFAULT_MASS_CHANGE_GUARD);
  expect(plan.violations.length).toBeGreaterThan(0);
  expect(plan.approval.required).toBe(false);
});
