/**
 * HTTP target (an internal application with its own API). Nothing about the application
 * is assumed: the configuration declares one request per action and one read request
 * with a response mapping, and the connector supplies the idempotency (read before
 * write, "already so" is success), the exact compensation and the failure classification.
 *
 * Templates: `{subject}`, `{params.group}`, `{params.role}`, `{params.attributes.email}`,
 * `{attributes.displayName}` (shorthand for params.attributes) ... In a path each value is
 * percent-encoded as one segment (RFC 3986 `encodeURIComponent`; `.` and `..` refused);
 * in a body template (any JSON) a string that is exactly one placeholder becomes the value
 * itself (any JSON type), placeholders inside longer strings are interpolated, and the
 * body is then serialised with JSON.stringify: no value is ever concatenated into a URL or
 * a JSON text raw. A body key whose placeholder has no value is left out.
 *
 * Signing: every request (reads too) carries `X-Amendctl-Timestamp` (unix seconds),
 * `X-Amendctl-Nonce` and `X-Amendctl-Signature: sha256=<hex>`, the HMAC-SHA256 with the
 * shared secret of `timestamp \n nonce \n METHOD \n path?query \n body`. The application
 * rejects a stale timestamp or a nonce it has seen (replay). Header names are configurable.
 *
 * Compensation uses the same declared endpoints: a created account is removed with the
 * `removeAccount` endpoint (declare it, or creations cannot be undone and compensation
 * fails as TargetMisconfigured), changed attributes are put back with `updateAttributes`
 * (an attribute that was absent is sent as null), and join/leave, grant/revoke,
 * deactivate/reactivate undo each other.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { JsonValue } from '../domain/json';
import { ACTIONS, type Action } from '../domain/plan';
import { httpRequest, throwForStatus, type HttpResponse } from './http-util';
import { RateLimitSchema, type RateLimiter, targetRateLimiter } from './rate-limit';
import { secretFrom, SecretRefSchema } from './secrets';
import {
  type AccountState,
  type ApplyResult,
  type CompensateResult,
  type Connector,
  type OperationSpec,
  PermanentTargetError,
  nameParam,
  attributesParam,
} from './types';

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
  .object(Object.fromEntries([...ACTIONS, 'removeAccount'].map((a) => [a, EndpointSchema.optional()])) as Record<Action | 'removeAccount', z.ZodOptional<typeof EndpointSchema>>)
  .strict();

export const httpConfigSchema = z
  .object({
    type: z.literal('http'),
    baseUrl: z.string().url().regex(/^https?:\/\//, 'http(s) URL'),
    signing: z
      .object({
        secret: SecretRefSchema,
        header: z.string().regex(/^[A-Za-z0-9-]+$/).default('X-Amendctl-Signature'),
        timestampHeader: z.string().regex(/^[A-Za-z0-9-]+$/).default('X-Amendctl-Timestamp'),
        nonceHeader: z.string().regex(/^[A-Za-z0-9-]+$/).default('X-Amendctl-Nonce'),
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

// ---- templates ---------------------------------------------------------------------------

const PLACEHOLDER = /\{([A-Za-z_][\w.-]*)\}/g;

/** The value a placeholder names in the template context, or undefined. */
function lookup(ctx: Record<string, JsonValue>, name: string): JsonValue | undefined {
  let cur: JsonValue | undefined = ctx;
  for (const part of name.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, JsonValue>)[part];
  }
  return cur;
}

function scalarText(v: JsonValue, name: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new PermanentTargetError('InvalidParams', `{${name}} is not a string or number`);
}

/** Expand a path template: every value percent-encoded as (part of) one segment. */
export function expandPath(template: string, ctx: Record<string, JsonValue>): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = lookup(ctx, name);
    if (v === undefined || v === null) throw new PermanentTargetError('InvalidParams', `the request path needs {${name}}, which has no value`);
    const text = scalarText(v, name);
    if (text === '') throw new PermanentTargetError('InvalidIdentifier', `{${name}} is empty and cannot be a path segment`);
    if (text === '.' || text === '..') throw new PermanentTargetError('InvalidIdentifier', `{${name}} "${text}" would be a dot-segment of the path`);
    if (/[\uD800-\uDFFF]/.test(text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) throw new PermanentTargetError('InvalidIdentifier', `{${name}} is not well-formed Unicode`);
    return encodeURIComponent(text);
  });
}

const OMIT = Symbol('omit');

