/**
 * amendctl's own Prometheus metrics, one registry per process (a worker, the API). Counted
 * where the work happens: final statuses where the audit record is written (once per
 * amendment, a retried write is not counted again), operations, retries and compensations in
 * the batch activities. Approvals pending are read from Temporal's visibility on scrape.
 * The SDK's runtime metrics (Runtime.install telemetry) are served beside them (src/observability/server.ts).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();

export const amendmentsTotal = new Counter({
  name: 'amendctl_amendments_total',
  help: 'Amendments that reached a final status, by status.',
  labelNames: ['status'] as const,
  registers: [registry],
});

export const amendmentSeconds = new Histogram({
  name: 'amendctl_amendment_duration_seconds',
  help: 'Time from submission to final status, by status (approval waits included).',
  labelNames: ['status'] as const,
  buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 14_400, 86_400, 604_800],
  registers: [registry],
});

export const operationsTotal = new Counter({
  name: 'amendctl_operations_total',
  help: 'Operations run against targets, by target, action and outcome (applied, unchanged, failed, skipped).',
  labelNames: ['target', 'action', 'outcome'] as const,
  registers: [registry],
});

export const retriesTotal = new Counter({
  name: 'amendctl_operation_retries_total',
  help: 'Transient target failures retried, by target.',
  labelNames: ['target'] as const,
  registers: [registry],
});

export const compensationsTotal = new Counter({
  name: 'amendctl_compensations_total',
  help: 'Operations compensated, by target and outcome (compensated, unchanged, failed).',
  labelNames: ['target', 'outcome'] as const,
  registers: [registry],
});

export const driftFoundTotal = new Counter({
  name: 'amendctl_drift_found_total',
  help: 'Differences drift checks found between a target and what its contract says, by target and kind (account_missing, membership_extra, ...).',
  labelNames: ['target', 'kind'] as const,
  registers: [registry],
});

export const driftRepairedTotal = new Counter({
  name: 'amendctl_drift_repaired_total',
  help: 'Repair operations of reconciliations, by target and outcome (applied, unchanged, failed, compensated, ...).',
  labelNames: ['target', 'outcome'] as const,
  registers: [registry],
});

export const apiRequestsTotal = new Counter({
  name: 'amendctl_api_requests_total',
  help: 'HTTP API requests, by route pattern and status.',
  labelNames: ['route', 'status'] as const,
  registers: [registry],
});

export const intakeStartSeconds = new Histogram({
  name: 'amendctl_intake_start_duration_seconds',
  help: 'Webhook intake: time to start the workflow of an amendment the intake holds (one StartWorkflowExecution).',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});

export const intakeWaiting = new Gauge({
  name: 'amendctl_intake_waiting',
  help: 'Webhook intake: acknowledged amendments whose workflow has not started yet (all instances).',
  registers: [registry],
});

export const apiRequestSeconds = new Histogram({
  name: 'amendctl_api_request_duration_seconds',
  help: 'HTTP API request duration, by route pattern.',
  labelNames: ['route'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});

/** What the pending-approval gauges read: how many wait, and since when the oldest (null: none). */
export type PendingApprovals = () => Promise<{ count: number; oldest: Date | null }>;

const PENDING_CACHE_MS = 5_000;

/** The pending-approval gauges, read through `source` on scrape (at most every 5 s). */
export function watchPendingApprovals(source: PendingApprovals): void {
  let last: { at: number; value: Awaited<ReturnType<PendingApprovals>> } | undefined;
  const read = async () => {
    if (!last || Date.now() - last.at > PENDING_CACHE_MS) last = { at: Date.now(), value: await source() };
    return last.value;
  };
  registry.removeSingleMetric('amendctl_approvals_pending');
  registry.removeSingleMetric('amendctl_approval_pending_oldest_seconds');
  new Gauge({
    name: 'amendctl_approvals_pending',
    help: 'Amendments waiting for approval.',
    registers: [registry],
    async collect() {
      this.set((await read()).count);
    },
  });
  new Gauge({
    name: 'amendctl_approval_pending_oldest_seconds',
    help: 'Age of the oldest amendment waiting for approval (0 when none).',
    registers: [registry],
    async collect() {
      const { oldest } = await read();
      this.set(oldest ? (Date.now() - oldest.getTime()) / 1000 : 0);
    },
  });
}

/** An amendment's final status in the metrics: call once per amendment (where its audit row is first written). */
export function countFinal(view: { status: string; submittedAt: string; finishedAt?: string | undefined }): void {
  amendmentsTotal.inc({ status: view.status });
  const from = Date.parse(view.submittedAt);
  const to = view.finishedAt ? Date.parse(view.finishedAt) : Date.now();
  if (Number.isFinite(from) && to >= from) amendmentSeconds.observe({ status: view.status }, (to - from) / 1000);
}
