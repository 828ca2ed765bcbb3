/**
 * The HTTP client of an internal application's API (the HTTP connector, ../http.ts, works
 * through it): request templates, signing and transport. It knows how to send one signed
 * request, not what an endpoint means.
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
 * shared secret (read on each request from the reader the registry gives) of
 * `timestamp \n nonce \n METHOD \n path?query \n body`. Header names are configurable.
 *
 * Transport: ../http-util.ts (timeouts, the per-target rate limit, network failures as
 * TransientTargetError); statuses are left to the caller.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { JsonValue } from '../../domain/json';
import { httpRequest, type HttpResponse } from '../http-util';
import { type RateLimitConfig, type RateLimiter, targetRateLimiter } from '../rate-limit';
import type { Secret } from '../secrets';
import { PermanentTargetError } from '../types';

const PLACEHOLDER = /\{([A-Za-z_][\w.-]*)\}/g;

/** The value a placeholder names in the template context, or undefined. */
function lookup(ctx: Record<string, JsonValue>, name: string): JsonValue | undefined {
  let cur: JsonValue | undefined = ctx;
  for (const part of name.split('.')) {
    if (
      cur === null ||
      typeof cur !== 'object' ||
      Array.isArray(cur) ||
      !Object.prototype.hasOwnProperty.call(cur, part)
    )
      return undefined;
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
    if (v === undefined || v === null)
      throw new PermanentTargetError('InvalidParams', `the request path needs {${name}}, which has no value`);
    const text = scalarText(v, name);
    if (text === '')
      throw new PermanentTargetError('InvalidIdentifier', `{${name}} is empty and cannot be a path segment`);
    if (text === '.' || text === '..')
      throw new PermanentTargetError('InvalidIdentifier', `{${name}} "${text}" would be a dot-segment of the path`);
    if (/[\uD800-\uDFFF]/.test(text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')))
      throw new PermanentTargetError('InvalidIdentifier', `{${name}} is not well-formed Unicode`);
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
export function signingInput(
  timestamp: string,
  nonce: string,
  method: string,
  pathAndQuery: string,
  body: string,
): string {
  return `${timestamp}\n${nonce}\n${method.toUpperCase()}\n${pathAndQuery}\n${body}`;
}

export function hmacSignature(secret: string, input: string): string {
  return `sha256=${createHmac('sha256', secret).update(input, 'utf8').digest('hex')}`;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What the client is configured with. */
export interface HttpClientConfig {
  baseUrl: string;
  /** The shared signing secret's reader, and the header names. */
  signing: { secret: Secret; header: string; timestampHeader: string; nonceHeader: string };
  /** Extra non-secret headers. */
  headers: Record<string, string>;
  timeoutMs: number;
  rateLimit?: RateLimitConfig;
}

export class HttpClient {
  private readonly limiter: RateLimiter | undefined;
  private readonly base: URL;

  constructor(
    readonly target: string,
    private readonly config: HttpClientConfig,
  ) {
    this.base = new URL(config.baseUrl.endsWith('/') ? config.baseUrl.slice(0, -1) : config.baseUrl);
    this.limiter = targetRateLimiter(target, config.rateLimit);
  }

  /** One signed request, its path and body expanded from templates; network failures are transient (http-util), statuses are left to the caller. */
  async send(
    method: HttpMethod,
    pathTemplate: string,
    bodyTemplate: JsonValue | undefined,
    ctx: Record<string, JsonValue>,
  ): Promise<HttpResponse> {
    const path = expandPath(pathTemplate, ctx);
    const url = `${this.base.origin}${this.base.pathname === '/' ? '' : this.base.pathname}${path}`;
    const body = bodyTemplate === undefined ? '' : JSON.stringify(expandBody(bodyTemplate, ctx));
    const signing = this.config.signing;
    const secret = signing.secret();
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
        [signing.timestampHeader]: timestamp,
        [signing.nonceHeader]: nonce,
        [signing.header]: signature,
      },
      ...(bodyTemplate === undefined ? {} : { body, contentType: 'application/json' }),
      timeoutMs: this.config.timeoutMs,
      limiter: this.limiter,
      target: this.target,
    });
  }
}
