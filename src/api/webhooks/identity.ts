/**
 * An event's identity where the scheme carries no event id header: stable for a redelivery
 * of the same event, so the server can make (source, eventId) idempotent.
 *
 * - `fields` configured: those body fields, joined with ":" (`objectId`, `occurredAt`).
 * - otherwise the SHA-256 of the body: a redelivery repeats the body byte for byte (HubSpot
 *   workflow webhooks, most HMAC senders); a sender that changes the body on a retry (an
 *   attempt counter) needs `fields`.
 */
import { createHash } from 'node:crypto';
import { parseJson, textAt } from './json';
import { refuse } from './refusal';
import type { Refusal } from './types';

export function bodyEventId(body: Buffer, fields: ReadonlyArray<string> | undefined): string | Refusal {
  if (!fields) return `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const doc = parseJson(body);
  if (!doc)
    return refuse('body-malformed', `the body is not JSON, so it has no ${fields.join(', ')} to identify the event`);
  const parts: string[] = [];
  for (const f of fields) {
    const v = textAt(doc.value, f);
    if (v === undefined)
      return refuse('body-malformed', `expected a field "${f}" (a string or number) identifying the event`);
    parts.push(v);
  }
  return parts.join(':');
}
