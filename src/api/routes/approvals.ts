/**
 * POST /v1/amendments/{id}/approve and /reject: a person decides, proven by the credential (an
 * API key bound to them, or their bearer token); the server signs the decision (src/api/approvals.ts)
 * and the worker verifies it. A service's key has no person and cannot decide.
 */
import type { z } from 'zod';
import { readDocument } from '../body';
import type { Approver, DecisionKind } from '../approvals';
import { parseWith } from '../../domain/errors';
import type { Principal } from '../auth';
import { ProblemError } from '../problem';
import { DOCUMENT_MEDIA, type Reply, type Route, route, type RouteDeps, statusUrl, UNAVAILABLE } from '../route';
import { ApproveRequestSchema, DecidedSchema, IdParamsSchema, RejectRequestSchema } from '../schemas';
import { onTemporal } from '../temporal';

const INVALID = { description: 'the body does not validate: `errors` names each field' };

/** The person a credential proves, or a 403 saying why it proves none. */
export function approverOf(p: Principal): Approver {
  if (!p.person)
    throw new ProblemError(
      403,
      'not-a-person',
      'Not allowed',
      `the credential "${p.id}" belongs to a service, not a person: approving and rejecting need a person's credential (an API key with \`person\`, or the person's own access token)`,
    );
  return { id: p.person, via: p.via === 'jwt' ? 'jwt' : 'api-key' };
}

async function decide(
  deps: RouteDeps,
  principal: Principal,
  id: string,
  decision: DecisionKind,
  text: string | undefined,
): Promise<Reply> {
  const desk = deps.desk;
  if (!desk)
    throw new ProblemError(
      501,
      'approvals-not-configured',
      'Approvals are not configured',
      'this server has no approval signing key (amendctl serve --approval-key FILE), so it cannot decide for anyone',
    );
  const approver = approverOf(principal);
  const r = await onTemporal(deps.client, deps.limits.temporalMs + 10_000, () =>
    desk.decide(approver, id, decision, text),
  );
  if (!r.counted)
    throw new ProblemError(
      403,
      'decision-not-counted',
      'Not counted',
      `the workflow did not count this ${decision === 'approve' ? 'approval' : 'rejection'}: ${r.why ?? 'not allowed'}`,
    );
  const v = r.view;
  return {
    status: 200,
    headers: { location: statusUrl(id) },
    body: {
      amendmentId: id,
      counted: true,
      status: v.status,
      ...(v.reason ? { reason: v.reason } : {}),
      statusUrl: statusUrl(id),
    },
  };
}

const ANSWERS = {
  200: {
    description: 'recorded by the workflow: the status says what follows',
    schema: DecidedSchema,
    headers: ['Location' as const],
  },
  403: {
    description:
      'the credential lacks the scope "approve", belongs to no person, or the person may not decide this amendment (not an approver, the submitter, already approved), or the workflow did not count it',
    headers: ['WWW-Authenticate' as const],
  },
  404: { description: 'no amendment with this id' },
  409: { description: 'the amendment is not pending approval' },
  422: INVALID,
  501: { description: 'the server has no approval signing key' },
  503: UNAVAILABLE,
  504: { description: 'sent, but the workflow did not record it in time: its status will show the outcome' },
};

/** POST /v1/amendments/{id}/approve or /reject: the same route but for its body and wording. */
function decisionRoute(
  decision: 'approve' | 'reject',
  o: {
    operationId: string;
    summary: string;
    description: string;
    schema: z.ZodType;
    text: (body: unknown) => string | undefined;
  },
): Route {
  return route({
    method: 'POST',
    path: `/v1/amendments/{id}/${decision}`,
    operationId: o.operationId,
    summary: o.summary,
    description: o.description,
    tag: 'approvals',
    access: 'approve',
    params: IdParamsSchema,
    body: { schema: o.schema, media: DOCUMENT_MEDIA },
    answers: ANSWERS,
    async handle(req, deps, { id }) {
      const body = parseWith(
        o.schema,
        readDocument(req.body) ?? (decision === 'approve' ? {} : undefined),
        `invalid ${decision === 'approve' ? 'approval' : 'rejection'}`,
      );
      return decide(deps, req.principal!, id, decision, o.text(body));
    },
  });
}

const approve = decisionRoute('approve', {
  operationId: 'approveAmendment',
  summary: 'Approve an amendment pending approval, as the calling person',
  description:
    "Signs the caller's approval for the amendment's current plan and sends it; the worker verifies the signature and applies the approval policy. An optional comment is bound to the signature.",
  schema: ApproveRequestSchema,
  text: (body) => (body as z.output<typeof ApproveRequestSchema>).comment,
});

const reject = decisionRoute('reject', {
  operationId: 'rejectAmendment',
  summary: 'Reject an amendment pending approval, as the calling person',
  description:
    "Signs the caller's rejection (with its reason) for the current plan and sends it; nothing changes in any target.",
  schema: RejectRequestSchema,
  text: (body) => (body as z.output<typeof RejectRequestSchema>).reason,
});

export const approvalRoutes: Route[] = [approve, reject];
