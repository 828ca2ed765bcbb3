/**
 * Tracing (issue 14, point 2), on the real dev server, PostgreSQL and scim2-server: the spans
 * of one amendment submitted over HTTP to the API (`amendctl serve`'s server, in-process),
 * collected in-process, form one tree — the API request, the workflow's start and run, each
 * batch activity, and each target call inside it — and the amendment's audit record carries
 * the trace id. The worker bundles its workflows from the sources with the
 * OpenTelemetry workflow interceptors, as the traced bundle has them.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import { AuditStore } from '../../src/audit/store';
import { newApiKey } from '../../src/api/auth';
import { buildApiServer, DEFAULT_LIMITS } from '../../src/api/server';
import { installTracing } from '../../src/observability/tracing';
import { need } from '../harness/env';
import { until } from '../harness/until';
import { baseline, customer } from './fixtures';
import { startStack, type Stack } from './stack';

const spans = new InMemorySpanExporter();
let stack: Stack;
let audit: AuditStore;
let api: FastifyInstance;
let base = '';
const key = newApiKey({ id: 'svc-traced', scopes: ['submit', 'read'] });

beforeAll(async () => {
  const tracing = installTracing({ processor: new SimpleSpanProcessor(spans), serviceName: 'amendctl-test' });
  stack = await startStack('tracing', {
    env: { AMENDCTL_WORKFLOW_SOURCES: '1', AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT') },
    tracing,
  });
  audit = AuditStore.fromEnv(process.env);
  api = buildApiServer({
    client: stack.client,
    sources: new Map(),
    auth: { keys: [key.entry] },
    limits: DEFAULT_LIMITS,
    logger: () => undefined,
  });
  base = await api.listen({ port: 0, host: '127.0.0.1' });
}, 120_000);
afterAll(async () => {
  await api?.close();
  await audit?.close();
  await stack?.stop();
});

test('one trace: API request -> workflow start -> workflow run -> batch activities -> target calls; its id in the audit record', async () => {
  const c = customer('traced');
  const a = baseline(c, [
    ['ann', 'member'],
    ['ben', 'viewer'],
  ]);
  const res = await fetch(`${base}/v1/amendments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
    body: JSON.stringify(a),
  });
  expect(res.status).toBe(202);
  expect((await stack.client.waitForResult(a.amendmentId)).status).toBe('completed');
  const row = await audit.amendmentRow(a.amendmentId);
  const request = spans.getFinishedSpans().find((s) => s.name === 'POST /v1/amendments' && !s.parentSpanId);
  const traceId = request?.spanContext().traceId;
  expect(traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(row?.record.traceId).toBe(traceId);

  // The workflow's own spans reach the exporter through a sink after its last activation: wait for them.
  const mine = await until(
    'the workflow spans',
    async () => {
      const all = spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      return all.some((s) => s.name === 'RunWorkflow:amendmentV4') &&
        all.some((s) => s.name === 'StartWorkflow:amendmentV4')
        ? all
        : undefined;
    },
    20_000,
  );
  const byId = new Map(mine.map((s) => [s.spanContext().spanId, s]));
  const parent = (s: ReadableSpan) => (s.parentSpanId ? byId.get(s.parentSpanId) : undefined);
  const chain = (s: ReadableSpan): string[] => {
    const names: string[] = [];
    for (let p: ReadableSpan | undefined = s; p; p = parent(p)) names.unshift(p.name);
    return names;
  };
  const calls = mine.filter((s) => /^(idp|warehouse) \w+/.test(s.name));
  expect(calls.length).toBeGreaterThan(0);
  for (const target of ['idp', 'warehouse']) {
    const call = calls.find((s) => s.name.startsWith(`${target} ensureAccount`));
    expect(call && chain(call)).toEqual([
      'POST /v1/amendments',
      'StartWorkflow:amendmentV4',
      'RunWorkflow:amendmentV4',
      'StartActivity:applyBatch',
      'RunActivity:applyBatch',
      `${target} ensureAccount`,
    ]);
  }
  // No span names a person.
  expect(JSON.stringify(mine.map((s) => s.attributes))).not.toContain(c.domain);
}, 120_000);
