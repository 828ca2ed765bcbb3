/**
 * The one interface every Target's Connector implements. Connectors run in the worker
 * (activities), read their credentials from the worker's configuration, and never put a
 * secret in anything they return.
 */
import type { JsonValue } from '../domain/json';
import type { Operation } from '../domain/plan';

/** What a connector needs of an operation (a plan Operation fits). */
export type OperationSpec = Pick<Operation, 'id' | 'target' | 'action' | 'subject' | 'params'>;

/** What compensation needs of an operation: the operation and the planner's inverse of it (a plan Operation fits). */
export type CompensationSpec = OperationSpec & Pick<Operation, 'inverse'>;

/** An account as a target holds it, normalised so the conformance suite can compare targets. */
export interface AccountState {
  subject: string;
  /** The target's own id for it (SCIM id, DN, role name, IAM user name). */
  id: string;
  active: boolean;
  /** Groups or roles it belongs to, sorted. */
  groups: string[];
  /** Target attributes the plan manages (displayName, email, externalId ...). */
  attributes: Record<string, string>;
}

/** Defined with the Operation vocabulary (workflow code reads them too). */
export type { ApplyResult, CompensateResult } from '../domain/plan';
import type { ApplyResult, CompensateResult } from '../domain/plan';

/**
 * What an operation noted before a write whose answer may be lost (a create): kept in the
 * operation store, so a retry, on this worker or another, knows that write was its own and its
 * compensation removes what it created. A connector notes before the write and reads `noted` on
 * the next attempt.
 */
export interface OperationJournal {
  /** What an earlier attempt of this operation noted, if any. */
  readonly noted: JsonValue | undefined;
  /** Keep `value` durably; resolves once it is kept. */
  note(value: JsonValue): Promise<void>;
}

export interface Connector {
  /** The target name from the configuration (`idp`, `warehouse`). */
  readonly target: string;
  /** The connector type (`scim`, `postgres`, `ldap`, `http`, `iam`). */
  readonly type: string;
  /** Current state of one account, or null when the target has none. */
  readAccount(subject: string): Promise<AccountState | null>;
  /** Apply one operation idempotently: look up before create, "already so" is success. `journal`: the operation's own notes across attempts. */
  apply(op: OperationSpec, journal?: OperationJournal): Promise<ApplyResult>;
  /**
   * Optional: many joinGroup (or many leaveGroup) operations of one group at once, for targets
   * where a change per member costs in proportion to the group's size. Each result is that
   * operation's own, as `apply` would give it; a throw means the runner applies them one by one.
   */
  applyGroupChange?(ops: OperationSpec[]): Promise<ApplyResult[]>;
  /** The membership actions `applyGroupChange` takes (default: joinGroup and leaveGroup). */
  readonly groupChangeActions?: readonly OperationSpec['action'][];
  /**
   * Optional: look up, in a few requests, the accounts these operations' `apply` will look up
   * one by one (a batch calls it before its accounts' own operations). A hint only: `apply`
   * uses each answer once, looks again on a retry, and stays correct if the target changes
   * meanwhile (a create that meets a conflict links). May do nothing; never throws for an operation.
   */
  prefetchAccounts?(ops: OperationSpec[]): Promise<void>;
  /**
   * Compensate an applied operation exactly: the operation's inverse (`op.inverse`, the
   * planner's), with the facts of the prior state `apply` recorded (src/connectors/compensation.ts
   * decides which step that is). Idempotent too.
   */
  compensate(op: CompensationSpec, result: ApplyResult): Promise<CompensateResult>;
  /**
   * Optional, read-only (drift): the accounts among `query.subjects` the target holds, and the
   * members of each group or role of `query.groups`, read in pages. A connector without it
   * cannot be checked for drift (reported as "not checked").
   */
  readState?(query: StateQuery): Promise<TargetState>;
  /** Release connections. */
  close(): Promise<void>;
}

/** What a drift check asks a target: the accounts a contract governs and the groups or roles it governs. */
export interface StateQuery {
  subjects: string[];
  groups: Array<{ name: string; kind: 'group' | 'role' }>;
}

/** What a target holds for a StateQuery. */
export interface TargetState {
  /** Each asked subject the target has an account for (not listed: none). */
  accounts: Array<{ subject: string; active: boolean; attributes: Record<string, string> }>;
  /** The members (subjects) of each asked group or role, by name; null when it does not exist. */
  members: Record<string, string[] | null>;
  /** The account attributes this target holds (the others a plan sets are not compared). */
  managedAttributes: string[];
}

/**
 * Every failure type a target failure can have: the one place each is declared and documented.
 * A connector raises the permanent ones as `PermanentTargetError(type, ...)`; the activities turn
 * a `TransientTargetError` into `TargetUnavailable` and anything unclassified into
 * `UnclassifiedTargetError`. The type is the Temporal ApplicationFailure type and the `type` of
 * an operation's failure in the workflow state and the audit. Every connector uses the same type
 * for the same cause (test/connectors/failure-types.test.ts checks no source raises another).
 */
