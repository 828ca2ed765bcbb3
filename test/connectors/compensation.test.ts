/**
 * Issue 15: one source of compensation (src/connectors/compensation.ts). Pure: what compensating an
 * applied operation takes, decided from the planner's inverse and the facts of the prior
 * state, the same for every connector; and the inverse the conformance suite compensates with
 * (plannerInverse) is the one the planner and drift's repairs give. The connectors performing
 * these steps against real servers are checked by the conformance suite (conformance.ts).
 */
import { compensationStep, type PriorFacts } from '../../src/connectors/compensation';
import type { ApplyResult, CompensationSpec } from '../../src/connectors/types';
import { type Difference, repairOperations } from '../../src/domain/drift';
import type { Action } from '../../src/domain/plan';
import type { JsonValue } from '../../src/domain/json';
import { planStory } from '../domain/support/reference';
import { plannedOperation, plannerInverse } from './conformance';

const applied: ApplyResult = { outcome: 'applied', prior: null };
const op = (
  action: Action,
  params: Record<string, JsonValue> = {},
  attributesBefore?: Record<string, string>,
): CompensationSpec => plannedOperation('t', action, 'ann@example.test', params, attributesBefore);
const account = (existed: boolean, active?: boolean): PriorFacts => ({
  kind: 'account',
  existed,
  ...(active === undefined ? {} : { active }),
});
const membership = (member: boolean, created = false): PriorFacts => ({ kind: 'membership', member, created });

describe('compensationStep: the inverse, with the facts of the prior state', () => {
  test('an operation that changed nothing is compensated by nothing, whatever its inverse', () => {
    expect(compensationStep(op('joinGroup', { group: 'g' }), { outcome: 'unchanged', prior: null }, null)).toEqual({
      action: 'none',
      detail: 'the operation changed nothing',
    });
  });

  test('removeAccount: removes an account the operation created, restores one that existed', () => {
    expect(compensationStep(op('ensureAccount'), applied, account(false))).toEqual({ action: 'removeAccount' });
    expect(compensationStep(op('ensureAccount'), applied, account(true, false))).toEqual({ action: 'restoreAccount' });
  });

  test('restoreAttributes: the attributes the operation set and its inverse names', () => {
    const o = op('updateAttributes', { attributes: { displayName: 'New', email: 'new@x' } }, { displayName: 'Old' });
    expect(compensationStep(o, applied, account(true))).toEqual({
      action: 'restoreAttributes',
      attributes: ['displayName', 'email'],
    });
    expect(compensationStep(op('updateAttributes', { attributes: {} }), applied, account(true))).toMatchObject({
      action: 'none',
    });
  });

  test('reactivateAccount / deactivateAccount: performed unless the account already was so', () => {
    expect(compensationStep(op('deactivateAccount'), applied, account(true, true))).toEqual({
      action: 'reactivateAccount',
    });
    expect(compensationStep(op('deactivateAccount'), applied, account(true))).toEqual({ action: 'reactivateAccount' });
    expect(compensationStep(op('deactivateAccount'), applied, account(true, false))).toMatchObject({ action: 'none' });
    expect(compensationStep(op('reactivateAccount'), applied, account(true, false))).toEqual({
      action: 'deactivateAccount',
    });
  });

  test('compensating a join or a grant: nothing when it found the member there; the group goes when the join created it', () => {
    expect(compensationStep(op('joinGroup', { group: 'g' }), applied, membership(false))).toEqual({
      action: 'leaveGroup',
      name: 'g',
      created: false,
    });
    expect(compensationStep(op('joinGroup', { group: 'g' }), applied, membership(false, true))).toEqual({
      action: 'leaveGroup',
      name: 'g',
      created: true,
    });
    expect(compensationStep(op('joinGroup', { group: 'g' }), applied, membership(true))).toMatchObject({
      action: 'none',
    });
    expect(compensationStep(op('grantRole', { role: 'r' }), applied, membership(false))).toEqual({
      action: 'revokeRole',
      name: 'r',
      created: false,
    });
  });

  test('compensating a leave or a revoke: joins again what it was a member of', () => {
    expect(compensationStep(op('leaveGroup', { group: 'g' }), applied, membership(true))).toEqual({
      action: 'joinGroup',
      name: 'g',
    });
    expect(compensationStep(op('leaveGroup', { group: 'g' }), applied, membership(false))).toMatchObject({
      action: 'none',
    });
    expect(compensationStep(op('revokeRole', { role: 'r' }), applied, membership(true))).toEqual({
      action: 'grantRole',
      name: 'r',
    });
  });

  test('an inverse the prior state cannot serve is CompensationImpossible', () => {
    const join = op('joinGroup', { group: 'g' });
    const refused: Array<[CompensationSpec, PriorFacts | null]> = [
      [{ ...join, inverse: undefined as unknown as CompensationSpec['inverse'] }, membership(false)],
      [{ ...join, inverse: { action: 'joinGroup', params: { group: 'g' } } }, membership(false)],
      [{ ...join, inverse: { action: 'leaveGroup', params: { group: 'other' } } }, membership(false)],
      [{ ...join, inverse: { action: 'leaveGroup', params: {} } }, membership(false)],
      [{ ...join, inverse: { action: 'removeAccount', params: {} } }, membership(false)],
      [op('ensureAccount'), membership(false)],
      [join, account(true)],
      [join, null],
    ];
    for (const [o, facts] of refused)
      expect(() => compensationStep(o, applied, facts)).toThrow(
        expect.objectContaining({ name: 'PermanentTargetError', type: 'CompensationImpossible' }),
      );
  });
});

