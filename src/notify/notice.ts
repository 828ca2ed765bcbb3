/**
 * What the amendment workflow hands to the notification activities when an approval is
 * requested, reminded, escalated or decided. Pure data, workflow-safe (`import type` it):
 * no secret, no endpoint address; the worker's notifications file says where it goes.
 */

export const NOTICE_KINDS = ['requested', 'reminded', 'escalated', 'decided'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/** At most this many operation descriptions travel in a notice (`grants.first`). */
export const NOTICE_GRANTS_SHOWN = 10;

export interface ApprovalNotice {
  kind: NoticeKind;
  /** Stable per notice, for the receiver to drop duplicates: `${amendmentId}:${kind}:${n}` (noticeId). Sent as `webhook-id`. */
  id: string;
  amendmentId: string;
  contractId: string;
  customerId?: string;
  /** ISO time (workflow time) of the event. */
  at: string;
  /** The one line "waiting for 1 more approval from dana, erin". */
  waitingFor?: string;
  /** Who may decide ('*' = anyone but the submitter). */
  eligible: string[];
  /** ISO time the current stage ends. */
  deadline?: string;
  /** Why approval is required. */
  reasons: Array<{ ruleId: string; message: string }>;
  /** What the amendment grants: how many operations, and the descriptions of the first (at most NOTICE_GRANTS_SHOWN). */
  grants: { total: number; first: string[] };
  /** For `decided`. */
  decision?: { outcome: 'approved' | 'rejected' | 'expired'; by?: string; reason?: string };
}

/** The notice id: `n` counts notices of one kind in one amendment (reminder 1, 2, ...; 1 for the others). */
export function noticeId(amendmentId: string, kind: NoticeKind, n = 1): string {
  return `${amendmentId}:${kind}:${n}`;
}

/** `grants` from all operation descriptions: the count and the first NOTICE_GRANTS_SHOWN. */
export function noticeGrants(descriptions: readonly string[]): ApprovalNotice['grants'] {
  return { total: descriptions.length, first: descriptions.slice(0, NOTICE_GRANTS_SHOWN) };
}

/** What `notifyApproval` answers: the endpoint's name and the 2xx status it answered. */
export interface NoticeDelivered {
  endpoint: string;
  status: number;
}

/**
 * The notification activities (src/activities/notify.ts), typed here so workflow code may
 * `proxyActivities<NotifyActivities>()` without importing activity code.
 */
export interface NotifyActivities {
  /** The names of the endpoints that take notices of this kind ([] when no notifications file is configured). */
  notificationEndpoints(kind: NoticeKind): Promise<string[]>;
  /**
   * Deliver one notice to one endpoint, by name. Failures: retryable `NotificationUnavailable`
   * (network, timeout, 408, 425, 429, 5xx; Retry-After sets the next delay); non-retryable
   * `NotificationRejected` (other 4xx, 3xx), `NotificationMisconfigured` (unknown endpoint,
   * unusable secret), `InvalidNotice`.
   */
  notifyApproval(notice: ApprovalNotice, endpoint: string): Promise<NoticeDelivered>;
}
