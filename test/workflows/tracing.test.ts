/**
 * Tracing (issue 14, point 2), on the real dev server, PostgreSQL and scim2-server: the spans
 * of one amendment, collected in-process, form one tree — the caller's request, the workflow's
 * start and run, each batch activity, and each target call inside it — and the amendment's
 * audit record carries the trace id. The worker bundles its workflows from the sources with the
 * OpenTelemetry workflow interceptors, as the traced bundle has them.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AuditStore } from '../../src/audit/store';
import { installTracing, tracer } from '../../src/observability/tracing';
import { need } from '../harness/env';
import { baseline, customer } from './fixtures';
import { startStack, type Stack } from './stack';

const spans = new InMemorySpanExporter();
let stack: Stack;
let audit: AuditStore;

beforeAll(async () => {
  const tracing = installTracing({ processor: new SimpleSpanProcessor(spans), serviceName: 'amendctl-test' });
  stack = await startStack('tracing', { env: { AMENDCTL_WORKFLOW_SOURCES: '1', AMENDCTL_AUDIT_PORT: need('AMENDCTL_TEST_PG_PORT') }, tracing });
  audit = AuditStore.fromEnv(process.env);
}, 120_000);
afterAll(async () => {
  await audit?.close();
  await stack?.stop();
});

test('one trace: request -> workflow start -> workflow run -> batch activities -> target calls; its id in the audit record', async () => {
  const c = customer('traced');
  const a = baseline(c, [['ann', 'member'], ['ben', 'viewer']]);
  const traceId = await tracer().startActiveSpan('POST /v1/amendments', async (span) => {
    await stack.client.submitAmendment(a);
    span.end();
    return span.spanContext().traceId;
  });
  expect((await stack.client.waitForResult(a.amendmentId)).status).toBe('completed');
  const row = await audit.amendmentRow(a.amendmentId);
  expect(row?.record.traceId).toBe(traceId);

  const mine = spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
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
    expect(call && chain(call)).toEqual(['POST /v1/amendments', 'StartWorkflow:amendmentV2', 'RunWorkflow:amendmentV2', 'StartActivity:applyBatch', 'RunActivity:applyBatch', `${target} ensureAccount`]);
  }
  // No span names a person.
  expect(JSON.stringify(mine.map((s) => s.attributes))).not.toContain(c.domain);
}, 120_000);
