/**
 * POST /v1/webhooks/{source}: a contract system's signed delivery. The source proves the
 * sender from the raw bytes and maps the payload to amendments (src/api/webhooks); this
 * route keeps them in the webhook intake (the amendctl database; src/api/intake.ts), which
 * starts each one's workflow (amendment-<amendmentId>) right after, and acknowledges once they
 * are kept: an acknowledged event is durable, and a redelivery keeps and starts nothing. Without
 * an intake it acknowledges once every start has returned.
 */
import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth';
import { ProblemError } from '../problem';
import { type Route, route, type RouteDeps } from '../route';
import { SourceParamsSchema, WebhookAcceptedSchema } from '../schemas';
import { onTemporal, RETRY_AFTER_SECONDS } from '../temporal';
import { amendmentWorkflowId } from '../../client';
import type { Amendment } from '../../domain/amendment';
import { type Refusal, SourceUnavailableError, type WebhookRequest } from '../webhooks';
import { accepted } from './amendments';

function refused(r: Refusal): ProblemError {
  return new ProblemError(r.status, r.type, r.title, r.detail);
}

function deliveryOf(req: FastifyRequest, deps: RouteDeps): WebhookRequest {
  const base = (deps.publicUrl ?? `${req.protocol}://${req.host}`).replace(/\/+$/, '');
  return {
    method: req.method,
    url: req.url,
    publicUrl: `${base}${req.url}`,
    headers: req.headers,
    body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
    receivedAt: new Date(),
  };
}

const deliver = route({
  method: 'POST',
  path: '/v1/webhooks/{source}',
  operationId: 'deliverWebhook',
  summary: "A contract system's signed event",
  description:
    "Authenticated by the source's signature scheme (no API key). The body is verified byte for byte, then mapped to amendments, each submitted as POST /v1/amendments would, submitted by the source (submittedBy is its name; a different one the mapping gives is kept as the memo `claimedBy`). Acknowledged once the intake keeps its amendments (durable; each workflow starts right after), or without an intake once every workflow has started.",
  tag: 'webhooks',
  access: 'signature',
  params: SourceParamsSchema,
  body: { media: 'raw', description: "the source's payload, as its sender signed it" },
  answers: {
    202: {
      description:
        'verified, and each amendment it carries is kept by the intake (its workflow starts right after; GET its status URL) or, without an intake, started',
      schema: WebhookAcceptedSchema,
    },
    200: {
      description:
        'verified; every amendment it carries was received before (a redelivery: no second effect), or it carries none',
      schema: WebhookAcceptedSchema,
    },
    400: { description: "malformed for the source's scheme" },
    401: { description: 'no signature, or one that does not verify' },
    403: { description: 'a known key that may not send here' },
    404: { description: 'no such source is configured' },
    409: { description: 'stale or replayed outside the window the scheme allows' },
    422: {
      description:
        'the payload does not map to an amendment, or one it maps to is too large to start: `errors` or the detail names the field',
    },
    502: { description: "a thin event's record could not be read from the source's API (not JSON, our token refused)" },
    503: {
      description:
        "the intake's database (or, without one, Temporal), or the source's API for a thin event, is unavailable: nothing was kept; retry after Retry-After",
      headers: ['Retry-After'],
    },
  },
  async handle(req, deps, { source: name }) {
    const source = deps.sources.get(name);
    if (!source)
      throw new ProblemError(
        404,
        'webhook-source-unknown',
        'No such webhook source',
        `no source "${name}" is configured`,
      );
    const delivery = deliveryOf(req, deps);
    const verified = await source.verify(delivery);
    if (!verified.ok) throw refused(verified);
    const caller: Principal = { via: 'webhook', id: source.name, scopes: new Set(), log: `webhook:${source.name}` };
    req.principal = caller;
    const amendments = await source.amendments(delivery, verified).catch((err: unknown) => {
      if (!(err instanceof SourceUnavailableError)) throw err;
      const seconds = String(err.retryAfterSeconds ?? RETRY_AFTER_SECONDS);
      throw new ProblemError(
        503,
        'source-unavailable',
        "The source's API is unavailable",
        `${err.message}; nothing was started, retry later`,
        { headers: { 'retry-after': seconds } },
      );
    });
    if (!Array.isArray(amendments)) throw refused(amendments);
    const { client, limits, intake } = deps;
    // The source is who sent them: the mapping's submittedBy is not proof.
    const options = (a: Amendment) => (a.submittedBy !== caller.id ? { claimedBy: a.submittedBy } : {});
    const mine = (a: Amendment) => ({ ...a, submittedBy: caller.id });
    if (intake) {
      // Checked as a start would check them (a refusal is 422 now, not lost later), then kept: acknowledged once durable.
      const submissions = await Promise.all(amendments.map((a) => client.prepareSubmission(mine(a), options(a))));
      const receipts = await intake
        .receive(submissions.map((submission) => ({ source: source.name, eventId: verified.eventId, submission })))
        .catch((err: unknown) => {
          throw new ProblemError(
            503,
            'intake-unavailable',
            'The webhook intake is unavailable',
            `the amendctl database did not take the event (${(err as Error)?.message ?? String(err)}); nothing was kept, retry later`,
            {
              headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
            },
          );
        });
      return {
        status: receipts.some((r) => r.received) ? 202 : 200,
        body: {
          source: source.name,
          eventId: verified.eventId,
          amendments: receipts.map((r) => ({
            ...accepted({ ...r, workflowId: amendmentWorkflowId(r.amendmentId), duplicate: !r.received }),
            ...(r.differs ? { differs: true } : {}),
          })),
        },
      };
    }
    const results = await onTemporal(client, limits.temporalMs, () =>
      Promise.all(amendments.map((a) => client.submitAmendment(mine(a), options(a)))),
    );
    const started = results.some((r) => !r.duplicate);
    return {
      status: started ? 202 : 200,
      body: {
        source: source.name,
        eventId: verified.eventId,
        amendments: results.map((r) => ({ ...accepted(r), ...(r.duplicate && r.differs ? { differs: true } : {}) })),
      },
    };
  },
});

export const webhookRoutes: Route[] = [deliver];
