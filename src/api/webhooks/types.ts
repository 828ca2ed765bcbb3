/**
 * The seam between the HTTP server (src/api/server.ts: routes, auth, problem+json) and the
 * webhook sources (src/api/webhooks: each contract system's signature scheme, its payload
 * mapping, thin-event fetches). The server hands a source the request exactly as received;
 * the source proves who sent it and turns it into amendments. Nothing here touches Temporal.
 */
import type { Amendment } from '../../domain/amendment';

/** A webhook delivery as the server received it. */
export interface WebhookRequest {
  method: string;
  /** The request target as received: path and query (`/v1/webhooks/hubspot?x=1`). */
  url: string;
  /** The absolute URL the sender signed, where a scheme signs it (HubSpot v3): from the server's configured public base URL. */
  publicUrl: string;
  /** Header names lower-cased. */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body, byte for byte (signatures cover bytes, not parsed JSON). */
  body: Buffer;
  receivedAt: Date;
}

/** The sender is proven: who, and the event's own id (for replay detection). */
export interface Verified {
  ok: true;
  /** The event's id as the source names it (`webhook-id`, a DocuSign envelope event id, an Ironclad event id...). */
  eventId: string;
  /** When the sender says it sent it, where the scheme carries it. */
  sentAt?: Date;
}

/** Why a delivery is refused: an RFC 9457 problem the server answers with. */
export interface Refusal {
  ok: false;
  /**
   * 400 malformed, 401 no or bad signature, 403 a known key that may not send here, 409 stale or replayed-outside-window,
   * 413 too large, 422 a payload that does not map (or a thin event whose record the source's API does not have),
   * 502 the source's API answered a thin event's fetch with something other than the record (not JSON, our token refused).
   */
  status: 400 | 401 | 403 | 409 | 413 | 422 | 502;
  /** A stable problem type slug: `signature-missing`, `signature-invalid`, `timestamp-stale`, `payload-unmappable` ... */
  type: string;
  title: string;
  /** What exactly was wrong, never a secret or an expected signature. */
  detail: string;
}

export interface WebhookSource {
  /** The `{source}` of `POST /v1/webhooks/{source}`. */
  readonly name: string;
  /** The signature scheme (`standard-webhooks`, `hubspot-v3`, `docusign`, `ironclad`, `hmac`). */
  readonly scheme: string;
  /** Prove the sender; never throws for bad input (a Refusal instead). */
  verify(req: WebhookRequest): Promise<Verified | Refusal>;
  /**
   * The amendments a verified delivery carries (usually one; none for an event that changes no
   * contract, e.g. a DocuSign envelope still in progress). Thin events are fetched from the
   * source's API here. A Refusal (422) when the payload does not map, naming the field.
   */
  amendments(req: WebhookRequest, verified: Verified): Promise<Amendment[] | Refusal>;
}