describe('the inverse the conformance suite compensates with is the planner’s', () => {
  test('every operation of the reference plans', () => {
    let n = 0;
    for (const story of [
      '01-baseline.json',
      '02-add-dave-and-billing.json',
      '03-role-and-name.json',
      '04-suspend.json',
      '08-terminate.json',
    ] as const) {
      for (const o of planStory(story).operations) {
        const before =
          o.inverse.action === 'restoreAttributes'
            ? (o.inverse.params['attributes'] as Record<string, string>)
            : undefined;
        expect(plannedOperation(o.target, o.action, o.subject, o.params, before)).toEqual({
          id: o.id,
          target: o.target,
          action: o.action,
          subject: o.subject,
          params: o.params,
          inverse: o.inverse,
        });
        if (before) expect(Object.keys(before).sort()).toEqual(Object.keys(o.params['attributes'] as object).sort());
        n++;
      }
    }
    expect(n).toBeGreaterThan(20);
  });

  test("every kind of drift's repair operations", () => {
    const d = (kind: Difference['kind'], extra: Partial<Difference> = {}): Difference => ({
      target: 'idp',
      kind,
      subject: 'ann@example.test',
      description: kind,
      ...extra,
    });
    const ops = repairOperations(
      [
        d('account_missing'),
        d('account_inactive', { subject: 'bob@example.test' }),
        d('account_active', { subject: 'cy@example.test' }),
        d('membership_missing', { group: 'g', groupKind: 'group' }),
        d('membership_extra', { group: 'h', groupKind: 'group' }),
        d('membership_missing', { group: 'r', groupKind: 'role' }),
        d('membership_extra', { group: 's', groupKind: 'role' }),
        d('attribute_wrong', { attribute: 'displayName', expected: 'New', actual: 'Old' }),
      ],
      { customerId: 'acme', rulesetHash: 'h', targets: new Map() },
    );
    expect(new Set(ops.map((o) => o.action))).toEqual(
      new Set([
        'ensureAccount',
        'reactivateAccount',
        'deactivateAccount',
        'joinGroup',
        'leaveGroup',
        'grantRole',
        'revokeRole',
        'updateAttributes',
      ]),
    );
    for (const o of ops)
      expect(
        plannerInverse(o.action, o.params, o.action === 'updateAttributes' ? { displayName: 'Old' } : undefined),
      ).toEqual(o.inverse);
  });
});
