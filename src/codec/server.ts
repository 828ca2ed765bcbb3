/**
 * The codec server: POST {prefix}/decode and {prefix}/encode with { payloads: [...] } (proto3
 * JSON), as the Temporal Web UI and `temporal --codec-endpoint` call it.
 *
 * Access (who may read decrypted payloads):
 * - It listens on loopback by default.
 * - Every request needs the token: `Authorization: Bearer TOKEN`, or the token as the first
 *   path segment (`http://127.0.0.1:PORT/TOKEN/decode`). The dev server's Web UI has no login,
 *   so it cannot send a bearer token (its "pass access token" option forwards the UI's own
 *   OIDC token, and `temporal server start-dev --ui-codec-endpoint` takes only a URL); the
 *   UI appends /decode to the configured endpoint, so `amendctl dev` passes the endpoint
 *   with the token in the path. Anyone who can open that UI, or read the dev server's
 *   command line on this machine, can therefore decode: that is the loopback dev setup.
 * - Browsers: a request with an Origin header is refused unless the origin is allowed (the
 *   UI's), and CORS headers are sent only for allowed origins (with credentials).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { AesGcmCodec, type CodecKeys, fromJson, type PayloadJson, toJson } from './index';

export interface CodecServerOptions {
  keys: CodecKeys;
  token: string;
  /** Browser origins allowed to call (the Web UI), e.g. http://127.0.0.1:8233. */
  allowedOrigins: string[];
  host?: string;
  port?: number;
  /** Called for each request (method, path without the token, status). */
  log?: (line: string) => void;
}

export interface CodecServer {
  /** The base URL with the token in the path: give this to the UI (`--ui-codec-endpoint`). */
  endpoint: string;
  /** The base URL without the token (callers send `Authorization: Bearer TOKEN`). */
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

const MAX_BODY = 8 * 1024 * 1024;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  if (opts.token.length < 16) throw new Error('the codec server token must be at least 16 characters');
  const codec = new AesGcmCodec(opts.keys);
  const allowed = new Set(opts.allowedOrigins.map((o) => o.replace(/\/$/, '')));
  const host = opts.host ?? '127.0.0.1';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!allowed.has(origin)) return send(res, 403, { error: `origin ${origin} is not allowed` });
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization, Caller-Type');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return 204;
    }
    // The token: a bearer header, or the first path segment.
    const path = (req.url ?? '/').split('?')[0]!;
    const segments = path.split('/').filter(Boolean);
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    let op: string | undefined;
    if (segments.length === 2 && sameSecret(segments[0]!, opts.token)) op = segments[1];
    else if (segments.length === 1 && bearer !== undefined && sameSecret(bearer, opts.token)) op = segments[0];
    else if (segments.length === 1 && segments[0] === 'health') return send(res, 200, { ok: true });
    else
      return send(res, 401, {
        error: 'a valid token is required (Authorization: Bearer, or the endpoint with the token)',
      });
    if (req.method !== 'POST' || (op !== 'decode' && op !== 'encode'))
      return send(res, 404, { error: 'POST /decode or /encode' });
    let body: { payloads?: PayloadJson[] };
    try {
      body = JSON.parse(await readBody(req)) as typeof body;
    } catch (err) {
      return send(res, 400, { error: `bad request: ${(err as Error).message}` });
    }
    if (!Array.isArray(body.payloads)) return send(res, 400, { error: 'expected { "payloads": [...] }' });
    try {
      const payloads = body.payloads.map(fromJson);
      const out = op === 'decode' ? await codec.decode(payloads) : await codec.encode(payloads);
      return send(res, 200, { payloads: out.map(toJson) });
    } catch (err) {
      return send(res, 422, { error: (err as Error).message });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).then(
      (status) => opts.log?.(`${req.method} ${(req.url ?? '').replace(opts.token, '***')} ${status}`),
      (err: Error) => {
        if (!res.headersSent) send(res, 500, { error: err.message });
      },
    );
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(opts.port ?? 0, host, () => res());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host}:${port}`;
  return {
    url,
    endpoint: `${url}/${opts.token}`,
    port,
    server,
    close: () => new Promise((res) => server.close(() => res())),
  };
}

function send(res: ServerResponse, status: number, body: unknown): number {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  return status;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((res, rej) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        rej(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => res(Buffer.concat(chunks).toString('utf8')));
    req.on('error', rej);
  });
}
