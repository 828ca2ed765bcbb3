/**
 * Shared HTTP helpers for connectors that speak HTTP (SCIM, internal apps): Node 20's
 * global fetch with a timeout, a per-target rate limit, and the one failure
 * classification every connector uses.
 *
 *   parseRetryAfter(value, nowMs?)       Retry-After (delta-seconds or HTTP-date) → ms, or undefined
 *   classifyStatus(status, ctx)          an HTTP status → TransientTargetError | PermanentTargetError | null (2xx/3xx)
 *   httpRequest(req): Promise<HttpResponse>
 *       sends one request; network errors and timeouts become TransientTargetError;
 *       429 pauses the limiter for Retry-After. It does NOT throw on a status: callers
 *       decide which statuses they handle (404, 409, 412 ...) and pass the rest to
 *       `throwForStatus(res, what)`.
 *   throwForStatus(res, what)            throws the classified error for a non-2xx response
 *
 * Classification (the `type` of PermanentTargetError is the non-retryable failure type):
 *   network error, timeout, 408, 425, 429, 5xx except 501/505 → TransientTargetError (retryAfterMs from Retry-After)
 *   401 → TargetMisconfigured (credentials), 403 → TargetForbidden, 404/410 → TargetNotFound,
 *   409 → TargetConflict, 412 → TargetConflict (changed concurrently; callers usually re-read first),
 *   413 → TargetRejected, 501/505 → TargetUnsupported, other 4xx → TargetRejected.
 * Messages name the method, the path (never the query string, never a header) and the
 * server's own explanation (SCIM `detail`/`scimType`, or the start of the body).
 */
import type { RateLimiter } from './rate-limit';
import { PermanentTargetError, TransientTargetError } from './types';

/** The most Retry-After we honour in one wait (a server asking for a day is treated as a day-long outage by the retry policy, not by us). */
export const MAX_RETRY_AFTER_MS = 15 * 60_000;

/** Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date; milliseconds from now, or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) return Math.min(MAX_RETRY_AFTER_MS, Number(v) * 1000);
  // An HTTP-date has a weekday or month name; refuse bare numbers with signs or fractions.
  if (!/[A-Za-z]/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - nowMs));
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** Sent as JSON when not a string. */
  body?: unknown;
  contentType?: string;
  timeoutMs: number;
  limiter?: RateLimiter;
  /** Requests in flight to the target at most (a server with a short listen queue drops the rest). */
  gate?: Gate;
  /** The target name, for messages. */
  target: string;
}

const gates = new Map<string, Gate>();
/** The one gate of a target in this process (the first size seen wins), shared like its rate limiter. */
export function targetGate(target: string, size: number): Gate {
  let g = gates.get(target);
  if (!g) gates.set(target, (g = new Gate(size)));
  return g;
}

/** At most `size` holders at once; the rest wait their turn in order. */
export class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON when the body is JSON, else the text ('' for none). */
  body: unknown;
  method: string;
  /** The path of the request, for messages. */
  path: string;
  /** What Retry-After asked for, in ms. */
  retryAfterMs?: number;
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '(invalid url)';
  }
}

export async function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  const path = pathOf(req.url);
  const headers: Record<string, string> = { ...(req.headers ?? {}) };
  let body: string | undefined;
  if (req.body !== undefined) {
    body = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    headers['content-type'] ??= req.contentType ?? 'application/json';
  }
  await req.limiter?.acquire();
  let res: Response;
  let text: string;
  try {
    const send = async (): Promise<[Response, string]> => {
      const r = await fetch(req.url, {
        method: req.method,
        headers,
        body,
        signal: AbortSignal.timeout(req.timeoutMs),
        redirect: 'manual',
      });
      return [r, await r.text()];
    };
    [res, text] = req.gate ? await req.gate.run(send) : await send();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why =
      e.name === 'TimeoutError' || e.name === 'AbortError'
        ? `no answer within ${req.timeoutMs} ms`
        : `${e.cause?.code ?? e.name}: ${e.cause && 'message' in e.cause ? String((e.cause as Error).message) : e.message}`;
    throw new TransientTargetError(`${req.target}: ${req.method} ${path} failed: ${why}`, undefined, err);
  }
  let parsed: unknown = text;
  if (text !== '' && /json/i.test(res.headers.get('content-type') ?? '')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
  if (res.status === 429 && req.limiter) req.limiter.pause(retryAfterMs ?? 1000);
  return { status: res.status, headers: res.headers, body: parsed, method: req.method, path, retryAfterMs };
}

/** The server's own explanation: SCIM error `detail` and `scimType`, a JSON `message`/`error`, or the start of the text. */
export function serverExplanation(body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    const parts: string[] = [];
    if (typeof b.scimType === 'string') parts.push(`scimType ${b.scimType}`);
    for (const k of ['detail', 'message', 'error_description', 'error'])
      if (typeof b[k] === 'string') parts.push(b[k] as string);
    if (parts.length > 0) return parts.join(': ').slice(0, 300);
    return JSON.stringify(body).slice(0, 200);
  }
  return typeof body === 'string' ? body.replace(/\s+/g, ' ').trim().slice(0, 200) : '';
}

export function classifyStatus(
  status: number,
  ctx: { target: string; method: string; path: string; body?: unknown; retryAfterMs?: number; what?: string },
): TransientTargetError | PermanentTargetError | null {
  if (status < 400) return null;
  const why = serverExplanation(ctx.body);
  const msg = `${ctx.target}: ${ctx.what ? `${ctx.what}: ` : ''}${ctx.method} ${ctx.path} answered ${status}${why ? ` (${why})` : ''}`;
  if (status === 408 || status === 425 || status === 429 || (status >= 500 && status !== 501 && status !== 505))
    return new TransientTargetError(msg, ctx.retryAfterMs);
  switch (status) {
    case 401:
      return new PermanentTargetError(
        'TargetAuthentication',
        `${msg}: authentication failed, check the target's credentials in the worker configuration`,
      );
    case 403:
      return new PermanentTargetError('TargetForbidden', `${msg}: the credentials are not allowed to do this`);
    case 404:
    case 410:
      return new PermanentTargetError('TargetNotFound', msg);
    case 409:
    case 412:
      return new PermanentTargetError('TargetConflict', msg);
    case 501:
    case 505:
      return new PermanentTargetError('TargetUnsupported', msg);
    default:
      return new PermanentTargetError('TargetRejected', msg);
  }
}

/** Throws the classified error for a response that is not 2xx/3xx; returns it unchanged otherwise. */
export function throwForStatus(res: HttpResponse, target: string, what?: string): HttpResponse {
  const err = classifyStatus(res.status, {
    target,
    method: res.method,
    path: res.path,
    body: res.body,
    retryAfterMs: res.retryAfterMs,
    what,
  });
  if (err) throw err;
  return res;
}
