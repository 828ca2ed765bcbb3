/** POST /v1/amendments, GET /v1/amendments/{id}, POST /v1/amendments/{id}/cancel. */
import { AmendmentNotFoundError, amendmentWorkflowId, type SubmitResult } from '../../client';
import { AmendmentSchema } from '../../domain/amendment';
import { parseWith } from '../../domain/errors';
import { asCaller, asSubmitter, readDocument } from '../body';
import { ProblemError } from '../problem';
import { DOCUMENT_MEDIA, type Route, route, statusUrl, UNAVAILABLE } from '../route';
import {
  AcceptedSchema,
  AmendmentRequestSchema,
  AmendmentViewSchema,
  CancelAcceptedSchema,
  CancelRequestSchema,
  IdParamsSchema,
  ReceivedSchema,
} from '../schemas';
import { onTemporal } from '../temporal';

const INVALID = { description: 'the document does not validate: `errors` names each field' };

export const accepted = (r: Pick<SubmitResult, 'amendmentId' | 'contractId' | 'workflowId' | 'duplicate'>) => ({
  amendmentId: r.amendmentId,
  contractId: r.contractId,
  workflowId: r.workflowId,
  statusUrl: statusUrl(r.amendmentId),
  duplicate: r.duplicate,
});

const submit = route({
  method: 'POST',
  path: '/v1/amendments',
  operationId: 'submitAmendment',
  summary: 'Submit an amendment',
  description:
    'Validates the document as `amendctl submit` does and starts its workflow (amendment-<amendmentId>). Idempotent on amendmentId: the same document again starts nothing and answers 200 with the same status URL. The submitter recorded is the caller (its API key id or token subject); a different `submittedBy` in the document is kept as the workflow memo `claimedBy`, for the record only.',
  tag: 'amendments',
  access: 'submit',
  body: { schema: AmendmentRequestSchema, media: DOCUMENT_MEDIA },
  answers: {
    202: {
      description: 'accepted: its workflow has started (durable); follow the status URL',
      schema: AcceptedSchema,
      headers: ['Location'],
    },
    200: {
      description: 'already submitted with this content: nothing new was started',
      schema: AcceptedSchema,
      headers: ['Location'],
    },
    409: {
      description: 'this amendmentId was submitted before with other content: the first submission stands',
      headers: ['Location'],
    },
    422: INVALID,
    503: UNAVAILABLE,
  },
  async handle(req, { client, limits }) {
    const { doc, claimedBy } = asSubmitter(readDocument(req.body), req.principal!);
    const amendment = parseWith(AmendmentSchema, doc, 'invalid amendment');
    const r = await onTemporal(client, limits.temporalMs, () =>
      client.submitAmendment(amendment, claimedBy ? { claimedBy } : {}),
    );
    const location = statusUrl(r.amendmentId);
    if (r.duplicate && r.differs) {
      throw new ProblemError(
        409,
        'amendment-conflict',
        'Submitted before with other content',
        `${r.amendmentId} was submitted before with different content; the first submission stands`,
        { headers: { location } },
      );
    }
    return { status: r.duplicate ? 200 : 202, headers: { location }, body: accepted(r) };
  },
});

const get = route({
  method: 'GET',
  path: '/v1/amendments/{id}',
  operationId: 'getAmendment',
  summary: "An amendment's status, plan, approvals and operations",
  tag: 'amendments',
  access: 'read',
  params: IdParamsSchema,
  answers: {
    200: { description: "the amendment's view (as amendctl status --json)", schema: AmendmentViewSchema },
    202: {
      description: 'delivered by a webhook and kept by the intake; its workflow has not started yet',
      schema: ReceivedSchema,
      headers: ['Retry-After'],
    },
    404: { description: 'no amendment with this id' },
    422: { description: 'the id is not a valid amendment id' },
    503: UNAVAILABLE,
  },
  async handle(_req, { client, limits, intake }, { id }) {
    try {
      return { status: 200, body: await onTemporal(client, limits.temporalMs, () => client.getStatus(id)) };
    } catch (err) {
      if (!(err instanceof AmendmentNotFoundError) || !intake) throw err;
      const held = await intake.status(id).catch(() => undefined);
      if (!held || held.startedAt) throw err;
      const { startedAt: _started, ...rest } = held;
      return {
        status: 202,
        headers: { 'retry-after': '1' },
        body: { ...rest, workflowId: amendmentWorkflowId(id), status: 'received' },
      };
    }
  },
});

const CANCELLABLE = new Set(['scheduled', 'queued']);

const cancel = route({
  method: 'POST',
  path: '/v1/amendments/{id}/cancel',
  operationId: 'cancelAmendment',
  summary: 'Cancel a scheduled or queued amendment',
  description:
    'Sends the cancel signal; the amendment ends rejected and nothing changes. The canceller recorded is the caller.',
  tag: 'amendments',
  access: 'cancel',
  params: IdParamsSchema,
  body: { schema: CancelRequestSchema, media: DOCUMENT_MEDIA },
  answers: {
    202: {
      description: 'the cancellation is sent; the status URL shows the amendment rejected with its cancellation',
      schema: CancelAcceptedSchema,
      headers: ['Location'],
    },
    403: {
      description: 'the credential lacks the scope "cancel", or `by` names someone other than the caller',
      headers: ['WWW-Authenticate'],
    },
    404: { description: 'no amendment with this id' },
    409: {
      description:
        'the amendment is past scheduled or queued: reject it (pending approval) or roll it back (completed)',
    },
    422: INVALID,
    503: UNAVAILABLE,
  },
  async handle(req, { client, limits }, { id }) {
    const { by, reason } = parseWith(
      CancelRequestSchema,
      asCaller(readDocument(req.body), 'by', req.principal!),
      'invalid cancellation',
    );
    await onTemporal(client, limits.temporalMs, async () => {
      const v = await client.getStatus(id);
      if (!CANCELLABLE.has(v.status))
        throw new ProblemError(
          409,
          'not-cancellable',
          'Cannot be cancelled',
          `${id} is ${v.status}: only a scheduled or queued amendment can be cancelled`,
        );
      await client.cancel(id, { by: by!, reason });
    });
    return { status: 202, headers: { location: statusUrl(id) }, body: { amendmentId: id, statusUrl: statusUrl(id) } };
  },
});

export const amendmentRoutes: Route[] = [submit, get, cancel];