/** Expand a JSON body template into a JSON value (serialised later, as a whole, by JSON.stringify). */
export function expandBody(template: JsonValue, ctx: Record<string, JsonValue>): JsonValue {
  const walk = (t: JsonValue): JsonValue | typeof OMIT => {
    if (typeof t === 'string') {
      const whole = /^\{([A-Za-z_][\w.-]*)\}$/.exec(t);
      if (whole) {
        const v = lookup(ctx, whole[1]!);
        return v === undefined ? OMIT : v;
      }
      let missing = false;
      const s = t.replace(PLACEHOLDER, (_m, name: string) => {
        const v = lookup(ctx, name);
        if (v === undefined || v === null) {
          missing = true;
          return '';
        }
        return scalarText(v, name);
      });
      return missing ? OMIT : s;
    }
    if (Array.isArray(t)) return t.map(walk).filter((x): x is JsonValue => x !== OMIT);
    if (t !== null && typeof t === 'object') {
      const out: Record<string, JsonValue> = {};
      for (const [k, v] of Object.entries(t)) {
        const x = walk(v);
        if (x !== OMIT) out[k] = x;
      }
      return out;
    }
    return t;
  };
  const r = walk(template);
  return r === OMIT ? null : r;
}

/** The signed string: timestamp, nonce, method, path with query, body; one per line. */
export function signingInput(timestamp: string, nonce: string, method: string, pathAndQuery: string, body: string): string {
  return `${timestamp}\n${nonce}\n${method.toUpperCase()}\n${pathAndQuery}\n${body}`;
}

export function hmacSignature(secret: string, input: string): string {
  return `sha256=${createHmac('sha256', secret).update(input, 'utf8').digest('hex')}`;
}

// ---- connector ---------------------------------------------------------------------------

