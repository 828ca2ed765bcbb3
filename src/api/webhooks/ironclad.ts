/**
 * Ironclad webhook verification (developer.ironcladapp.com, "Webhook Verification"):
 * `X-Ironclad-Webhook-Event-Id` names the event; `X-Ironclad-Webhook-Verification` is a JSON
 * object `{ nonce, signAlgorithm, signature, encoding }`. The signature covers event id + the
 * JSON body + nonce, in that order, made with the account's RSA key and checked with its
 * public key (PEM, from `GET /webhooks/verification-key`), RSA-SHA256 (PKCS#1 v1.5).
 *
 * Ironclad's own example verifies `JSON.stringify(req.body)`, the parsed body serialised
 * again; that is the raw body whenever Ironclad sends compact JSON. We verify the raw bytes,
 * and when they do not match and the body is JSON, its compact re-serialisation as well.
 *
 * No timestamp is signed (Ironclad retries for hours): replays are caught by the event id.
 * The events are thin (ids only): the source fetches the record afterwards (fetch.ts).
 */
import { type KeyObject, verify } from 'node:crypto';
import { z } from 'zod';
import { isObject, parseJson, textAt } from './json';
import { isRefusal, refuse } from './refusal';
import { decode, excerpt, headerOf, type Verifier } from './signature';

export interface IroncladOptions {
  /** The account's verification keys (more than one while Ironclad rotates). */
  keys: KeyObject[];
}

const VerificationSchema = z.object({
  nonce: z.string().min(1),
  signAlgorithm: z.string().min(1),
  signature: z.string().min(1),
  encoding: z.string().min(1),
});

/** The names Ironclad has used for RSA with SHA-256. */
const RSA_SHA256 = new Set(['rsa-sha256', 'sha256', 'sha-256']);

export function ironcladVerifier(o: IroncladOptions): Verifier {
  return (req) => {
    const eventId = headerOf(req, 'x-ironclad-webhook-event-id');
    const header = headerOf(req, 'x-ironclad-webhook-verification');
    if (isRefusal(eventId)) return eventId;
    if (isRefusal(header)) return header;
    if (header === undefined)
      return refuse('signature-missing', 'the X-Ironclad-Webhook-Verification header is missing');
    if (eventId === undefined)
      return refuse(
        'header-missing',
        'the X-Ironclad-Webhook-Event-Id header is missing (the signature covers event id, body and nonce)',
      );
    const parsed = parseJson(header);
    const v = VerificationSchema.safeParse(parsed?.value);
    if (!v.success) {
      const what = parsed
        ? v.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
        : 'not JSON';
      return refuse(
        'signature-malformed',
        `X-Ironclad-Webhook-Verification must be a JSON object with nonce, signAlgorithm, signature and encoding: ${what}`,
      );
    }
    const { nonce, signAlgorithm, signature, encoding } = v.data;
    if (!RSA_SHA256.has(signAlgorithm.toLowerCase()))
      return refuse(
        'signature-malformed',
        `X-Ironclad-Webhook-Verification: signAlgorithm "${excerpt(signAlgorithm)}" is not RSA-SHA256`,
      );
    if (encoding !== 'base64' && encoding !== 'hex')
      return refuse(
        'signature-malformed',
        `X-Ironclad-Webhook-Verification: encoding "${excerpt(encoding)}" is neither base64 nor hex`,
      );
    const given = decode(signature, encoding);
    if (!given)
      return refuse('signature-malformed', `X-Ironclad-Webhook-Verification: the signature is not valid ${encoding}`);

    const doc = parseJson(req.body);
    const bodies = [req.body];
    if (doc) {
      const compact = Buffer.from(JSON.stringify(doc.value));
      if (!compact.equals(req.body)) bodies.push(compact);
    }
    const signedBy = (body: Buffer): boolean => {
      const data = Buffer.concat([Buffer.from(eventId), body, Buffer.from(nonce)]);
      return o.keys.some((key) => {
        try {
          return verify('sha256', data, key, given);
        } catch {
          return false;
        }
      });
    };
    if (!bodies.some(signedBy))
      return refuse(
        'signature-invalid',
        'X-Ironclad-Webhook-Verification: the signature does not verify over event id, body and nonce with any configured public key',
      );

    const timestamp = isObject(doc?.value) ? textAt(doc.value, 'timestamp') : undefined;
    const sentAt = timestamp !== undefined && !Number.isNaN(Date.parse(timestamp)) ? new Date(timestamp) : undefined;
    return { ok: true, eventId, ...(sentAt ? { sentAt } : {}) };
  };
}
