/**
 * Approval notifications (issue 12, point 3): the workflow asks which endpoints take a kind of
 * notice (`notificationEndpoints`), then delivers to each with its own activity
 * (`notifyApproval`), so each endpoint retries on its own and one failing receiver never
 * re-sends to the others. Only names and the notice travel through history; addresses and
 * secrets stay in the worker's notifications file (src/notify/config.ts).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { z } from 'zod';
import { parseWith } from '../domain/errors';
import { endpointsFor, type NotificationsConfig } from '../notify/config';
import { type ApprovalNotice, NOTICE_GRANTS_SHOWN, NOTICE_KINDS, type NotifyActivities } from '../notify/notice';
import { sendNotice } from '../notify/send';

export { endpointsFor } from '../notify/config';
export type { NotifyActivities } from '../notify/notice';

const Text = z.string().max(4000);
/** The notice as the workflow sends it (fields a newer workflow adds are dropped, not refused). */
export const ApprovalNoticeSchema = z.object({
  kind: z.enum(NOTICE_KINDS),
  id: z.string().min(1).max(600),
  amendmentId: z.string().min(1).max(300),
  contractId: z.string().min(1).max(300),
  customerId: z.string().max(300).optional(),
  at: z.string().min(1).max(64),
  waitingFor: Text.optional(),
  eligible: z.array(z.string().max(300)).max(1000),
  deadline: z.string().max(64).optional(),
  reasons: z.array(z.object({ ruleId: z.string().max(300), message: Text })).max(1000),
  grants: z.object({ total: z.number().int().min(0), first: z.array(Text).max(NOTICE_GRANTS_SHOWN) }),
  decision: z
    .object({
      outcome: z.enum(['approved', 'rejected', 'expired']),
      by: z.string().max(300).optional(),
      reason: Text.optional(),
    })
    .optional(),
}) satisfies z.ZodType<ApprovalNotice>;

export function notifyActivities(
  config: NotificationsConfig,
  opts: { env?: NodeJS.ProcessEnv } = {},
): NotifyActivities {
  const byName = new Map(config.endpoints.map((e) => [e.name, e]));
  return {
    async notificationEndpoints(kind) {
      if (!(NOTICE_KINDS as readonly string[]).includes(kind))
        throw ApplicationFailure.nonRetryable(
          `notificationEndpoints: "${String(kind).slice(0, 40)}" is not a notice kind (${NOTICE_KINDS.join(', ')})`,
          'InvalidNotice',
        );
      return endpointsFor(config, kind);
    },

    async notifyApproval(notice, endpoint) {
      let n: ApprovalNotice;
      try {
        n = parseWith(ApprovalNoticeSchema, notice, 'notifyApproval: invalid notice');
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidNotice');
      }
      const e = byName.get(endpoint);
      if (!e) {
        const known = [...byName.keys()].join(', ') || 'none';
        throw ApplicationFailure.nonRetryable(
          `no notification endpoint "${String(endpoint).slice(0, 60)}" in ${config.file ?? 'the notifications file'} (configured: ${known})`,
          'NotificationMisconfigured',
        );
      }
      const ctx = Context.current();
      const delivered = await sendNotice(e, n, {
        ...(opts.env ? { env: opts.env } : {}),
        signal: ctx.cancellationSignal,
      });
      ctx.log.info('notification delivered', {
        endpoint: e.name,
        notice: n.id,
        status: delivered.status,
        attempt: ctx.info.attempt,
      });
      return delivered;
    },
  };
}