function field(body: unknown, path: string): unknown {
  let cur: unknown = body;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

type Prior =
  | { kind: 'none' }
  | { kind: 'created' }
  | { kind: 'state'; active?: boolean; attributes?: Record<string, string | null> }
  | { kind: 'toggle'; undo: Action; params: Record<string, JsonValue> };

const INVERSE: Partial<Record<Action, Action>> = {
  joinGroup: 'leaveGroup',
  leaveGroup: 'joinGroup',
  grantRole: 'revokeRole',
  revokeRole: 'grantRole',
  deactivateAccount: 'reactivateAccount',
  reactivateAccount: 'deactivateAccount',
};

export class HttpConnector implements Connector {
  readonly type = 'http';
  private readonly limiter: RateLimiter | undefined;
  private readonly base: URL;

  constructor(
    readonly target: string,
    private readonly config: HttpConfig,
  ) {
    this.base = new URL(config.baseUrl.endsWith('/') ? config.baseUrl.slice(0, -1) : config.baseUrl);
    this.limiter = targetRateLimiter(target, config.rateLimit);
  }

  async close(): Promise<void> {
    // fetch keeps no per-connector state
  }

  /** One signed request; network failures are transient (http-util), statuses are left to the caller. */
  private async send(method: HttpEndpoint['method'], pathTemplate: string, bodyTemplate: JsonValue | undefined, ctx: Record<string, JsonValue>): Promise<HttpResponse> {
    const path = expandPath(pathTemplate, ctx);
    const url = `${this.base.origin}${this.base.pathname === '/' ? '' : this.base.pathname}${path}`;
    const body = bodyTemplate === undefined ? '' : JSON.stringify(expandBody(bodyTemplate, ctx));
    const secret = secretFrom(this.config.signing.secret, `target ${this.target}: signing secret`);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = randomBytes(12).toString('base64url');
    const u = new URL(url);
    const signature = hmacSignature(secret, signingInput(timestamp, nonce, method, `${u.pathname}${u.search}`, body));
    return httpRequest({
      method,
      url,
      headers: {
        ...this.config.headers,
        accept: 'application/json',
        [this.config.signing.timestampHeader]: timestamp,
        [this.config.signing.nonceHeader]: nonce,
        [this.config.signing.header]: signature,
      },
      ...(bodyTemplate === undefined ? {} : { body, contentType: 'application/json' }),
      timeoutMs: this.config.timeoutMs,
      limiter: this.limiter,
      target: this.target,
    });
  }

  private context(subject: string, params: Record<string, JsonValue>): Record<string, JsonValue> {
    const attributes = params.attributes !== undefined && params.attributes !== null && typeof params.attributes === 'object' && !Array.isArray(params.attributes) ? params.attributes : {};
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
      throw new PermanentTargetError('TargetMisconfigured', `target ${this.target}: the read answer has no "${f.id}" (check read.fields.id)`);
    }
    const active = typeof f.active === 'string' ? field(res.body, f.active) === true : JSON.stringify(field(res.body, f.active.field)) === JSON.stringify(f.active.equals);
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
    if (!e) throw new PermanentTargetError('TargetMisconfigured', `target ${this.target}: no endpoint declared for ${action} (${why})`);
    return e;
  }

  /** Call an action's endpoint; its declared "already" statuses count as success. */
  private async call(action: Action | 'removeAccount', subject: string, params: Record<string, JsonValue>, why: string): Promise<'done' | 'already'> {
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
      if (typeof v !== 'string') throw new PermanentTargetError('InvalidAttribute', `target ${this.target}: attribute "${k}" must be a string`);
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
          if (op.action === 'updateAttributes') throw new PermanentTargetError('AccountMissing', `target ${this.target}: no account ${JSON.stringify(op.subject)} to update`);
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
        if (changed.length === 0 && !activate) return { outcome: 'unchanged', prior: prior as JsonValue, detail: 'already so' };
        await this.call(op.action, op.subject, op.params, op.action);
        return { outcome: 'applied', prior: prior as JsonValue, detail: `${op.action} ${op.subject}: ${[...changed, ...(activate ? ['active'] : [])].join(', ')}` };
      }
      case 'deactivateAccount':
      case 'reactivateAccount': {
        const want = op.action === 'reactivateAccount';
        if (!cur) {
          if (!want) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no account to deactivate' };
          throw new PermanentTargetError('AccountMissing', `target ${this.target}: no account ${JSON.stringify(op.subject)} to reactivate`);
        }
        if (cur.active === want) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: want ? 'already active' : 'already inactive' };
        await this.call(op.action, op.subject, op.params, op.action);
        return { outcome: 'applied', prior: { kind: 'toggle', undo: INVERSE[op.action]!, params: {} }, detail: `${op.action} ${op.subject}` };
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
          throw new PermanentTargetError('AccountMissing', `target ${this.target}: no account ${JSON.stringify(op.subject)} for ${op.action} ${name}`);
        }
        if (cur.groups.includes(name) === want) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: want ? `already has ${name}` : `does not have ${name}` };
        const r = await this.call(op.action, op.subject, op.params, op.action);
        return { outcome: 'applied', prior: { kind: 'toggle', undo: INVERSE[op.action]!, params: { [key]: name } }, detail: `${op.action} ${name}${r === 'already' ? ' (the application says: already so)' : ''}` };
      }
      default:
        throw new PermanentTargetError('UnsupportedAction', `target ${this.target}: unsupported action ${String(op.action)}`);
    }
  }

  async compensate(op: OperationSpec, result: ApplyResult): Promise<CompensateResult> {
    const prior = result.prior as Prior;
    if (result.outcome === 'unchanged' || !prior || typeof prior !== 'object' || prior.kind === 'none') return { outcome: 'unchanged', detail: 'nothing was changed' };
    const cur = await this.readAccount(op.subject);
    switch (prior.kind) {
      case 'created': {
        if (!cur) return { outcome: 'unchanged', detail: 'already gone' };
        const r = await this.call('removeAccount', op.subject, op.params, 'to undo a creation');
        return r === 'already' ? { outcome: 'unchanged', detail: 'already gone' } : { outcome: 'compensated', detail: `removed ${op.subject}` };
      }
      case 'state': {
        if (!cur) throw new PermanentTargetError('CompensationImpossible', `target ${this.target}: ${op.subject} disappeared; cannot restore it`);
        const restore = Object.fromEntries(Object.entries(prior.attributes ?? {}).filter(([k, v]) => (cur.attributes[k] ?? null) !== v));
        const reactivated = prior.active === false && cur.active;
        if (Object.keys(restore).length === 0 && !reactivated) return { outcome: 'unchanged', detail: 'already as before' };
        if (Object.keys(restore).length > 0) await this.call('updateAttributes', op.subject, { attributes: restore }, 'to restore attributes');
        if (reactivated) await this.call('deactivateAccount', op.subject, {}, 'to restore the inactive state');
        return { outcome: 'compensated', detail: `restored ${[...Object.keys(restore), ...(reactivated ? ['active'] : [])].join(', ')}` };
      }
      case 'toggle': {
        if (!cur) return { outcome: 'unchanged', detail: 'no account' };
        const name = prior.params.group ?? prior.params.role;
        const isNow = prior.undo === 'reactivateAccount' || prior.undo === 'deactivateAccount' ? cur.active : cur.groups.includes(String(name));
        const undoWants = prior.undo === 'reactivateAccount' || prior.undo === 'joinGroup' || prior.undo === 'grantRole';
        if (isNow === undoWants) return { outcome: 'unchanged', detail: 'already as before' };
        await this.call(prior.undo, op.subject, prior.params, 'to compensate');
        return { outcome: 'compensated', detail: `${prior.undo}${name ? ` ${String(name)}` : ''}` };
      }
    }
  }
}

export function createHttpConnector(target: string, config: HttpConfig): Connector {
  return new HttpConnector(target, httpConfigSchema.parse(config));
}
