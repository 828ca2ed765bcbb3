/**
 * The LDAP protocol client (ldapts) the LDAP connector (../ldap.ts) works through: the bound
 * session, the per-target rate limit, result codes tolerated or classified, and the entry
 * helpers. It knows entries, attributes and modify requests, not what an operation means.
 *
 * - One connection, bound as `bindDn` with the password the registry's reader gives (read on
 *   each (re)bind). A dropped connection is re-bound, never reused anonymously: the
 *   connected-check and the request start in the same tick.
 * - Failures: network errors, timeouts and the result codes that may pass (time/admin limit,
 *   busy, unavailable) are TransientTargetError; the others PermanentTargetError with a type.
 */
import { Attribute, Change, Client, ResultCodeError, type Entry } from 'ldapts';
import type { RateLimitConfig } from '../rate-limit';
import { type RateLimiter, targetRateLimiter } from '../rate-limit';
import type { Secret } from '../secrets';
import { type PermanentFailureType, PermanentTargetError, TransientTargetError } from '../types';

/** Result codes (RFC 4511 appendix A) that may pass: time/admin limit, busy, unavailable. */
const TRANSIENT_RESULT_CODES = new Set([3, 11, 51, 52]);
const PERMANENT_TYPES: Record<number, PermanentFailureType> = {
  8: 'TargetMisconfigured', // strongAuthRequired
  13: 'TargetMisconfigured', // confidentialityRequired
  17: 'TargetMisconfigured', // undefinedAttributeType (e.g. no ppolicy overlay)
  32: 'TargetMisconfigured', // noSuchObject where the base must exist
  34: 'InvalidIdentifier', // invalidDNSyntax
  48: 'TargetMisconfigured', // inappropriateAuthentication
  49: 'TargetAuthentication', // invalidCredentials
  50: 'TargetForbidden', // insufficientAccessRights
  64: 'InvalidIdentifier', // namingViolation
  68: 'TargetConflict', // entryAlreadyExists (when not expected)
};
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Map an ldapts or socket error to Transient/Permanent. */
export function classifyLdapError(err: unknown, what: string): Error {
  if (err instanceof TransientTargetError || err instanceof PermanentTargetError) return err;
  if (err instanceof ResultCodeError) {
    const msg = `${what}: LDAP result ${err.code} ${err.message}`;
    if (TRANSIENT_RESULT_CODES.has(err.code)) return new TransientTargetError(msg, undefined, err);
    return new PermanentTargetError(PERMANENT_TYPES[err.code] ?? 'TargetRejected', msg, err);
  }
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (
    (typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) ||
    /timeout|timed out|socket|connection/i.test(message)
  ) {
    return new TransientTargetError(`${what}: ${message}`, undefined, err);
  }
  if (err instanceof RangeError) return new PermanentTargetError('InvalidIdentifier', `${what}: ${message}`, err);
  return new PermanentTargetError('TargetRejected', `${what}: ${message}`, err);
}

/** The LDAP result code of a (classified) error, if it came from one. */
export function resultCode(err: unknown): number | undefined {
  const cause = err instanceof ResultCodeError ? err : (err as { cause?: unknown } | undefined)?.cause;
  return cause instanceof ResultCodeError ? cause.code : undefined;
}

/** Values of an attribute, case-insensitively by name, as strings. */
export function values(entry: Entry, name: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
  if (key === undefined) return [];
  const v = entry[key]!;
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
}

export function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join('\u0000') === [...b].sort().join('\u0000');
}

export function replace(type: string, vals: string[]): Change {
  return new Change({ operation: 'replace', modification: new Attribute({ type, values: vals }) });
}
export function addValue(type: string, value: string): Change {
  return new Change({ operation: 'add', modification: new Attribute({ type, values: [value] }) });
}
export function deleteValue(type: string, value: string): Change {
  return new Change({ operation: 'delete', modification: new Attribute({ type, values: [value] }) });
}

export type { Change, Entry };

/** What the client is configured with: the directory's address and bind DN, and the bind password's reader. */
export interface LdapClientConfig {
  url: string;
  bindDn: string;
  password: Secret;
  timeoutMs: number;
  rateLimit?: RateLimitConfig;
}

export class LdapClient {
  private client: Client | undefined;
  private binding: Promise<Client> | undefined;
  private readonly limiter: RateLimiter | undefined;

  constructor(
    readonly target: string,
    private readonly config: LdapClientConfig,
  ) {
    this.limiter = targetRateLimiter(target, config.rateLimit);
  }

  /** A connected client bound as bindDn. A dropped connection is re-bound, never reused anonymously. */
  private session(): Promise<Client> {
    if (this.client?.isConnected && !this.binding) return Promise.resolve(this.client);
    this.binding ??= this.bind().finally(() => {
      this.binding = undefined;
    });
    return this.binding;
  }

  private async bind(): Promise<Client> {
    const old = this.client;
    this.client = undefined;
    if (old) await old.unbind().catch(() => undefined);
    const password = this.config.password();
    const client = new Client({
      url: this.config.url,
      timeout: this.config.timeoutMs,
      connectTimeout: this.config.timeoutMs,
    });
    try {
      await client.bind(this.config.bindDn, password);
    } catch (err) {
      await client.unbind().catch(() => undefined);
      throw classifyLdapError(err, `target ${this.target}: bind as ${this.config.bindDn}`);
    }
    this.client = client;
    return client;
  }

  /**
   * One LDAP request. The connected-check and the request start in the same tick, so a
   * request never goes out on a silently re-opened (anonymous) connection.
   */
  async request<T>(what: string, fn: (c: Client) => Promise<T>): Promise<T> {
    await this.limiter?.acquire();
    const c = await this.session();
    if (!c.isConnected) throw new TransientTargetError(`target ${this.target}: ${what}: connection lost`);
    try {
      return await fn(c);
    } catch (err) {
      throw classifyLdapError(err, `target ${this.target}: ${what}`);
    }
  }

  /** Run a request, returning the LDAP result code instead of throwing for the codes listed (0: done). */
  async tolerate(what: string, fn: (c: Client) => Promise<unknown>, codes: number[]): Promise<number> {
    try {
      await this.request(what, fn);
      return 0;
    } catch (err) {
      const code = resultCode(err);
      if (code !== undefined && codes.includes(code)) return code;
      throw err;
    }
  }

  /** The entry at `dn` with `attributes`, or null when there is none (noSuchObject). */
  async readEntry(dn: string, attributes: string[]): Promise<Entry | null> {
    try {
      const res = await this.request(`read ${dn}`, (c) =>
        c.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes }),
      );
      return res.searchEntries[0] ?? null;
    } catch (err) {
      if (resultCode(err) === 32) return null;
      throw err;
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.unbind().catch(() => undefined);
  }
}
