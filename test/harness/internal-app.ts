/**
 * The "internal app" of the HTTP target, as a real Node `http` server on loopback with its
 * own state: it verifies every request's HMAC-SHA256 signature, timestamp and nonce
 * (replay), decodes path segments one by one and parses bodies as JSON. Its API is the one
 * examples/directory/targets.yaml declares for `billing-app`:
 *
 *   GET|PUT|PATCH|DELETE /api/users/{subject}        POST /api/users/{subject}/enable|disable
 *   PUT|DELETE /api/users/{subject}/roles/{role}     PUT|DELETE /api/groups/{group}/members/{subject}
 *
 * Used by test/connectors/http.test.ts (the connector's own tests) and test/e2e/directory.test.ts
 * (the second example policy through the workflow), each with its own instance and secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AccountState } from '../../src/connectors/types';

export interface AppUser {
  id: string;
  name?: string;
  email?: string;
  externalId?: string;
  active: boolean;
  groups: Set<string>;
  roles: Set<string>;
}

/** The internal app: real state, real HMAC verification with the shared `secret`. */
export class InternalApp {
  readonly users = new Map<string, AppUser>();
  readonly nonces = new Map<string, number>();
  rejected: string[] = [];
  requests = 0;
  /** Answers to give instead of the next requests (status, headers). */
  inject: Array<{ status: number; headers?: Record<string, string> }> = [];
  lastBody: unknown;
  lastSigned: { method: string; path: string; headers: Record<string, string>; body: string } | undefined;
  private server: Server | undefined;
  private seq = 0;
  port = 0;

  constructor(private readonly secret: string) {}

  /** The base URL a target's `baseUrl` points at. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/api`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let data = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (data += c));
      req.on('end', () => this.handle(req, res, data));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
  }

  stop(): Promise<void> {
    this.server?.closeAllConnections();
    return new Promise((r) => this.server!.close(() => r()));
  }

  private verify(req: IncomingMessage, body: string): string | null {
    const ts = req.headers['x-amendctl-timestamp'];
    const nonce = req.headers['x-amendctl-nonce'];
    const sig = req.headers['x-amendctl-signature'];
    if (typeof ts !== 'string' || typeof nonce !== 'string' || typeof sig !== 'string') return 'unsigned';
    if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return 'stale timestamp';
    const input = `${ts}\n${nonce}\n${req.method}\n${req.url}\n${body}`;
    const want = Buffer.from(`sha256=${createHmac('sha256', this.secret).update(input, 'utf8').digest('hex')}`);
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return 'bad signature';
    if (this.nonces.has(nonce)) return 'replayed nonce';
    this.nonces.set(nonce, Date.now());
    return null;
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    this.requests++;
    const send = (status: number, json?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
      res.end(json === undefined ? undefined : JSON.stringify(json));
    };
    const bad = this.verify(req, body);
    if (bad) {
      this.rejected.push(bad);
      return send(401, { error: bad });
    }
    this.lastSigned = {
      method: req.method!,
      path: req.url!,
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
      body,
    };
    const injected = this.inject.shift();
    if (injected) return send(injected.status, { error: 'injected' }, injected.headers);
    let parsed: Record<string, unknown> = {};
    if (body !== '') {
      try {
        parsed = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return send(400, { error: 'body is not JSON' });
      }
    }
    this.lastBody = parsed;
    // Split first, then decode each segment: an encoded "/" stays inside its segment.
    const url = new URL(req.url!, 'http://x');
    const seg = url.pathname
      .split('/')
      .slice(1)
      .map((s) => decodeURIComponent(s));
    if (seg[0] !== 'api') return send(404, { error: 'no route' });
    const [, kind, a, b, c] = seg;
    const m = req.method;
    if (kind === 'users' && a !== undefined) {
      const u = this.users.get(a);
      if (b === undefined) {
        if (m === 'GET') return u ? send(200, this.view(a, u)) : send(404, { error: 'no user' });
        if (m === 'PUT') {
          const user = u ?? { id: `u${++this.seq}`, active: true, groups: new Set<string>(), roles: new Set<string>() };
          this.assign(user, parsed);
          user.active = true;
          this.users.set(a, user);
          return send(u ? 200 : 201, this.view(a, user));
        }
        if (m === 'PATCH') {
          if (!u) return send(404, { error: 'no user' });
          this.assign(u, parsed);
          return send(200, this.view(a, u));
        }
        if (m === 'DELETE') return this.users.delete(a) ? send(204) : send(404, { error: 'no user' });
      }
      if (!u) return send(404, { error: 'no user' });
      if (m === 'POST' && (b === 'disable' || b === 'enable') && c === undefined) {
        u.active = b === 'enable';
        return send(204);
      }
      if (b === 'roles' && c !== undefined) {
        if (m === 'PUT') return (u.roles.add(c), send(204));
        if (m === 'DELETE') return u.roles.delete(c) ? send(204) : send(404, { error: 'no such role' });
      }
    }
    if (kind === 'groups' && a !== undefined && b === 'members' && c !== undefined) {
      const u = this.users.get(c);
      if (!u) return send(404, { error: 'no user' });
      if (m === 'PUT') return (u.groups.add(a), send(204));
      if (m === 'DELETE') return u.groups.delete(a) ? send(204) : send(404, { error: 'not a member' });
    }
    return send(405, { error: `no route for ${m} ${req.url}` });
  }

  private assign(u: AppUser, body: Record<string, unknown>): void {
    for (const k of ['name', 'email', 'externalId'] as const) {
      if (!(k in body)) continue;
      const v = body[k];
      if (v === null) delete u[k];
      else if (typeof v === 'string') u[k] = v;
    }
  }

  private view(subject: string, u: AppUser) {
    return {
      id: u.id,
      userName: subject,
      profile: { name: u.name ?? null, email: u.email ?? null, externalId: u.externalId ?? null },
      status: u.active ? 'active' : 'disabled',
      groups: [...u.groups],
      roles: [...u.roles].map((name) => ({ name })),
    };
  }

  /** The account straight from the app's state, normalised like AccountState. */
  state(subject: string): AccountState | null {
    const u = this.users.get(subject);
    if (!u) return null;
    const attributes: Record<string, string> = {};
    if (u.name !== undefined) attributes.displayName = u.name;
    if (u.email !== undefined) attributes.email = u.email;
    if (u.externalId !== undefined) attributes.externalId = u.externalId;
    return { subject, id: u.id, active: u.active, groups: [...new Set([...u.groups, ...u.roles])].sort(), attributes };
  }
}
