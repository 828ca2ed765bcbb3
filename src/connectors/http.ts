/**
 * HTTP target (an internal application with its own API). Nothing about the application
 * is assumed: the configuration declares one request per action and one read request
 * with a response mapping, and the connector supplies the idempotency (read before
 * write, "already so" is success), the exact compensation and the failure classification.
 * Templates, signing and transport are the client's (./clients/http.ts).
 *
 * Compensation is the operation's inverse (./compensation.ts), sent to the same declared
 * endpoints: a created account is removed with the `removeAccount` endpoint (declare it, or
 * creations cannot be compensated and compensation fails as TargetMisconfigured), changed
 * attributes are put back with `updateAttributes` (an attribute that was absent is sent as
 * null), and the inverse of join/leave, grant/revoke, deactivate/reactivate is called with
 * its own params.
 */
import { z } from 'zod';
import type { JsonValue } from '../domain/json';
import { ACTIONS, type Action } from '../domain/plan';
import { HttpClient } from './clients/http';
import { compensateWith, priorMismatch, type PriorFacts, type CompensationAction } from './compensation';
import { throwForStatus } from './http-util';
import { RateLimitSchema } from './rate-limit';
import { type SecretSource, secretSource, SecretRefSchema } from './secrets';
import {
  type AccountState,
  type ApplyResult,
  type CompensateResult,
  type CompensationSpec,
  type Connector,
  type OperationSpec,
  PermanentTargetError,
  nameParam,
  attributesParam,
} from './types';

export { expandBody, expandPath, hmacSignature, signingInput } from './clients/http';

const MethodSchema = z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const FieldPath = z.string().regex(/^[A-Za-z_$][\w$-]*(?:\.[A-Za-z_$][\w$-]*)*$/, 'a dotted field path (a.b.c)');

const EndpointSchema = z
  .object({
    method: MethodSchema,
    /** Path (and optional query) under baseUrl, with `{placeholders}`; each value is encoded as a path segment. */
    path: z.string().regex(/^\//, 'starts with /'),
    /** JSON body template. */
    body: z.json().optional(),
    /** Statuses that mean "already so" for this request (e.g. 409 on create, 404 on delete). */
    alreadyStatuses: z.array(z.number().int().min(400).max(499)).default([]),
  })
  .strict();
export type HttpEndpoint = z.infer<typeof EndpointSchema>;

const ActionEndpoints = z
  .object(
    Object.fromEntries([...ACTIONS, 'removeAccount'].map((a) => [a, EndpointSchema.optional()])) as Record<
      Action | 'removeAccount',
      z.ZodOptional<typeof EndpointSchema>
    >,
  )
  .strict();

export const httpConfigSchema = z
  .object({
    type: z.literal('http'),
    baseUrl: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'http(s) URL'),
    signing: z
      .object({
        secret: SecretRefSchema,
        header: z
          .string()
          .regex(/^[A-Za-z0-9-]+$/)
          .default('X-Amendctl-Signature'),
        timestampHeader: z
          .string()
          .regex(/^[A-Za-z0-9-]+$/)
          .default('X-Amendctl-Timestamp'),
        nonceHeader: z
          .string()
          .regex(/^[A-Za-z0-9-]+$/)
          .default('X-Amendctl-Nonce'),
      })
      .strict(),
    /** Extra non-secret headers. */
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), z.string()).default({}),
    /** How to read an account back, and where AccountState's fields are in the answer. */
    read: z
      .object({
        method: MethodSchema.default('GET'),
        path: z.string().regex(/^\//),
        notFoundStatuses: z.array(z.number().int()).default([404]),
        fields: z
          .object({
            id: FieldPath,
            /** A boolean field, or a field and the value meaning active. */
            active: z.union([FieldPath, z.object({ field: FieldPath, equals: z.json() }).strict()]),
            /** Arrays of names (or of objects, with `item` naming the name field); groups and roles are merged. */
            groups: z.array(z.union([FieldPath, z.object({ field: FieldPath, item: FieldPath }).strict()])).default([]),
            /** Plan attribute -> field. */
            attributes: z.record(z.string(), FieldPath).default({}),
          })
          .strict(),
      })
      .strict(),
    actions: ActionEndpoints,
    timeoutMs: z.number().int().positive().default(10_000),
    rateLimit: RateLimitSchema.optional(),
  })
  .strict();
