/**
 * A generic HMAC scheme for senders with no scheme of their own: the signature in a named
 * header (`x-hub-signature-256`), HMAC-SHA256 or -SHA512 keyed with the secret's text, hex or
 * base64, after an optional prefix (`sha256=`, as GitHub sends it), over the body or over
 * `${timestamp}.${body}` with the timestamp from a named header (unix seconds or milliseconds),
 * checked against a tolerance. Any configured secret may match (rotation).
 *
 * Event identity: a configured header (`x-github-delivery`), else configured body fields or
 * the body's digest (identity.ts).
 */
import { bodyEventId } from './identity';
import { isRefusal, refuse } from './refusal';
import {
  anyMatch,
  decode,
  type Digest,
  type Encoding,
  excerpt,
  headerOf,
  hmac,
  outsideWindow,
  timeOf,
  type Verifier,
} from './signature';

export interface HmacOptions {
  keys: Buffer[];
  header: string;
  algorithm: Digest;
  encoding: Encoding;
  prefix?: string;
  signed: 'body' | 'timestamp.body';
  timestamp?: { header: string; unit: 'seconds' | 'milliseconds'; toleranceSeconds: number };
  eventId?: { header: string } | { fields: string[] };
}

export function hmacVerifier(o: HmacOptions): Verifier {
  const header = o.header.toLowerCase();
  return (req) => {
    const text = headerOf(req, header);
    if (isRefusal(text)) return text;
    if (text === undefined) return refuse('signature-missing', `the ${o.header} header is missing`);
    let sentAt: Date | undefined;
    let ts: string | undefined;
    if (o.timestamp) {
      const t = headerOf(req, o.timestamp.header.toLowerCase());
      if (isRefusal(t)) return t;
      if (t === undefined) return refuse('header-missing', `the ${o.timestamp.header} header is missing`);
      sentAt = timeOf(t, o.timestamp.unit);
      if (!sentAt)
        return refuse(
          'timestamp-malformed',
          `${o.timestamp.header} must be unix ${o.timestamp.unit}, got "${excerpt(t)}"`,
        );
      ts = t;
    }
    if (o.prefix !== undefined && !text.startsWith(o.prefix))
      return refuse('signature-malformed', `${o.header} must start with "${o.prefix}"`);
    const given = decode(text.slice(o.prefix?.length ?? 0), o.encoding);
    if (!given) return refuse('signature-malformed', `${o.header} is not valid ${o.encoding}`);
    const signed = o.signed === 'body' ? [req.body] : [`${ts!}.`, req.body];
    if (
      !anyMatch(
        [given],
        o.keys.map((k) => hmac(o.algorithm, k, signed)),
      )
    ) {
      return refuse(
        'signature-invalid',
        `${o.header} does not match the ${o.signed === 'body' ? 'body' : 'timestamp and body'} under any configured secret`,
      );
    }
    if (o.timestamp && sentAt) {
      const stale = outsideWindow(sentAt, req.receivedAt, o.timestamp.toleranceSeconds, o.timestamp.header);
      if (stale) return stale;
    }
    let eventId: string | undefined;
    if (o.eventId && 'header' in o.eventId) {
      const h = headerOf(req, o.eventId.header.toLowerCase());
      if (isRefusal(h)) return h;
      if (h === undefined)
        return refuse('header-missing', `the ${o.eventId.header} header (the event's id) is missing`);
      eventId = h;
    } else {
      const id = bodyEventId(req.body, o.eventId?.fields);
      if (isRefusal(id)) return id;
      eventId = id;
    }
    return { ok: true, eventId, ...(sentAt ? { sentAt } : {}) };
  };
}
