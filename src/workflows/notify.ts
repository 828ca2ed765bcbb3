/**
 * Approval notices (issue 12): when an approval is requested, reminded, escalated or decided,
 * one activity per configured endpoint delivers it (src/activities/notify.ts), retried with
 * backoff. A notice never blocks or fails the amendment: a failure is logged, and at its end
 * the amendment waits at most a minute for notices still in flight.
 */
import { condition, log, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import { type ApprovalNotice, noticeGrants, noticeId, type NoticeKind, type NotifyActivities } from '../notify/notice';
import type { ApprovalState } from './approval';
import type { AmendmentState } from './state';

const endpoints = proxyLocalActivities<Pick<NotifyActivities, 'notificationEndpoints'>>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
});
const delivery = proxyActivities<Pick<NotifyActivities, 'notifyApproval'>>({
  // An endpoint's own timeout is at most 60 s; a receiver down for a while gets about 6 hours of tries.
  startToCloseTimeout: '75s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '10m', maximumAttempts: 40 },
  scheduleToCloseTimeout: '6h',
});

/** How long a finished amendment waits for its notices in flight. */
const SETTLE = '1m';

export class ApprovalNotifier {
  private inFlight = 0;
  private readonly names = new Map<NoticeKind, Promise<string[]>>();

  constructor(
    private readonly s: AmendmentState,
    private readonly approval: ApprovalState,
  ) {}

  /** Starts delivering this notice to each endpoint that takes its kind; returns at once. */
  send(kind: NoticeKind, n = 1, decision?: ApprovalNotice['decision']): void {
    const notice = this.notice(kind, n, decision);
    this.inFlight++;
    void this.deliver(notice).finally(() => this.inFlight--);
  }

  /** Waits (at most a minute) for notices still being delivered. */
  async settled(): Promise<void> {
    if (this.inFlight > 0) await condition(() => this.inFlight === 0, SETTLE);
  }

  private async deliver(notice: ApprovalNotice): Promise<void> {
    let names: string[];
    try {
      if (!this.names.has(notice.kind)) this.names.set(notice.kind, endpoints.notificationEndpoints(notice.kind));
      names = await this.names.get(notice.kind)!;
    } catch (err) {
      log.warn('approval notice not sent: the endpoints could not be read', {
        notice: notice.id,
        error: (err as Error).message,
      });
      return;
    }
    await Promise.all(
      names.map((endpoint) =>
        delivery.notifyApproval(notice, endpoint).catch((err: unknown) => {
          log.warn('approval notice not delivered', { notice: notice.id, endpoint, error: (err as Error).message });
        }),
      ),
    );
  }

  private notice(kind: NoticeKind, n: number, decision?: ApprovalNotice['decision']): ApprovalNotice {
    const v = this.s.view;
    const a = this.approval.view;
    const waiting = kind === 'decided' ? undefined : this.approval.waitingFor();
    return {
      kind,
      id: noticeId(v.amendmentId, kind, n),
      amendmentId: v.amendmentId,
      contractId: v.contractId,
      ...(v.customerId ? { customerId: v.customerId } : {}),
      at: new Date().toISOString(),
      ...(waiting ? { waitingFor: waiting } : {}),
      eligible: a.eligible,
      ...(a.deadline ? { deadline: a.deadline } : {}),
      reasons: a.reasons,
      grants: {
        ...noticeGrants(v.operations.map((o) => o.description)),
        total: v.operationsTotal ?? v.operations.length,
      },
      ...(decision ? { decision } : {}),
    };
  }
}
