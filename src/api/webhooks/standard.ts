/**
 * Standard Webhooks (standardwebhooks.com, the symmetric `v1` scheme): `webhook-id`,
 * `webhook-timestamp` (unix seconds) and `webhook-signature`, a space-separated list of
 * `v1,<base64 HMAC-SHA256 of "${id}.${timestamp}.${body}">`. The secret is `whsec_<base64>`,
 * the key its decoded bytes. Any one signature made with any configured key passes (rotation:
 * the sender signs with old and new keys at once, or we hold both). Timestamps more than the
 * tolerance (5 minutes) before or after our clock are refused. Other versions in the list
 * (`v1a`, asymmetric) are skipped, as the spec says.
 */
import { isRefusal, refuse } from './refusal';
import { anyMatch, decode, excerpt, headerOf, hmac, outsideWindow, timeOf, type Verifier } from './signature';

export interface StandardOptions {
  /** The decoded keys (see standardKey). */
  keys: Buffer[];
  toleranceSeconds: number;
}

/** The key of a `whsec_...` secret (the prefix is optional, as in the reference libraries), or undefined when it is not base64. */
export function standardKey(secret: string): Buffer | undefined {
  return decode(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

export function standardVerifier(o: StandardOptions): Verifier {
  return (req) => {
    const id = headerOf(req, 'webhook-id');
    const ts = headerOf(req, 'webhook-timestamp');
    const list = headerOf(req, 'webhook-signature');
    for (const h of [id, ts, list]) if (isRefusal(h)) return h;
    if (typeof list !== 'string') return refuse('signature-missing', 'the webhook-signature header is missing');
    if (typeof id !== 'string')
      return refuse('header-missing', 'the webhook-id header is missing (Standard Webhooks signs "id.timestamp.body")');
    if (typeof ts !== 'string')
      return refuse(
        'header-missing',
        'the webhook-timestamp header is missing (Standard Webhooks signs "id.timestamp.body")',
      );
    const sentAt = timeOf(ts, 'seconds');
    if (!sentAt) return refuse('timestamp-malformed', `webhook-timestamp must be unix seconds, got "${excerpt(ts)}"`);

    const v1 = list.split(' ').filter((e) => e.startsWith('v1,'));
    if (v1.length === 0) return refuse('signature-malformed', 'webhook-signature has no "v1,<base64>" entry');
    const given = v1.map((e) => decode(e.slice(3), 'base64')).filter((b): b is Buffer => b !== undefined);
    if (given.length === 0)
      return refuse(
        'signature-malformed',
        `webhook-signature: ${v1.length === 1 ? 'its v1 entry is' : `none of its ${v1.length} v1 entries is`} valid base64`,
      );
    const signed = [`${id}.${ts}.`, req.body];
    if (
      !anyMatch(
        given,
        o.keys.map((k) => hmac('sha256', k, signed)),
      )
    ) {
      return refuse(
        'signature-invalid',
        'webhook-signature: no v1 signature matches the id, timestamp and body under any configured key',
      );
    }
    const stale = outsideWindow(sentAt, req.receivedAt, o.toleranceSeconds, 'webhook-timestamp');
    if (stale) return stale;
    return { ok: true, eventId: id, sentAt };
  };
}
