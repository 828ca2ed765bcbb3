/**
 * A tiny workflow for the notification tests, shaped as the amendment workflow's approval phase
 * would use the activities: ask which endpoints take the kind, then one activity per endpoint,
 * each retried on its own; a failure is reported, not thrown.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { ApprovalNotice, NotifyActivities } from '../../src/notify/notice';

const { notificationEndpoints } = proxyActivities<NotifyActivities>({
  startToCloseTimeout: '10s',
  retry: { maximumAttempts: 3 },
});
const { notifyApproval } = proxyActivities<NotifyActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '50ms', backoffCoefficient: 1, maximumInterval: '50ms', maximumAttempts: 5 },
});

export type NotifyOutcome =
  { endpoint: string; status: number } | { endpoint: string; failed: string; type?: string; nonRetryable?: boolean };

export async function notifyTestWorkflow(notice: ApprovalNotice): Promise<NotifyOutcome[]> {
  const endpoints = await notificationEndpoints(notice.kind);
  return Promise.all(
    endpoints.map((endpoint) =>
      notifyApproval(notice, endpoint).catch((err: unknown): NotifyOutcome => {
        const cause = err instanceof ActivityFailure ? err.cause : err;
        return cause instanceof ApplicationFailure
          ? {
              endpoint,
              failed: cause.message,
              ...(cause.type ? { type: cause.type } : {}),
              nonRetryable: cause.nonRetryable === true,
            }
          : { endpoint, failed: String(err) };
      }),
    ),
  );
}
