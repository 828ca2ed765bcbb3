/**
 * DocuSign Connect HMAC: each `X-DocuSign-Signature-<n>` (n = 1..100, one per active Connect
 * key) is the base64 HMAC-SHA256 of the raw body, keyed with the key's text (UTF-8). A
 * delivery is genuine when any header matches any configured key (rotation on both sides).
 *
 * The scheme has no timestamp; replays are caught by the event's identity. Connect JSON (SIM)
 * messages carry `event`, `generatedDateTime` and `data.envelopeId`; `retryCount` grows on a
 * retry, so the body is no identity. The id is `eventId` where the message has one, else
 * `<envelopeId>:<event>:<generatedDateTime>` (the time DocuSign generated the message, the same
 * on every retry of it).
 */
import { isObject, parseJson, textAt } from './json';
import { isRefusal, refuse } from './refusal';
import { anyMatch, decode, hmac, type Verifier } from './signature';
import type { Refusal } from './types';

export interface DocusignOptions {
  /** Connect HMAC keys (UTF-8). */
  keys: Buffer[];
}

const HEADER = /^x-docusign-signature-(\d{1,3})$/;

export function docusignVerifier(o: DocusignOptions): Verifier {
  return (req) => {
    const values: string[] = [];
    for (const [name, v] of Object.entries(req.headers)) {
      if (!HEADER.test(name) || v === undefined) continue;
      values.push(...(Array.isArray(v) ? v : [v]));
    }
    if (values.length === 0)
      return refuse(
        'signature-missing',
        'no X-DocuSign-Signature-1..N header: the Connect configuration does not sign with HMAC',
      );
    const given = values.map((v) => decode(v, 'base64')).filter((b): b is Buffer => b !== undefined);
    if (given.length === 0)
      return refuse(
        'signature-malformed',
        `${values.length === 1 ? 'X-DocuSign-Signature-1 is' : `none of the ${values.length} X-DocuSign-Signature headers is`} valid base64`,
      );
    if (
      !anyMatch(
        given,
        o.keys.map((k) => hmac('sha256', k, [req.body])),
      )
    ) {
      return refuse(
        'signature-invalid',
        `${given.length === 1 ? 'the X-DocuSign-Signature header does' : `none of the ${given.length} X-DocuSign-Signature headers does`} not match the body under any configured Connect key`,
      );
    }
    const id = docusignEventId(req.body);
    if (isRefusal(id)) return id;
    return { ok: true, ...id };
  };
}

function docusignEventId(body: Buffer): { eventId: string; sentAt?: Date } | Refusal {
  const doc = parseJson(body)?.value;
  if (!isObject(doc))
    return refuse('body-malformed', 'the body is not a JSON object (Connect must send JSON SIM messages)');
  const generated = textAt(doc, 'generatedDateTime');
  const sentAt = generated !== undefined && !Number.isNaN(Date.parse(generated)) ? new Date(generated) : undefined;
  const own = textAt(doc, 'eventId');
  if (own !== undefined) return { eventId: own, ...(sentAt ? { sentAt } : {}) };
  for (const f of ['data.envelopeId', 'event', 'generatedDateTime']) {
    if (textAt(doc, f) === undefined)
      return refuse('body-malformed', `expected a field "${f}" to identify the Connect event`);
  }
  return {
    eventId: `${textAt(doc, 'data.envelopeId')!}:${textAt(doc, 'event')!}:${generated!}`,
    ...(sentAt ? { sentAt } : {}),
  };
}
