/**
 * Thin events (Ironclad's carry ids only): after the delivery is verified, the record is
 * fetched from the source's REST API. The fetcher is an interface, so a source can be served
 * by another client (an SDK, a cache) and tests can play the contract system.
 *
 * The HTTP fetcher: GET `${baseUrl}${path}` with a bearer token, a timeout, redirects not
 * followed (a token is not sent on to another host). What it answers:
 * - 2xx JSON: the record.
 * - 404: a Refusal (422 `record-not-found`): the event names a record the API does not have.
 * - 2xx not JSON, 401/403 (our token), any other 3xx/4xx: a Refusal (502) that says so.
 * - 408, 429, 5xx, a timeout or a network error: SourceUnavailableError (thrown), so the
 *   server answers 503 and the sender retries later (with the API's Retry-After, if any).
 */
import { parseJson } from './json';
import { refuse } from './refusal';
import type { Refusal } from './types';

export interface Fetched {
  ok: true;
  record: unknown;
}

export interface RecordFetcher {
  /** GET one record by its path under the API's base URL (`/public/api/v1/records/abc`). */
  get(path: string): Promise<Fetched | Refusal>;
}

/** The source's API cannot answer now: the delivery should be retried. */
export class SourceUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'SourceUnavailableError';
  }
}

export interface HttpFetcherOptions {
  /** The source's name, for messages. */
  source: string;
  baseUrl: string;
  token?: string;
  /** Where the token comes from (`IRONCLAD_API_TOKEN`), for messages; never the token. */
  tokenName?: string;
  timeoutMs: number;
}

export function httpFetcher(o: HttpFetcherOptions): RecordFetcher {
  const base = o.baseUrl.replace(/\/+$/, '');
  return {
    async get(path) {
      const url = `${base}${path.startsWith('/') ? path : `/${path}`}`;
      const headers: Record<string, string> = { accept: 'application/json' };
      if (o.token !== undefined) headers['authorization'] = `Bearer ${o.token}`;
      let res: Response;
      let text: string;
      try {
        res = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(o.timeoutMs) });
        text = await res.text();
      } catch (err) {
        const e = err as Error;
        const why =
          e.name === 'TimeoutError'
            ? `no answer within ${o.timeoutMs} ms`
            : `${e.message}${(e.cause as Error | undefined)?.message ? ` (${(e.cause as Error).message})` : ''}`;
        throw new SourceUnavailableError(`${o.source}: GET ${url}: ${why}`);
      }
      const s = res.status;
      if (s === 408 || s === 429 || s >= 500)
        throw new SourceUnavailableError(
          `${o.source}: GET ${url} answered ${s}`,
          retryAfter(res.headers.get('retry-after')),
        );
      if (s === 404)
        return refuse(
          'record-not-found',
          `${o.source}: GET ${url} answered 404: the event names a record the API does not have`,
        );
      if (s === 401 || s === 403)
        return refuse(
          'source-refused',
          `${o.source}: GET ${url} answered ${s}: the API refuses our token${o.tokenName ? ` (${o.tokenName})` : ''}`,
        );
      if (s < 200 || s >= 300)
        return refuse(
          'source-refused',
          `${o.source}: GET ${url} answered ${s}${s >= 300 && s < 400 ? ' (a redirect; redirects are not followed)' : ''}`,
        );
      const type = res.headers.get('content-type') ?? '';
      const doc = /\bjson\b/i.test(type) ? parseJson(text) : undefined;
      if (!doc)
        return refuse(
          'record-unreadable',
          `${o.source}: GET ${url} answered ${s} with ${type ? `"${type.split(';')[0]}"` : 'no content type'}${/\bjson\b/i.test(type) ? ' that does not parse' : ''}, not JSON`,
        );
      return { ok: true, record: doc.value };
    },
  };
}

function retryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
