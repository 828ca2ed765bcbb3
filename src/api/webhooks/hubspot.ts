/**
 * HubSpot request validation v3: `X-HubSpot-Signature-v3` is the base64 HMAC-SHA256, keyed
 * with the app's client secret, of method + URI + body + `X-HubSpot-Request-Timestamp`
 * (unix milliseconds). The URI is the full public URL HubSpot called, with the characters
 * HubSpot's documentation lists (%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B) decoded
 * first. A timestamp older than the tolerance (5 minutes) is refused, as HubSpot says; we also
 * refuse one more than the tolerance in the future (HubSpot says nothing of that; a clock that
 * far ahead is not HubSpot's).
 *
 * Event identity: a batch of subscription events (a JSON array) by its `eventId`s; a workflow
 * webhook (one object) carries none, so by its body or configured fields (identity.ts).
 */
import { createHash } from 'node:crypto';
import { bodyEventId } from './identity';
import { isObject, parseJson } from './json';
import { isRefusal, refuse } from './refusal';
import { anyMatch, decode, excerpt, headerOf, hmac, outsideWindow, timeOf, type Verifier } from './signature';
import type { Refusal } from './types';

export interface HubspotOptions {
  /** Client secrets (UTF-8), more than one while rotating. */
  keys: Buffer[];
  toleranceSeconds: number;
  eventId?: string[];
}

const DECODED: Record<string, string> = {
  '3A': ':',
  '2F': '/',
  '3F': '?',
  '40': '@',
  '21': '!',
  '24': '$',
  '27': "'",
  '28': '(',
  '29': ')',
  '2A': '*',
  '2C': ',',
  '3B': ';',
};

/** The URI as HubSpot signs it: those twelve escapes decoded, every other one kept. */
export function hubspotUri(url: string): string {
  return url.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (_m, hex: string) => DECODED[hex.toUpperCase()]!);
}

export function hubspotVerifier(o: HubspotOptions): Verifier {
  return (req) => {
    const sig = headerOf(req, 'x-hubspot-signature-v3');
    const ts = headerOf(req, 'x-hubspot-request-timestamp');
    if (isRefusal(sig)) return sig;
    if (isRefusal(ts)) return ts;
    if (sig === undefined) return refuse('signature-missing', 'the X-HubSpot-Signature-v3 header is missing');
    if (ts === undefined)
      return refuse(
        'header-missing',
        'the X-HubSpot-Request-Timestamp header is missing (v3 signs method, URI, body and timestamp)',
      );
    const sentAt = timeOf(ts, 'milliseconds');
    if (!sentAt)
      return refuse(
        'timestamp-malformed',
        `X-HubSpot-Request-Timestamp must be unix milliseconds, got "${excerpt(ts)}"`,
      );
    const given = decode(sig, 'base64');
    if (!given) return refuse('signature-malformed', 'X-HubSpot-Signature-v3 is not valid base64');
    const signed = [`${req.method.toUpperCase()}${hubspotUri(req.publicUrl)}`, req.body, ts];
    if (
      !anyMatch(
        [given],
        o.keys.map((k) => hmac('sha256', k, signed)),
      )
    ) {
      return refuse(
        'signature-invalid',
        'X-HubSpot-Signature-v3 does not match the method, URL, body and timestamp under any configured client secret',
      );
    }
    const stale = outsideWindow(sentAt, req.receivedAt, o.toleranceSeconds, 'X-HubSpot-Request-Timestamp');
    if (stale) return stale;
    const eventId = hubspotEventId(req.body, o.eventId);
    if (isRefusal(eventId)) return eventId;
    return { ok: true, eventId, sentAt };
  };
}

function hubspotEventId(body: Buffer, fields: string[] | undefined): string | Refusal {
  const doc = parseJson(body)?.value;
  if (!Array.isArray(doc)) return bodyEventId(body, fields);
  const ids = doc.map((e) =>
    isObject(e) && (typeof e['eventId'] === 'number' || typeof e['eventId'] === 'string')
      ? String(e['eventId'])
      : undefined,
  );
  const missing = ids.indexOf(undefined);
  if (missing >= 0)
    return refuse('body-malformed', `[${missing}].eventId: expected every subscription event to carry an eventId`);
  if (ids.length === 1) return ids[0]!;
  return `events:${createHash('sha256')
    .update([...ids].sort().join(','), 'utf8')
    .digest('hex')}`;
}
