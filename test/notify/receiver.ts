/**
 * A local webhook receiver for the notification tests: node:http on 127.0.0.1 and a random port.
 * It verifies every delivery twice, independently of the sender: with the repo's receiving
 * Standard Webhooks verifier (src/api/webhooks/standard.ts) and with a plain node:crypto HMAC of
 * "id.timestamp.body" under the base64-decoded `whsec_` key; and answers as the test scripts.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { standardKey, standardVerifier } from '../../src/api/webhooks/standard';

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  json: unknown;
  /** The repo's verifier accepted it. */
  verified: boolean;
  /** The independent HMAC check accepted it. */
  hmacOk: boolean;
  refusal?: string;
  receivedAt: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  close(): Promise<void>;
}

/** A fresh Standard Webhooks secret: whsec_ + base64 of 32 random bytes. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function ownCheck(secret: string, h: IncomingHttpHeaders, body: string): boolean {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key)
    .update(`${String(h['webhook-id'])}.${String(h['webhook-timestamp'])}.${body}`)
    .digest();
  const list = String(h['webhook-signature'] ?? '').split(' ');
  return list.some((s) => {
    if (!s.startsWith('v1,')) return false;
    const given = Buffer.from(s.slice(3), 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** `answer(n)` for the n-th delivery (from 1); default 200. */
export async function startReceiver(
  secret: string,
  answer: (n: number, d: Delivery) => Answer = () => ({ status: 200 }),
): Promise<Receiver> {
  const key = standardKey(secret);
  if (!key) throw new Error('test secret is not base64');
  const verify = standardVerifier({ keys: [key], toleranceSeconds: 300 });
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = raw.toString('utf8');
      const result = verify({
        method: req.method ?? '',
        url: req.url ?? '',
        publicUrl: req.url ?? '',
        headers: req.headers,
        body: raw,
        receivedAt: new Date(),
      });
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const d: Delivery = {
        headers: req.headers,
        body,
        json,
        verified: result.ok,
        hmacOk: ownCheck(secret, req.headers, body),
        ...(result.ok ? {} : { refusal: result.detail }),
        receivedAt: Date.now(),
      };
      deliveries.push(d);
      const a = answer(deliveries.length, d);
      res.writeHead(a.status, { 'content-type': 'text/plain', ...(a.headers ?? {}) });
      res.end(a.body ?? (a.status < 300 ? 'ok' : 'no'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/secret-path-token`,
    deliveries,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
