import type { NotificationsConfig, NotifyEndpoint } from '../../src/notify/config';
import type { ApprovalNotice } from '../../src/notify/notice';

export function sampleNotice(over: Partial<ApprovalNotice> = {}): ApprovalNotice {
  return {
    kind: 'requested',
    id: 'am-1:requested:1',
    amendmentId: 'am-1',
    contractId: 'ct-acme',
    customerId: 'acme',
    at: '2026-12-01T10:00:00.000Z',
    waitingFor: 'waiting for 1 more approval from dana, erin',
    eligible: ['dana', 'erin'],
    deadline: '2026-12-04T10:00:00.000Z',
    reasons: [{ ruleId: 'admin-seats', message: 'adds 2 admin seats' }],
    grants: {
      total: 12,
      first: ['idp: create ann@acme.test', 'idp: create bob@acme.test', 'warehouse: grant analyst to ann@acme.test'],
    },
    ...over,
  };
}

export function endpoint(name: string, url: string, over: Partial<NotifyEndpoint> = {}): NotifyEndpoint {
  return {
    name,
    url,
    events: ['requested', 'reminded', 'escalated', 'decided'],
    secret: { env: `NOTIFY_SECRET_${name.toUpperCase().replace(/-/g, '_')}` },
    timeoutMs: 5_000,
    ...over,
  };
}

/** The env var the endpoint's secret is read from (as `endpoint` names it). */
export const secretVar = (name: string): string => `NOTIFY_SECRET_${name.toUpperCase().replace(/-/g, '_')}`;

export const config = (...endpoints: NotifyEndpoint[]): NotificationsConfig => ({
  file: 'notifications.yaml',
  endpoints,
});
