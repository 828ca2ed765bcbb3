/**
 * Deliver one notice to one endpoint: a Standard Webhooks signed POST (standardwebhooks.com,
 * symmetric v1): `webhook-id` (the notice id: the same on every retry, for the receiver to drop
 * duplicates), `webhook-timestamp` (unix seconds of this attempt) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "${id}.${timestamp}.${body}">`, keyed with the
 * decoded bytes of a `whsec_<base64>` secret (see config.ts).
 *
 * Outcomes, as Temporal failures:
 *   2xx                                  delivered: { status }
 *   network error, timeout, 408, 425, 429, 5xx
 *                                        retryable `NotificationUnavailable` (Retry-After → nextRetryDelay)
 *   3xx (redirects are not followed), other 4xx
 *                                        non-retryable `NotificationRejected`
 *   a secret that cannot be read or used non-retryable `NotificationMisconfigured`
 * Messages name the endpoint and its origin (scheme, host, port), never its path (a Slack
 * webhook URL's path is its credential), a header, the secret or the body.
 */
import { createHmac } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { parseRetryAfter, serverExplanation } from '../connectors/http-util';
import { secretFrom } from '../connectors/secrets';
import { standardKey } from '../api/webhooks/standard';
import type { NotifyEndpoint } from './config';
import { noticeMessage } from './message';
import type { ApprovalNotice, NoticeDelivered } from './notice';

export const MIN_KEY_BYTES = 16;

/** The HMAC key of a Standard Webhooks secret (`whsec_` + base64; the prefix optional). Throws naming `what`, never showing the secret. */
export function signingKey(secret: string, what: string): Buffer {
  const key = standardKey(secret.trim());
  if (!key) throw new Error(`${what}: not a Standard Webhooks secret: expected whsec_ followed by base64`);
  if (key.length < MIN_KEY_BYTES)
    throw new Error(
      `${what}: the key is ${key.length} bytes; at least ${MIN_KEY_BYTES} are needed (Standard Webhooks secrets are 24 to 64 random bytes)`,
    );
  return key;
}

/** The `webhook-signature` value for one message. */
export function standardSignature(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** Scheme, host and port: what a message may say about where a notice went. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}

export interface SendOptions {
  env?: NodeJS.ProcessEnv;
  /** Unix ms, for the timestamp. */
  now?: () => number;
  /** Aborts the request (the activity's cancellation). */
  signal?: AbortSignal;
}

export type Delivered = NoticeDelivered;

export async function sendNotice(
  endpoint: NotifyEndpoint,
  notice: ApprovalNotice,
  opts: SendOptions = {},
): Promise<Delivered> {
  const where = `notification endpoint ${endpoint.name} (${originOf(endpoint.url)})`;
  const body = JSON.stringify(noticeMessage(notice, endpoint.inboxUrl ? { inboxUrl: endpoint.inboxUrl } : {}));
  const timestamp = Math.floor((opts.now ?? Date.now)() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'amendctl-notify',
    'webhook-id': notice.id,
    'webhook-timestamp': String(timestamp),
  };
  if (endpoint.secret) {
    let key: Buffer;
    try {
      key = signingKey(secretFrom(endpoint.secret, `${where}: secret`, opts.env), `${where}: secret`);
    } catch (err) {
      throw ApplicationFailure.create({
        message: (err as Error).message,
        type: 'NotificationMisconfigured',
        nonRetryable: true,
      });
    }
    headers['webhook-signature'] = standardSignature(key, notice.id, timestamp, body);
  }

  const signal = opts.signal
    ? AbortSignal.any([opts.signal, AbortSignal.timeout(endpoint.timeoutMs)])
    : AbortSignal.timeout(endpoint.timeoutMs);
  let res: Response;
  let text = '';
  try {
    res = await fetch(endpoint.url, { method: 'POST', headers, body, signal, redirect: 'manual' });
    text = await res.text().catch(() => '');
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = opts.signal?.aborted
      ? 'cancelled'
      : e.name === 'TimeoutError' || e.name === 'AbortError'
        ? `no answer within ${endpoint.timeoutMs} ms`
        : (e.cause?.code ?? e.name);
    throw ApplicationFailure.create({
      message: `${where}: POST failed: ${why}`,
      type: 'NotificationUnavailable',
      nonRetryable: false,
    });
  }
  if (res.status >= 200 && res.status < 300) return { endpoint: endpoint.name, status: res.status };

  const explained = serverExplanation(text.startsWith('{') ? safeJson(text) : text);
  const msg = `${where}: POST answered ${res.status}${explained ? ` (${explained})` : ''}`;
  const retryable = res.status === 408 || res.status === 425 || res.status === 429 || res.status >= 500;
  if (retryable) {
    const after = parseRetryAfter(res.headers.get('retry-after'));
    throw ApplicationFailure.create({
      message: msg,
      type: 'NotificationUnavailable',
      nonRetryable: false,
      details: [{ endpoint: endpoint.name, status: res.status }],
      ...(after !== undefined ? { nextRetryDelay: Math.max(1, after) } : {}),
    });
  }
  const hint =
    res.status < 400
      ? ': redirects are not followed, configure the final URL'
      : res.status === 401 || res.status === 403
        ? ': check the secret both sides hold'
        : '';
  throw ApplicationFailure.create({
    message: `${msg}${hint}`,
    type: 'NotificationRejected',
    nonRetryable: true,
    details: [{ endpoint: endpoint.name, status: res.status }],
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