export type HttpConfig = z.infer<typeof httpConfigSchema>;

function field(body: unknown, path: string): unknown {
  let cur: unknown = body;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** What compensation needs (JSON). `toggle` (deactivate/reactivate, join/leave, grant/revoke): the state was the opposite of the one asked. */
type Prior =
  | { kind: 'none' }
  | { kind: 'created' }
  | { kind: 'state'; active?: boolean; attributes?: Record<string, string | null> }
  | { kind: 'toggle' };

const MEMBERSHIP_KEY: Partial<Record<Action, 'group' | 'role'>> = {
  joinGroup: 'group',
  leaveGroup: 'group',
  grantRole: 'role',
  revokeRole: 'role',
};

/** What the recorded prior state says for the inverse (./compensation.ts). */
function priorFacts(prior: Prior | null, op: OperationSpec): PriorFacts | null {
  if (!prior || typeof prior !== 'object') return null;
  switch (prior.kind) {
    case 'created':
      return { kind: 'account', existed: false };
    case 'state':
      return { kind: 'account', existed: true, ...(prior.active === false ? { active: false } : {}) };
    case 'toggle':
      // An applied toggle found the opposite of what it asked for.
      if (MEMBERSHIP_KEY[op.action])
        return { kind: 'membership', member: op.action === 'leaveGroup' || op.action === 'revokeRole' };
      return { kind: 'account', existed: true, active: op.action === 'deactivateAccount' };
    default:
      return null;
  }
}

export class HttpConnector implements Connector {
  readonly type = 'http';

  constructor(
    readonly target: string,
    private readonly config: HttpConfig,
    private readonly client: HttpClient,
  ) {}

  async close(): Promise<void> {
    // fetch keeps no per-connector state
  }

  private send(
    method: HttpConfig['read']['method'],
    pathTemplate: string,
    bodyTemplate: JsonValue | undefined,
    ctx: Record<string, JsonValue>,
  ) {
    return this.client.send(method, pathTemplate, bodyTemplate, ctx);
  }

  private context(subject: string, params: Record<string, JsonValue>): Record<string, JsonValue> {
    const attributes =
      params.attributes !== undefined &&
      params.attributes !== null &&
      typeof params.attributes === 'object' &&
      !Array.isArray(params.attributes)
        ? params.attributes
        : {};
    return { subject, params, attributes };
  }

  async readAccount(subject: string): Promise<AccountState | null> {
    const r = this.config.read;
    const res = await this.send(r.method, r.path, undefined, this.context(subject, {}));
    if (r.notFoundStatuses.includes(res.status)) return null;
    throwForStatus(res, this.target, `read account ${JSON.stringify(subject)}`);
    const f = r.fields;
    const id = field(res.body, f.id);
    if (typeof id !== 'string' && typeof id !== 'number') {
      throw new PermanentTargetError(
        'TargetMisconfigured',
        `target ${this.target}: the read answer has no "${f.id}" (check read.fields.id)`,
      );
    }
    const active =
      typeof f.active === 'string'
        ? field(res.body, f.active) === true
        : JSON.stringify(field(res.body, f.active.field)) === JSON.stringify(f.active.equals);
    const groups = new Set<string>();
    for (const g of f.groups) {
      const list = field(res.body, typeof g === 'string' ? g : g.field);
      if (!Array.isArray(list)) continue;
      for (const item of list) {
        const name = typeof g === 'string' ? item : field(item, g.item);
        if (typeof name === 'string') groups.add(name);
      }
    }
    const attributes: Record<string, string> = {};
    for (const [attr, path] of Object.entries(f.attributes)) {
      const v = field(res.body, path);
      if (typeof v === 'string') attributes[attr] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') attributes[attr] = String(v);
    }
    return { subject, id: String(id), active, groups: [...groups].sort(), attributes };
  }

  private endpoint(action: Action | 'removeAccount', why: string): HttpEndpoint {
    const e = this.config.actions[action];
    if (!e)
      throw new PermanentTargetError(
        'TargetMisconfigured',
        `target ${this.target}: no endpoint declared for ${action} (${why})`,
      );
    return e;
  }

  /** Call an action's endpoint; its declared "already" statuses count as success. */
  private async call(
    action: Action | 'removeAccount',
    subject: string,
    params: Record<string, JsonValue>,
    why: string,
  ): Promise<'done' | 'already'> {
    const e = this.endpoint(action, why);
    const res = await this.send(e.method, e.path, e.body, this.context(subject, params));
    if (e.alreadyStatuses.includes(res.status)) return 'already';
    throwForStatus(res, this.target, `${action} ${JSON.stringify(subject)}`);
    return 'done';
  }

  private wantedAttributes(op: OperationSpec): Record<string, string> {
    const raw = attributesParam(op);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string')
        throw new PermanentTargetError('InvalidAttribute', `target ${this.target}: attribute "${k}" must be a string`);
      out[k] = v;
    }
    return out;
  }

  async apply(op: OperationSpec): Promise<ApplyResult> {
    this.endpoint(op.action, 'the plan asks for it');
    const cur = await this.readAccount(op.subject);
    switch (op.action) {
      case 'ensureAccount':
      case 'updateAttributes': {
        const want = this.wantedAttributes(op);
        if (!cur) {
          if (op.action === 'updateAttributes')
            throw new PermanentTargetError(
              'AccountMissing',
              `target ${this.target}: no account ${JSON.stringify(op.subject)} to update`,
            );
          await this.call('ensureAccount', op.subject, op.params, 'create');
          return { outcome: 'applied', prior: { kind: 'created' }, detail: `created ${op.subject}` };
        }
        const changed = Object.keys(want).filter((k) => cur.attributes[k] !== want[k]);
        const activate = op.action === 'ensureAccount' && !cur.active;
        const prior: Prior = {
          kind: 'state',
          ...(activate ? { active: false } : {}),
          attributes: Object.fromEntries(changed.map((k) => [k, cur.attributes[k] ?? null])),
        };
        if (changed.length === 0 && !activate)
          return { outcome: 'unchanged', prior: prior as JsonValue, detail: 'already so' };
        await this.call(op.action, op.subject, op.params, op.action);
        return {
          outcome: 'applied',
          prior: prior as JsonValue,
          detail: `${op.action} ${op.subject}: ${[...changed, ...(activate ? ['active'] : [])].join(', ')}`,
        };
      }
      case 'deactivateAccount':
      case 'reactivateAccount': {
        const want = op.action === 'reactivateAccount';
        if (!cur) {
          if (!want) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no account to deactivate' };
          throw new PermanentTargetError(
            'AccountMissing',
            `target ${this.target}: no account ${JSON.stringify(op.subject)} to reactivate`,
          );
        }
        if (cur.active === want)
          return {
            outcome: 'unchanged',
            prior: { kind: 'none' },
            detail: want ? 'already active' : 'already inactive',
          };
        await this.call(op.action, op.subject, op.params, op.action);
        return { outcome: 'applied', prior: { kind: 'toggle' }, detail: `${op.action} ${op.subject}` };
      }
      case 'joinGroup':
      case 'leaveGroup':
      case 'grantRole':
      case 'revokeRole': {
        const key = op.action === 'joinGroup' || op.action === 'leaveGroup' ? 'group' : 'role';
        const name = nameParam(op, key);
        const want = op.action === 'joinGroup' || op.action === 'grantRole';
        if (!cur) {
          if (!want) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no account' };
          throw new PermanentTargetError(
            'AccountMissing',
            `target ${this.target}: no account ${JSON.stringify(op.subject)} for ${op.action} ${name}`,
          );
        }
        if (cur.groups.includes(name) === want)
          return {
            outcome: 'unchanged',
            prior: { kind: 'none' },
            detail: want ? `already has ${name}` : `does not have ${name}`,
          };
        const r = await this.call(op.action, op.subject, op.params, op.action);
        return {
          outcome: 'applied',
          prior: { kind: 'toggle' },
          detail: `${op.action} ${name}${r === 'already' ? ' (the application says: already so)' : ''}`,
        };
      }
      default:
        throw new PermanentTargetError(
          'UnsupportedAction',
          `target ${this.target}: unsupported action ${String(op.action)}`,
        );
    }
  }

  async compensate(op: CompensationSpec, result: ApplyResult): Promise<CompensateResult> {
    const prior = result.prior as Prior | null;
    return compensateWith(op, result, priorFacts(prior, op), (step) => this.performCompensation(op, prior!, step));
  }

  /** Perform a compensation step through the declared endpoints, from the account as it is now. */
  private async performCompensation(
    op: CompensationSpec,
    prior: Prior,
    step: CompensationAction,
  ): Promise<CompensateResult> {
    const cur = await this.readAccount(op.subject);
    switch (step.action) {
      case 'removeAccount': {
        if (!cur) return { outcome: 'unchanged', detail: 'already gone' };
        const r = await this.call('removeAccount', op.subject, op.params, 'to compensate a creation');
        return r === 'already'
          ? { outcome: 'unchanged', detail: 'already gone' }
          : { outcome: 'compensated', detail: `removed ${op.subject}` };
      }
      case 'restoreAccount':
      case 'restoreAttributes': {
        if (prior.kind !== 'state') throw priorMismatch(this.target, prior.kind, step);
        if (!cur)
          throw new PermanentTargetError(
            'CompensationImpossible',
            `target ${this.target}: ${op.subject} disappeared; cannot restore it`,
          );
        const names = step.action === 'restoreAttributes' ? new Set(step.attributes) : undefined;
        const restore = Object.fromEntries(
          Object.entries(prior.attributes ?? {}).filter(
            ([k, v]) => (!names || names.has(k)) && (cur.attributes[k] ?? null) !== v,
          ),
        );
        const reactivated = step.action === 'restoreAccount' && prior.active === false && cur.active;
        if (Object.keys(restore).length === 0 && !reactivated)
          return { outcome: 'unchanged', detail: 'already as before' };
        if (Object.keys(restore).length > 0)
          await this.call('updateAttributes', op.subject, { attributes: restore }, 'to restore attributes');
        if (reactivated) await this.call('deactivateAccount', op.subject, {}, 'to restore the inactive state');
        return {
          outcome: 'compensated',
          detail: `restored ${[...Object.keys(restore), ...(reactivated ? ['active'] : [])].join(', ')}`,
        };
      }
      case 'reactivateAccount':
      case 'deactivateAccount': {
        if (!cur) return { outcome: 'unchanged', detail: 'no account' };
        if (cur.active === (step.action === 'reactivateAccount'))
          return { outcome: 'unchanged', detail: 'already as before' };
        await this.call(step.action, op.subject, {}, 'to compensate');
        return { outcome: 'compensated', detail: step.action };
      }
      case 'joinGroup':
      case 'leaveGroup':
      case 'grantRole':
      case 'revokeRole': {
        if (!cur) return { outcome: 'unchanged', detail: 'no account' };
        const want = step.action === 'joinGroup' || step.action === 'grantRole';
        if (cur.groups.includes(step.name) === want) return { outcome: 'unchanged', detail: 'already as before' };
        await this.call(step.action, op.subject, { [MEMBERSHIP_KEY[step.action]!]: step.name }, 'to compensate');
        return { outcome: 'compensated', detail: `${step.action} ${step.name}` };
      }
    }
  }
}

export function createHttpConnector(
  target: string,
  config: HttpConfig,
  secrets: SecretSource = secretSource(),
): Connector {
  const c = httpConfigSchema.parse(config);
  const client = new HttpClient(target, {
    baseUrl: c.baseUrl,
    signing: { ...c.signing, secret: secrets.reader(c.signing.secret, `target ${target}: signing secret`) },
    headers: c.headers,
    timeoutMs: c.timeoutMs,
    ...(c.rateLimit ? { rateLimit: c.rateLimit } : {}),
  });
  return new HttpConnector(target, c, client);
}
