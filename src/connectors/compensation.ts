/**
 * One source of compensation. The planner gives every operation its inverse
 * (`Operation.inverse`: removeAccount, restoreAttributes, reactivateAccount / deactivateAccount,
 * leaveGroup / joinGroup, revokeRole / grantRole, with their params); a connector's `apply`
 * recorded in `ApplyResult.prior` what the target held before. `compensationStep` decides, from the two
 * and for every connector alike, what compensating the operation takes: nothing, or the inverse
 * action with its params. The prior state supplies only the facts the inverse needs:
 *
 *   removeAccount      the account did not exist before: remove it. It did (an ensure that
 *                      linked, reactivated or changed it): `restoreAccount`, the recorded
 *                      attributes and active state put back, the account kept.
 *   restoreAttributes  the attributes the operation set (and its inverse names) put back to
 *                      the values recorded before.
 *   reactivateAccount, deactivateAccount
 *                      performed, unless the prior state says the account already was so.
 *   leaveGroup, revokeRole (compensating a join or a grant)
 *                      nothing when the subject was a member before (the join found it there);
 *                      else leave, and remove the group or role when the operation created it
 *                      and nobody else is in it.
 *   joinGroup, grantRole (compensating a leave or a revoke)
 *                      join again when the subject was a member before; else nothing.
 *
 * A connector reads its own prior state into `PriorFacts`, gets the step here, and performs
 * it with the exact values it recorded (attributes as they were, the lock value, the access
 * keys...). No connector decides on its own what compensates what.
 */
import type { Action } from '../domain/plan';
import { type ApplyResult, type CompensateResult, type CompensationSpec, PermanentTargetError } from './types';

/** What a connector's recorded prior state says, in the terms the inverse needs. */
export type PriorFacts =
  /** About the account: whether it existed before and (when the connector knows) whether it was active. */
  | { kind: 'account'; existed: boolean; active?: boolean }
  /** About a membership (a group or a role): whether the subject was a member, and whether the operation created the group or role. */
  | { kind: 'membership'; member: boolean; created?: boolean };

/** What compensating an applied operation takes (the inverse, with what the prior state says). */
export type CompensationStep =
  | { action: 'none'; detail: string }
  | { action: 'removeAccount' }
  | { action: 'restoreAccount' }
  | { action: 'restoreAttributes'; attributes: string[] }
  | { action: 'reactivateAccount' | 'deactivateAccount' }
  | { action: 'leaveGroup' | 'revokeRole'; name: string; created: boolean }
  | { action: 'joinGroup' | 'grantRole'; name: string };

/** A step that changes something (not `none`). */
export type CompensationAction = Exclude<CompensationStep, { action: 'none' }>;

function impossible(op: CompensationSpec, why: string): PermanentTargetError {
  return new PermanentTargetError('CompensationImpossible', `${op.target}: cannot compensate ${op.id}: ${why}`);
}

function attributeNames(v: unknown): string[] {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
}

const MEMBERSHIP_KEY: Partial<Record<Action, 'group' | 'role'>> = {
  joinGroup: 'group',
  leaveGroup: 'group',
  grantRole: 'role',
  revokeRole: 'role',
};

/**
 * What compensating `op` takes, given its result and the facts of the prior state its connector
 * recorded (null: a prior state the connector cannot read). Throws CompensationImpossible when
 * the operation carries no usable inverse, or the prior state says nothing about what the
 * inverse needs.
 */
export function compensationStep(
  op: CompensationSpec,
  result: ApplyResult,
  facts: PriorFacts | null,
): CompensationStep {
  if (result.outcome !== 'applied') return { action: 'none', detail: 'the operation changed nothing' };
  const inverse = op.inverse as CompensationSpec['inverse'] | undefined;
  if (!inverse || typeof inverse !== 'object' || typeof inverse.action !== 'string')
    throw impossible(op, 'the operation carries no inverse');
  if (inverse.action === op.action) throw impossible(op, `its inverse is ${inverse.action}, the operation itself`);
  if (!facts) throw impossible(op, "its recorded prior state is not one this connector's apply writes");
  const account = () => {
    if (facts.kind !== 'account')
      throw impossible(
        op,
        `its inverse ${inverse.action} is about the account, its recorded prior state about a membership`,
      );
    return facts;
  };
  switch (inverse.action) {
    case 'removeAccount':
      return account().existed ? { action: 'restoreAccount' } : { action: 'removeAccount' };
    case 'restoreAttributes': {
      account();
      const names = [
        ...new Set([...attributeNames(op.params['attributes']), ...attributeNames(inverse.params['attributes'])]),
      ];
      return names.length > 0
        ? { action: 'restoreAttributes', attributes: names }
        : { action: 'none', detail: 'no attributes to restore' };
    }
    case 'reactivateAccount':
    case 'deactivateAccount': {
      const f = account();
      const active = inverse.action === 'reactivateAccount';
      if (!f.existed) return { action: 'none', detail: 'there was no account before' };
      if (f.active === !active)
        return { action: 'none', detail: `the account was ${f.active ? 'active' : 'inactive'} before` };
      return { action: inverse.action };
    }
    case 'joinGroup':
    case 'leaveGroup':
    case 'grantRole':
    case 'revokeRole': {
      const key = MEMBERSHIP_KEY[inverse.action]!;
      const name = inverse.params[key];
      if (typeof name !== 'string' || name === '')
        throw impossible(op, `its inverse ${inverse.action} names no ${key}`);
      if (op.params[key] !== name)
        throw impossible(
          op,
          `its inverse ${inverse.action} names ${key} ${JSON.stringify(name)}, which the operation did not change`,
        );
      if (facts.kind !== 'membership')
        throw impossible(
          op,
          `its inverse ${inverse.action} is about a membership, its recorded prior state about the account`,
        );
      if (inverse.action === 'joinGroup' || inverse.action === 'grantRole') {
        return facts.member ? { action: inverse.action, name } : { action: 'none', detail: 'not a member before' };
      }
      return facts.member
        ? { action: 'none', detail: 'a member before' }
        : { action: inverse.action, name, created: facts.created === true };
    }
    default:
      throw impossible(
        op,
        `its inverse ${String((inverse as { action: unknown }).action)} is no action a connector compensates with`,
      );
  }
}

/**
 * The connector's `compensate`: the step `compensationStep` decides, performed by `perform` (never
 * called for `none`, which is `unchanged`).
 */
export async function compensateWith(
  op: CompensationSpec,
  result: ApplyResult,
  facts: PriorFacts | null,
  perform: (step: CompensationAction) => Promise<CompensateResult>,
): Promise<CompensateResult> {
  const step = compensationStep(op, result, facts);
  if (step.action === 'none') return { outcome: 'unchanged', detail: step.detail };
  return perform(step);
}

/** A step the recorded prior state (of another kind) has not what it needs for: CompensationImpossible. */
export function priorMismatch(target: string, kind: string, step: CompensationAction): PermanentTargetError {
  return new PermanentTargetError(
    'CompensationImpossible',
    `target ${target}: its recorded prior state (${kind}) does not have what ${step.action} needs`,
  );
}

/** `compensated` with what was done when something changed, else `unchanged` ("already as before"). */
export function compensated(changed: boolean, detail: string, unchangedDetail = 'already as before'): CompensateResult {
  return changed ? { outcome: 'compensated', detail } : { outcome: 'unchanged', detail: unchangedDetail };
}