export const FAILURE_TYPES = {
  // ---- permanent: retrying will not fix it; the amendment fails and is compensated
  AccountMissing: {
    kind: 'permanent',
    doc: 'the account the operation acts on does not exist on the target (ensureAccount must come first)',
  },
  UnsupportedAction: { kind: 'permanent', doc: 'the connector cannot perform this action' },
  InvalidParams: {
    kind: 'permanent',
    doc: "the operation's params are missing or malformed (no group or role, attributes not an object)",
  },
  InvalidAttribute: {
    kind: 'permanent',
    doc: 'an attribute the plan sets that this target does not map or cannot hold as given',
  },
  InvalidIdentifier: {
    kind: 'permanent',
    doc: 'a subject, group or role name that cannot be an identifier on this target',
  },
  TargetConflict: {
    kind: 'permanent',
    doc: 'the target holds something that clashes and cannot be linked (duplicates, a lookalike, an entry of another kind)',
  },
  TargetForbidden: { kind: 'permanent', doc: "the target's credentials are not allowed to do this" },
  TargetAuthentication: { kind: 'permanent', doc: "the target refused the worker's credentials (wrong or expired)" },
  TargetMisconfigured: {
    kind: 'permanent',
    doc: "the worker's configuration of the target is wrong or incomplete (secret unset, base DN or role missing)",
  },
  TargetNotFound: {
    kind: 'permanent',
    doc: 'the target answered that a resource the request names is not there (HTTP 404/410, a resource gone mid-change)',
  },
  TargetUnsupported: {
    kind: 'permanent',
    doc: 'the target does not support what the connector needs of it (HTTP 501/505, a SCIM provider that does not page)',
  },
  TargetRejected: {
    kind: 'permanent',
    doc: 'the target refused the request for any other reason (HTTP 400/422, a limit, a malformed policy)',
  },
  CompensationImpossible: {
    kind: 'permanent',
    doc: 'a change cannot be compensated exactly: what it changed disappeared, or the recorded prior state is unreadable',
  },
  // ---- transient: retried with backoff (Retry-After honoured)
  TargetUnavailable: {
    kind: 'transient',
    doc: 'a failure that may pass (network, 429, 5xx, lock timeouts, a resource changing under us): every TransientTargetError',
  },
  UnclassifiedTargetError: {
    kind: 'transient',
    doc: 'an error no connector classified; retried, since it may be transient',
  },
} as const satisfies Record<string, { kind: 'permanent' | 'transient'; doc: string }>;

/** One of the declared failure types (FAILURE_TYPES). */
export type FailureType = keyof typeof FAILURE_TYPES;
/** The failure types a PermanentTargetError can carry. */
export type PermanentFailureType = {
  [K in FailureType]: (typeof FAILURE_TYPES)[K]['kind'] extends 'permanent' ? K : never;
}[FailureType];
/** The failure types of a retried failure. */
export type TransientFailureType = Exclude<FailureType, PermanentFailureType>;

/** A failure that may pass: network, 429, 5xx, lock timeouts. Retried with backoff; `retryAfterMs` honours Retry-After. */
export class TransientTargetError extends Error {
  override readonly name = 'TransientTargetError';
  /** Its ApplicationFailure type. */
  readonly type: TransientFailureType = 'TargetUnavailable';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/**
 * A failure that retrying will not fix: bad input, forbidden, conflict that cannot be
 * linked. `type` (one of FAILURE_TYPES, permanent) becomes the non-retryable ApplicationFailure type.
 */
export class PermanentTargetError extends Error {
  override readonly name = 'PermanentTargetError';
  constructor(
    readonly type: PermanentFailureType,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** The `group` or `role` of an operation, or a permanent `InvalidParams` saying what is missing. */
export function nameParam(op: OperationSpec, key: 'group' | 'role'): string {
  const v = op.params[key];
  if (typeof v !== 'string' || v === '')
    throw new PermanentTargetError(
      'InvalidParams',
      `target ${op.target}: ${op.action} needs params.${key} (a non-empty string)`,
    );
  return v;
}

/** The `attributes` object of an operation (empty when absent), or a permanent `InvalidParams`. */
export function attributesParam(op: OperationSpec): Record<string, unknown> {
  const raw = op.params.attributes ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new PermanentTargetError('InvalidParams', `target ${op.target}: params.attributes must be an object`);
  return raw;
}

/** How a connector maps plan attributes to its own names, and which values it can store. */
export interface AttributeMapping {
  /** The connector's target, for messages. */
  target: string;
  /** Plan attribute -> the target's name for it. */
  map: Readonly<Record<string, string>>;
  /** The config key `map` comes from, for messages. */
  mapName: string;
  /** Whether the target can store this value. */
  valid: (v: string) => boolean;
  /** Why a value that is not a string, or not `valid`, is refused (follows `attribute "x" `). */
  refusal: (v: unknown) => string;
}

/**
 * The `attributes` of an operation mapped through a connector's `map`, in order, as
 * [plan attribute, target name, value]. An attribute not in the map, or a value that is not a
 * valid string, is a permanent `InvalidAttribute`: refused, not altered.
 */
export function mappedAttributes(op: OperationSpec, m: AttributeMapping): [string, string, string][] {
  return Object.entries(attributesParam(op)).map(([attr, v]) => {
    const name = m.map[attr];
    if (!name)
      throw new PermanentTargetError(
        'InvalidAttribute',
        `target ${m.target}: attribute "${attr}" is not mapped (${m.mapName} has ${Object.keys(m.map).join(', ')})`,
      );
    if (typeof v !== 'string' || !m.valid(v))
      throw new PermanentTargetError('InvalidAttribute', `target ${m.target}: attribute "${attr}" ${m.refusal(v)}`);
    return [attr, name, v];
  });
}
