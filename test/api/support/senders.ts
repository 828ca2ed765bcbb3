/**
 * Webhook senders for tests, as each contract system signs (node:crypto, independently of the
 * code under test): the secrets handed to the sources loader, the signers, and a loopback app that
 * plays Ironclad (it signs thin events with an RSA key pair made here and serves records over REST
 * with bearer auth). Used by the verifier tests (test/api/webhooks.test.ts) and the HTTP ones.
 */
import { createHmac, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';

export const EXAMPLES = join(resolve(__dirname, '..', '..', '..'), 'examples', 'webhook');

export const example = (name: string): Buffer => readFileSync(join(EXAMPLES, name));
export const exampleJson = (name: string): Record<string, unknown> =>
  JSON.parse(example(name).toString('utf8')) as Record<string, unknown>;

// ---- secrets (in the environment handed to the loader, never in a file) ----------------------

export const whsec = (key: Buffer): string => `whsec_${key.toString('base64')}`;
export const CLM_KEY = randomBytes(32);
export const CLM_KEY_NEXT = randomBytes(32);
export const HUBSPOT_SECRET = 'hs-client-secret-1b2c3d';
export const HUBSPOT_SECRET_NEXT = 'hs-client-secret-9z8y7x';
export const DOCUSIGN_KEY = 'dsKey+A1/b2C3d4E5f6G7h8I9j0=';
export const DOCUSIGN_KEY_PREVIOUS = 'dsKey+Old0/z9Y8x7W6v5U4t3S2=';
export const INTERNAL_SECRET = 'internal-secret-42';
export const INTERNAL_SECRET_NEXT = 'internal-secret-43';
export const IRONCLAD_TOKEN = 'ironclad-api-token-abc';
export const ironcladKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const ironcladNext = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const pem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }).toString();

// ---- signers, as each contract system signs ---------------------------------------------------

export function standardHeaders(keys: Buffer[], id: string, ts: number, body: Buffer): Record<string, string> {
  const sigs = keys.map((k) => `v1,${createHmac('sha256', k).update(`${id}.${ts}.`).update(body).digest('base64')}`);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(ts),
    'webhook-signature': sigs.join(' '),
    'content-type': 'application/json',
  };
}

export function hubspotHeaders(
  secret: string,
  method: string,
  uri: string,
  body: Buffer,
  tsMs: number,
): Record<string, string> {
  const sig = createHmac('sha256', secret).update(`${method}${uri}`).update(body).update(String(tsMs)).digest('base64');
  return {
    'x-hubspot-signature-v3': sig,
    'x-hubspot-request-timestamp': String(tsMs),
    'content-type': 'application/json',
  };
}

export const docusignSig = (key: string, body: Buffer): string =>
  createHmac('sha256', key).update(body).digest('base64');

export const githubSig = (secret: string, body: Buffer): string =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** Ironclad's signature over event id + body + nonce, RSA-SHA256, base64. */
export function ironcladHeaders(
  key: KeyObject,
  eventId: string,
  body: Buffer,
  nonce = randomBytes(8).toString('hex'),
  extra: Partial<Record<string, string>> = {},
): Record<string, string> {
  const signature = sign('sha256', Buffer.concat([Buffer.from(eventId), body, Buffer.from(nonce)]), key).toString(
    'base64',
  );
  return {
    'x-ironclad-webhook-event-id': eventId,
    'x-ironclad-webhook-verification': JSON.stringify({
      nonce,
      signAlgorithm: 'RSA-SHA256',
      signature,
      encoding: 'base64',
      ...extra,
    }),
    'content-type': 'application/json',
  };
}

// ---- the loopback app that plays Ironclad -----------------------------------------------------

export interface Served {
  status: number;
  type: string;
  body: string;
  delayMs?: number;
  headers?: Record<string, string>;
}

export class IroncladApp {
  readonly requests: Array<{ path: string; authorization: string | undefined }> = [];
  readonly records = new Map<string, Served>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = req.url ?? '/';
      this.requests.push({ path, authorization: req.headers.authorization });
      const m = /^\/public\/api\/v1\/records\/([^/?]+)$/.exec(path);
      if (req.method !== 'GET' || !m) return void res.writeHead(405).end();
      if (req.headers.authorization !== `Bearer ${IRONCLAD_TOKEN}`) {
        return void res
          .writeHead(401, { 'content-type': 'application/json' })
          .end(JSON.stringify({ code: 'UNAUTHORIZED', message: 'invalid token' }));
      }
      const served = this.records.get(decodeURIComponent(m[1]!)) ?? {
        status: 404,
        type: 'application/json',
        body: JSON.stringify({ code: 'NOT_FOUND', message: 'record not found' }),
      };
      setTimeout(
        () => res.writeHead(served.status, { 'content-type': served.type, ...served.headers }).end(served.body),
        served.delayMs ?? 0,
      );
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }

  serveRecord(id: string, record: unknown): void {
    this.records.set(id, { status: 200, type: 'application/json; charset=utf-8', body: JSON.stringify(record) });
  }

  /** A thin event, signed as Ironclad signs it. */
  event(
    payload: Record<string, unknown>,
    eventId = `webhookEvent${randomBytes(6).toString('hex')}`,
    key: KeyObject = ironcladKeys.privateKey,
  ): { headers: Record<string, string>; body: Buffer; eventId: string } {
    const body = Buffer.from(JSON.stringify({ ...exampleJson('ironclad-workflow-completed.json'), ...payload }));
    return { headers: ironcladHeaders(key, eventId, body), body, eventId };
  }
}

/** The environment examples/webhook/sources.yaml reads its secrets from, with Ironclad's API at `ironcladUrl`. */
export function sourcesEnv(ironcladUrl: string): NodeJS.ProcessEnv {
  return {
    AMENDCTL_IRONCLAD_WEBHOOK_KEY: pem(ironcladKeys.publicKey),
    AMENDCTL_IRONCLAD_API_URL: ironcladUrl,
    AMENDCTL_IRONCLAD_API_TOKEN: IRONCLAD_TOKEN,
    AMENDCTL_HUBSPOT_CLIENT_SECRET: HUBSPOT_SECRET,
    AMENDCTL_DOCUSIGN_HMAC_KEY: DOCUSIGN_KEY,
    AMENDCTL_DOCUSIGN_HMAC_KEY_PREVIOUS: DOCUSIGN_KEY_PREVIOUS,
    AMENDCTL_CLM_WEBHOOK_SECRET: whsec(CLM_KEY),
    AMENDCTL_INTERNAL_WEBHOOK_SECRET: INTERNAL_SECRET,
  };
}
