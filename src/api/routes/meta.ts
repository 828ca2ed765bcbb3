/**
 * GET /openapi.json (this API, generated from its routes), GET /healthz (the process answers),
 * GET /readyz (Temporal answers too) and GET /metrics (Prometheus: src/observability/metrics.ts).
 */
import { registry } from '../../observability/metrics';
import { ProblemError } from '../problem';
import { type Route, route } from '../route';
import { HealthSchema, ReadinessSchema } from '../schemas';

const READY_TIMEOUT_MS = 3_000;

export function metaRoutes(document: () => Record<string, unknown>): Route[] {
  return [
    route({
      method: 'GET',
      path: '/openapi.json',
      operationId: 'getOpenApi',
      summary: 'This document (OpenAPI 3.1)',
      tag: 'meta',
      access: 'public',
      answers: { 200: { description: 'the OpenAPI 3.1 document' } },
      handle: async () => ({ status: 200, body: document() }),
    }),
    route({
      method: 'GET',
      path: '/healthz',
      operationId: 'getHealth',
      summary: 'Liveness: the server answers',
      tag: 'meta',
      access: 'public',
      answers: { 200: { description: 'the server is up', schema: HealthSchema } },
      handle: async () => ({ status: 200, body: { status: 'ok' } }),
    }),
    route({
      method: 'GET',
      path: '/readyz',
      operationId: 'getReadiness',
      summary: 'Readiness: the server answers and Temporal answers it',
      tag: 'meta',
      access: 'public',
      answers: {
        200: { description: 'ready', schema: ReadinessSchema },
        503: { description: 'not ready: the detail names the check that failed and why', headers: ['Retry-After'] },
      },
      handle: async (_req, deps) => {
        const { connection } = deps.client.client;
        const detail = await connection
          .withDeadline(Date.now() + READY_TIMEOUT_MS, () => connection.workflowService.getSystemInfo({}))
          .then(() => undefined)
          .catch((err: unknown) => (err as Error)?.message ?? String(err));
        if (detail !== undefined)
          throw new ProblemError(503, 'not-ready', 'Not ready', `temporal: ${detail}`, {
            headers: { 'retry-after': '5' },
          });
        return { status: 200, body: { ready: true, checks: [{ name: 'temporal', ok: true }] } };
      },
    }),
    route({
      method: 'GET',
      path: '/metrics',
      operationId: 'getMetrics',
      summary: 'Prometheus metrics (text exposition format)',
      tag: 'meta',
      access: 'public',
      answers: { 200: { description: 'the metrics, text/plain; version=0.0.4' } },
      handle: async () => ({
        status: 200,
        body: await registry.metrics(),
        headers: { 'content-type': registry.contentType },
      }),
    }),
  ];
}
