/**
 * scim2-server (PyPI, installed by `scripts/setup.sh python` into .cache/venv): an
 * in-memory SCIM 2.0 service provider, on a free loopback port, with a static bearer token.
 *
 * Env for the tests:
 *   AMENDCTL_TEST_SCIM_URL    the SCIM base URL (…/v2)
 *   AMENDCTL_TEST_SCIM_TOKEN  the bearer token it accepts (made up per run; a test-owned server)
 *   AMENDCTL_TEST_SCIM_PORT   its port
 *
 * Also for the SCIM tests:
 *   startScimServer(name, spc?)  a second instance with another /ServiceProviderConfig
 *                                (e.g. one that announces no PATCH and no filtering)
 *   RawScim                      an independent reader of a SCIM server: raw fetch, whole
 *                                lists matched client-side, so it shares no lookup or
 *                                escaping code with the connector
 *   startHttpProxy(upstream)     an HTTP proxy in front of the real scim2-server that
 *                                records requests and lets a test hold a request or answer
 *                                it itself (429/503 with Retry-After, which scim2-server
 *                                never sends; or a pause while the test changes the server)
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listScim, type ScimGroupResource } from '../../../src/chaos/readback';
import type { AccountState } from '../../../src/connectors/types';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestServer } from '../server';
import { CACHE, freePort, startProcess, waitFor } from '../proc';

export const SCIM_BIN = join(CACHE, 'venv', 'bin', 'scim2-server');

export interface RunningScim {
  url: string;
  port: number;
  token: string;
  stop(): Promise<void>;
}

export async function startScimServer(name = 'scim', serviceProviderConfig?: object): Promise<RunningScim> {
  if (!existsSync(SCIM_BIN)) throw new Error(`${SCIM_BIN} is missing: run bash scripts/setup.sh python`);
  const port = await freePort();
  const token = randomBytes(18).toString('base64url');
  const args = ['--hostname', '127.0.0.1', '--port', String(port), `--bearer-token=${token}`];
  if (serviceProviderConfig) {
    const dir = join(CACHE, 'scim');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}-${port}-spc.json`);
    writeFileSync(file, JSON.stringify(serviceProviderConfig));
    args.push('--service-provider-config', file);
  }
  const proc = startProcess(name, SCIM_BIN, args);
  const url = `http://127.0.0.1:${port}/v2`;
  await waitFor(
    name,
    async () =>
      (
        await fetch(`${url}/ServiceProviderConfig`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(2000),
        })
      ).status === 200,
    30_000,
    proc.child,
  );
  return { url, port, token, stop: proc.stop };
}

export const scimServer: TestServer = {
  name: 'scim',
  async start() {
    const s = await startScimServer('scim');
    return {
      env: {
        AMENDCTL_TEST_SCIM_URL: s.url,
        AMENDCTL_TEST_SCIM_TOKEN: s.token,
        AMENDCTL_TEST_SCIM_PORT: String(s.port),
      },
      stop: s.stop,
    };
  },
};

interface RawUser {
  id: string;
  userName: string;
  externalId?: string;
  displayName?: string;
  active?: boolean;
  emails?: Array<{ value?: string; primary?: boolean }>;
  roles?: Array<{ value?: string }>;
  [k: string]: unknown;
}
type RawGroup = ScimGroupResource;

export class RawScim {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: unknown; etag: string | null }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/scim+json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null, etag: res.headers.get('etag') };
  }

  list<T>(endpoint: '/Users' | '/Groups'): Promise<T[]> {
    return listScim<T>(this.url, this.token, endpoint);
  }

  async users(subject: string): Promise<RawUser[]> {
    return (await this.list<RawUser>('/Users')).filter((u) => u.userName.toLowerCase() === subject.toLowerCase());
  }

  async groups(): Promise<RawGroup[]> {
    return this.list<RawGroup>('/Groups');
  }

  async readBack(subject: string): Promise<AccountState | null> {
    const [u, more] = await this.users(subject);
    if (!u) return null;
    if (more) throw new Error(`two users answer to ${subject}`);
    const groups = (await this.groups())
      .filter((g) => (g.members ?? []).some((m) => m.value === u.id))
      .map((g) => g.displayName);
    const attributes: Record<string, string> = { userName: u.userName };
    for (const k of [
      'displayName',
      'externalId',
      'nickName',
      'title',
      'userType',
      'preferredLanguage',
      'locale',
      'timezone',
      'profileUrl',
    ])
      if (typeof u[k] === 'string') attributes[k] = u[k] as string;
    const email = (u.emails ?? []).find((e) => e.primary === true) ?? u.emails?.[0];
    if (email?.value !== undefined) attributes.email = email.value;
    const roles = (u.roles ?? []).map((r) => r.value).filter((v): v is string => typeof v === 'string');
    if (roles.length > 0) attributes.roles = JSON.stringify([...new Set(roles)].sort());
    return { subject, id: u.id, active: u.active !== false, groups: groups.sort(), attributes };
  }

  async groupExists(name: string): Promise<boolean> {
    return (await this.groups()).some((g) => g.displayName === name);
  }
}

export interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  headers: IncomingMessage['headers'];
  /** The status the client got. */
  status?: number;
}

/** A hook may answer the request itself (return a response) or let it through (return undefined), after any wait. */
/** A hook's answer instead of the server's; or `lose`: the request reaches the server, and its answer is lost (the connection is cut). */
export type HookAnswer = { status: number; headers?: Record<string, string>; body?: unknown } | { lose: true };
export type Hook = (req: Seen) => Promise<HookAnswer | undefined> | undefined;

export interface HttpProxy {
  url: string;
  log: Seen[];
  hooks: Hook[];
  close(): Promise<void>;
}

/** Forwards to `upstream` (an origin, e.g. http://127.0.0.1:1234) unless a hook answers. */
export async function startHttpProxy(upstream: string): Promise<HttpProxy> {
  const log: Seen[] = [];
  const hooks: Hook[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url ?? '/', 'http://proxy');
    const seen: Seen = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query: u.searchParams,
      body: raw ? (JSON.parse(raw) as unknown) : undefined,
      headers: req.headers,
    };
    log.push(seen);
    let lose = false;
    for (const h of hooks) {
      const answer = await h(seen);
      if (answer && 'lose' in answer) {
        lose = true;
        break;
      }
      if (answer) {
        seen.status = answer.status;
        res.writeHead(answer.status, { 'content-type': 'application/scim+json', ...(answer.headers ?? {}) });
        res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
        return;
      }
    }
    const headers: Record<string, string> = {};
    for (const k of ['authorization', 'content-type', 'accept', 'if-match'])
      if (typeof req.headers[k] === 'string') headers[k] = req.headers[k];
    const up = await fetch(`${upstream}${req.url ?? '/'}`, { method: req.method, headers, body: raw || undefined });
    const text = await up.text();
    seen.status = up.status;
    if (lose) {
      res.socket?.destroy();
      return;
    }
    const out: Record<string, string> = {};
    for (const k of ['content-type', 'etag', 'location', 'retry-after']) {
      const v = up.headers.get(k);
      if (v !== null) out[k] = v;
    }
    res.writeHead(up.status, out);
    res.end(text);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(502);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    hooks,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
