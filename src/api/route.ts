/**
 * A route is declared once: its method and path, who may call it, what it takes and what it
 * answers (zod schemas), and its handler. The server registers it from this declaration and
 * the OpenAPI document describes it from the same, so the two cannot drift apart.
 */
import type { Intake } from './intake';
import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { AmendctlClient } from '../client';
import type { ApprovalDesk } from './approvals';
import { type Principal, type Scope } from './auth';
import { ProblemError } from './problem';
import type { WebhookSource } from './webhooks/types';
import { zodIssues } from '../domain/errors';

declare module 'fastify' {
  interface FastifyRequest {
    /** The proven caller: set by authentication (API key, token) or a webhook's verified signature. */
    principal?: Principal;
  }
}

/** A scope (Bearer credential with it), a webhook signature (checked by the source), or nobody. */
export type Access = Scope | 'signature' | 'public';

export interface Answer {
  description: string;
  /** The JSON body (application/json); problems are implied by status >= 400. */
  schema?: z.ZodType;
  headers?: Array<'Location' | 'Retry-After' | 'WWW-Authenticate'>;
}

export const JSON_MEDIA = ['application/json'] as const;
export const DOCUMENT_MEDIA = ['application/json', 'application/yaml', 'application/x-yaml', 'text/yaml'] as const;

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface Limits {
  /** Largest request body accepted, webhooks included (413 beyond). */
  bodyBytes: number;
  /** Longest a request waits on Temporal before it answers 503. */
  temporalMs: number;
}

export interface RouteDeps {
  client: AmendctlClient;
  sources: ReadonlyMap<string, WebhookSource>;
  limits: Limits;
  /** The absolute base URL senders sign (`https://amendctl.example.com`); else the request's own scheme and Host. */
  publicUrl?: string;
  /** Approvals by proven people (src/api/approvals.ts): absent when the server has no approval signing key. */
  desk?: ApprovalDesk;
  /**
   * The webhook intake (src/api/intake.ts): deliveries acknowledged once kept in the amendctl
   * database, their workflows started right after. Absent: acknowledged once started.
   */
  intake?: Intake;
}

export interface Route {
  method: 'GET' | 'POST';
  /** OpenAPI form: `/v1/amendments/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  access: Access;
  params?: z.ZodObject;
  /** Request body: its schema (documented) and the media types it comes in; `raw` takes any bytes (webhooks). */
  body?: { schema?: z.ZodType; media: readonly string[] | 'raw'; description?: string };
  /** Every status the route answers itself; 401/403 (scoped routes), 400/413/415 (bodies) are added. */
  answers: Record<number, Answer>;
  handle(req: FastifyRequest, deps: RouteDeps): Promise<Reply>;
}

/** A route whose handler gets its path parameters parsed (a 422 problem naming the parameter otherwise). */
export function route<P extends z.ZodObject>(
  spec: Omit<Route, 'params' | 'handle'> & {
    params?: P;
    handle(req: FastifyRequest, deps: RouteDeps, params: z.output<P>): Promise<Reply>;
  },
): Route {
  return {
    ...spec,
    handle: (req, deps) => {
      if (!spec.params) return spec.handle(req, deps, {} as z.output<P>);
      const r = spec.params.safeParse(req.params);
      if (!r.success)
        throw new ProblemError(
          422,
          'validation-failed',
          'The request does not validate',
          'a path parameter is not valid',
          { errors: zodIssues(r.error) },
        );
      return spec.handle(req, deps, r.data);
    },
  };
}

/** All the statuses a route may answer: its own and those the server adds for it. */
export function statusesOf(r: Route): Record<number, Answer> {
  const added: Record<number, Answer> = {};
  if (r.access !== 'public' && r.access !== 'signature') {
    added[401] = {
      description:
        'no credential, or one that does not verify (unknown key, bad signature, expired, wrong issuer or audience)',
      headers: ['WWW-Authenticate'],
    };
    added[403] = { description: `the credential lacks the scope "${r.access}"`, headers: ['WWW-Authenticate'] };
  }
  if (r.body) {
    added[400] = { description: 'the body is not valid JSON or YAML' };
    added[413] = { description: 'the body is larger than the configured limit' };
    if (r.body.media !== 'raw') added[415] = { description: `the body is not ${r.body.media.join(', ')}` };
  }
  return { ...added, ...r.answers };
}

/** Every route that calls Temporal answers this when it cannot reach it. */
export const UNAVAILABLE: Answer = {
  description: 'Temporal is unavailable: nothing is known to have started or changed; retry after Retry-After',
  headers: ['Retry-After'],
};

/** Where a status answer points a caller: the amendment's view. */
export const statusUrl = (amendmentId: string): string => `/v1/amendments/${encodeURIComponent(amendmentId)}`;
