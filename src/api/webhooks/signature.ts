/**
 * What every signature scheme needs: one header's value, an HMAC, a constant-time comparison,
 * strict decoding of the sender's signature text, and the time window. Schemes return a
 * Refusal for bad input; nothing here throws on what a sender sent.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { refuse } from './refusal';
import type { Refusal, Verified, WebhookRequest } from './types';

/** A scheme's check of one delivery. */
export type Verifier = (req: WebhookRequest) => Verified | Refusal;

export type Digest = 'sha256' | 'sha512';
export type Encoding = 'base64' | 'hex';

/** The header's one value (names lower-case), undefined when absent or empty, a Refusal when sent more than once. */
export function headerOf(req: WebhookRequest, name: string): string | undefined | Refusal {
  const v = req.headers[name];
  if (Array.isArray(v)) {
    if (v.length > 1) return refuse('header-repeated', `the ${name} header is given ${v.length} times; expected once`);
    return v[0] === '' ? undefined : v[0];
  }
  return v === '' ? undefined : v;
}

export function hmac(digest: Digest, key: Buffer, parts: ReadonlyArray<Buffer | string>): Buffer {
  const h = createHmac(digest, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Equal bytes, compared in time that does not depend on where they differ (lengths of digests are public). */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True when `given` equals any of `expected`; every candidate is compared, a match does not end the loop early. */
export function anyMatch(given: ReadonlyArray<Buffer>, expected: ReadonlyArray<Buffer>): boolean {
  let found = false;
  for (const g of given) for (const e of expected) found = sameBytes(g, e) || found;
  return found;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/** Strict decoding (Buffer.from skips characters it does not know): undefined for text that is not canonical. */
export function decode(text: string, encoding: Encoding): Buffer | undefined {
  if (text === '' || !(encoding === 'hex' ? HEX : BASE64).test(text)) return undefined;
  return Buffer.from(text, encoding);
}

/** Unix time in a header (seconds or milliseconds), or undefined when it is not a plain integer. */
export function timeOf(text: string, unit: 'seconds' | 'milliseconds'): Date | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const d = new Date(unit === 'seconds' ? Number(text) * 1000 : Number(text));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** A Refusal when `sentAt` is more than `toleranceSeconds` before or after `receivedAt`. */
export function outsideWindow(
  sentAt: Date,
  receivedAt: Date,
  toleranceSeconds: number,
  header: string,
): Refusal | undefined {
  const skewMs = receivedAt.getTime() - sentAt.getTime();
  const seconds = Math.ceil(Math.abs(skewMs) / 1000);
  if (skewMs > toleranceSeconds * 1000)
    return refuse(
      'timestamp-stale',
      `${header} is ${seconds} s old; at most ${toleranceSeconds} s are accepted (a late or replayed delivery)`,
    );
  if (-skewMs > toleranceSeconds * 1000)
    return refuse(
      'timestamp-stale',
      `${header} is ${seconds} s in the future; at most ${toleranceSeconds} s of clock skew are accepted`,
    );
  return undefined;
}

/** A short, printable excerpt of what a sender sent, for a detail (never used for secrets). */
export function excerpt(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}...` : clean;
}
