/**
 * `amendctl serve`: API v1 on Fastify. Routes are declared in ./routes (each with its access,
 * schemas and answers), registered here and described by /openapi.json from the same
 * declarations. Bodies: JSON or YAML documents; webhook bodies are kept as raw bytes for
 * their signatures. Every error is a problem+json; every request is one access-log line.
 */
import { ServiceError } from '@temporalio/client';
import Fastify, { type FastifyInstance, type FastifyReply, type onRequestHookHandler } from 'fastify';
import { apiRequestSeconds, apiRequestsTotal } from '../observability/metrics';
import { inSpan } from '../observability/tracing';
import { Authenticator, type AuthConfig, type Scope } from './auth';
import type { ApiLogger } from './log';
import { openApiDocument } from './openapi';
import { PROBLEM_MEDIA_TYPE, ProblemError, problemFrom } from './problem';
import { inboxRoutes, type InboxOptions } from './inbox';
import { DOCUMENT_MEDIA, type Route, type RouteDeps } from './route';
import { amendmentRoutes } from './routes/amendments';
import { approvalRoutes } from './routes/approvals';
import { contractRoutes } from './routes/contracts';
import { metaRoutes } from './routes/meta';
import { webhookRoutes } from './routes/webhooks';

export interface ApiServerDeps extends RouteDeps {
  auth: AuthConfig;
  logger: ApiLogger;
  /** The approvals inbox (/inbox, src/api/inbox): served only when given a users file and/or an OpenID provider. */
  inbox?: InboxOptions;
}

export const DEFAULT_LIMITS = { bodyBytes: 1024 * 1024, temporalMs: 10_000 } as const;

function sendProblem(reply: FastifyReply, p: ProblemError): FastifyReply {
  return reply
    .code(p.status)
    .headers(p.extra.headers ?? {})
    .type(PROBLEM_MEDIA_TYPE)
    .send(JSON.stringify(p.problem));
}

export function buildApiServer(deps: ApiServerDeps): FastifyInstance {
  const { limits, logger } = deps;
  const app = Fastify({ logger: false, bodyLimit: limits.bodyBytes, routerOptions: { maxParamLength: 256 } });
  const auth = new Authenticator(deps.auth);
  let document: Record<string, unknown> = {};
  const routes: Route[] = [
    ...amendmentRoutes,
    ...approvalRoutes,
    ...contractRoutes,
    ...webhookRoutes,
    ...metaRoutes(() => document),
  ];
  document = openApiDocument(routes, { version: '1.0.0' });

  const authenticate =
    (scope: Scope): onRequestHookHandler =>
    async (req) => {
      req.principal = await auth.authenticate(req.headers.authorization, scope);
    };
  const register = (scope: FastifyInstance, r: Route): void => {
    scope.route({
      method: r.method,
      url: r.path.replace(/\{(\w+)\}/g, ':$1'),
      ...(r.access !== 'public' && r.access !== 'signature' ? { onRequest: authenticate(r.access) } : {}),
      // One span per request (the route pattern names it), the parent of the workflow it starts (src/observability/tracing.ts).
      handler: (req, reply) =>
        inSpan(`${r.method} ${r.path}`, { 'http.request.method': r.method, 'http.route': r.path }, async () => {
          const out = await r.handle(req, deps);
          return reply
            .code(out.status)
            .headers(out.headers ?? {})
            .send(out.body);
        }),
    });
  };

  // Documents: JSON or YAML, kept as text for the parser `amendctl submit` uses (src/domain/document.ts).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser([...DOCUMENT_MEDIA], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  for (const r of routes.filter((x) => x.body?.media !== 'raw')) register(app, r);
  // Webhooks: any media type, the bytes exactly as sent (signatures cover bytes, not parsed JSON).
  void app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    for (const r of routes.filter((x) => x.body?.media === 'raw')) register(raw, r);
  });
  // The approvals inbox: its pages, sign-in and the JSON its page reads (not part of API v1, not in /openapi.json).
  if (deps.inbox) inboxRoutes(app, { ...deps, inbox: deps.inbox });
  // The intake's starts in flight end before the server is closed (what is left, the next instance starts).
  const intake = deps.intake;
  if (intake) app.addHook('onClose', () => intake.close());

  app.setErrorHandler((err, req, reply) => {
    const p = problemFrom(err, limits);
    if (p.status < 500 || err instanceof ProblemError) return sendProblem(reply, p);
    const detail =
      err instanceof ServiceError
        ? [err.message, err.cause?.message].filter(Boolean).join(': ').slice(0, 300)
        : undefined;
    logger({
      kind: 'error',
      time: new Date().toISOString(),
      request: req.id,
      route: req.routeOptions.url ?? null,
      error: (err as Error).name ?? 'Error',
      ...(detail ? { detail } : {}),
    });
    return sendProblem(
      reply,
      new ProblemError(
        p.status,
        p.slug,
        p.title,
        `the server could not answer; its log has the error under request ${req.id}`,
      ),
    );
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(
      reply,
      new ProblemError(404, 'not-found', 'Not found', `no route ${req.method} ${req.url.split('?')[0]}`),
    ),
  );
  app.addHook('onResponse', async (req, reply) => {
    const labels = { route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    apiRequestsTotal.inc(labels);
    apiRequestSeconds.observe({ route: labels.route }, reply.elapsedTime / 1000);
    logger({
      kind: 'access',
      time: new Date().toISOString(),
      request: req.id,
      method: req.method,
      route: req.routeOptions.url ?? null,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ...(req.principal ? { caller: req.principal.log } : {}),
    });
  });
  return app;
}
