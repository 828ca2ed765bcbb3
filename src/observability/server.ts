/**
 * The operations endpoint of a worker process: `/healthz` (the process lives), `/readyz`
 * (its workers poll and each target answers; 503 naming what is not ready), and `/metrics`
 * (amendctl's metrics, src/observability/metrics.ts, followed by the SDK's runtime metrics,
 * which Runtime.install serves on a loopback port of their own). Plain node:http: a worker
 * needs no web framework for three read-only routes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { registry } from './metrics';

export interface ReadyCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface Readiness {
  ready: boolean;
  checks: ReadyCheck[];
}

export interface OpsServerOptions {
  port: number;
  host?: string;
  ready: () => Promise<Readiness>;
  /** Where the SDK's Prometheus exporter listens (`http://127.0.0.1:PORT/metrics`), if installed. */
  sdkMetricsUrl?: string;
}

export interface OpsServer {
  url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function sdkMetrics(url: string | undefined): Promise<string> {
  if (!url) return '';
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return r.ok ? await r.text() : '';
  } catch {
    return ''; // the runtime's exporter not up yet: amendctl's metrics alone
  }
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://ops').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(
        res,
        405,
        'application/problem+json',
        JSON.stringify({
          type: 'about:blank',
          title: 'Method Not Allowed',
          status: 405,
          detail: `${req.method} is not served here; use GET`,
        }),
      );
    if (path === '/healthz') return send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }));
    if (path === '/readyz') {
      const r = await opts.ready();
      return send(res, r.ready ? 200 : 503, 'application/json', JSON.stringify(r));
    }
    if (path === '/metrics') {
      const [own, sdk] = await Promise.all([registry.metrics(), sdkMetrics(opts.sdkMetricsUrl)]);
      return send(res, 200, registry.contentType, sdk ? `${own}\n${sdk}` : own);
    }
    send(
      res,
      404,
      'application/problem+json',
      JSON.stringify({
        type: 'about:blank',
        title: 'Not Found',
        status: 404,
        detail: `no route ${path}; this endpoint serves /healthz, /readyz and /metrics`,
      }),
    );
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) =>
      send(
        res,
        500,
        'application/problem+json',
        JSON.stringify({
          type: 'about:blank',
          title: 'Internal Server Error',
          status: 500,
          detail: (err as Error)?.message ?? String(err),
        }),
      ),
    );
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
