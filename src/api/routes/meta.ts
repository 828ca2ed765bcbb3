/** GET /openapi.json (this API, generated from its routes) and GET /healthz (the process answers). */
import { type Route, route } from '../route';
import { HealthSchema } from '../schemas';

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
  ];
}
