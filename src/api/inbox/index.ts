/**
 * The approvals inbox (issue 12, point 2): pages under /inbox for the people who approve, served
 * by `amendctl serve` when it is given a users file and/or an OpenID provider, and a session key.
 *
 * - Sign-in: a local user's bcrypt-hashed password (./users.ts), or an OpenID provider (./oidc.ts).
 *   The approver id comes only from there, kept in a sealed session cookie (./session.ts); no form
 *   field or JSON body names who decides.
 * - Every POST is held to the session's CSRF token (form field `_csrf` or header `x-csrf-token`) and,
 *   when the browser says where it comes from (Origin, Sec-Fetch-Site), to this site.
 * - "Waiting for me": amendments pending approval this person may decide now (./pending.ts and the
 *   ApprovalDesk's whyNot); a page per amendment with Approve / Reject and a comment; the decision
 *   goes through the ApprovalDesk (src/api/approvals.ts), then the page follows the status live.
 * - Pages answer errors as readable HTML; /inbox/api/* answers JSON and problem+json.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AmendmentNotFoundError, type AmendmentView } from '../../client';
import { BusinessIdSchema } from '../../domain/amendment';
import { zodIssues } from '../../domain/errors';
import { cleanText } from '../../domain/text';
import { FINAL_STATUSES } from '../../workflows/definitions';
import type { Approver } from '../approvals';
import type { ApiLogger } from '../log';
import { ProblemError, problemFrom } from '../problem';
import type { RouteDeps } from '../route';
import { onTemporal } from '../temporal';
import { INBOX_CSS, INBOX_ICON, INBOX_JS } from './assets';
import { OidcLogin, type OidcConfig, SignInError } from './oidc';
import {
  approvalCount,
  detailPage,
  PROOF_LABEL,
  listPage,
  loginPage,
  messagePage,
  STATUS_LABEL,
  statusLine,
} from './pages';
import { listPending, PENDING_CAP } from './pending';
import {
  clearCookie,
  cookieName,
  type Flow,
  FlowSchema,
  newToken,
  readCookie,
  sameToken,
  Sealer,
  type Session,
  SessionSchema,
  setCookie,
} from './session';
import type { LocalUsers } from './users';

export { LocalUsers } from './users';
export { loadOidcConfig, type OidcConfig } from './oidc';
export { loadSessionKeys, parseSessionKeys } from './session';

export interface InboxOptions {
  /** Session keys: the first seals, all open. */
  sessionKeys: Uint8Array[];
  users?: LocalUsers;
  oidc?: OidcConfig;
  /** A session lasts this long unused (default 30 min), renewed while used, never beyond 8 h from sign-in. */
  idleMinutes?: number;
  env?: NodeJS.ProcessEnv;
}

export interface InboxDeps extends RouteDeps {
  inbox: InboxOptions;
  logger: ApiLogger;
}

const FLOW_SECONDS = 10 * 60;
const MAX_SESSION_SECONDS = 8 * 3600;
const RENEW_AFTER_SECONDS = 5 * 60;
const FORM_BYTES = 16 * 1024;
/** Failed sign-ins per user id before it is refused for the window (per API instance). */
const MAX_FAILURES = 5;
const FAILURE_WINDOW_MS = 15 * 60_000;

const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: under it Chromium sends `Origin: null` with a form's POST. same-origin still keeps the callback's query from other sites.
  'referrer-policy': 'same-origin',
};

const IdParams = z.strictObject({ id: BusinessIdSchema });
const Comment = cleanText(2000, { multiline: true, what: 'a comment' });
const LoginForm = z.object({
  _csrf: z.string().max(200),
  id: z.string().trim().min(1, 'the user id is required').max(128),
  password: z.string().min(1, 'the password is required').max(1024),
  next: z.string().max(300).optional(),
});
const DecisionForm = z.object({
  _csrf: z.string().max(200),
  decision: z.enum(['approve', 'reject']),
  comment: Comment.optional(),
});
const DecisionJson = z.strictObject({ decision: z.enum(['approve', 'reject']), comment: Comment.optional() });
const CsrfForm = z.object({ _csrf: z.string().max(200) });

/** Where to go after signing in: only a page of the inbox. */
const safeNext = (next: unknown): string | undefined =>
  typeof next === 'string' && /^\/inbox(\/[A-Za-z0-9._:~/%-]*)?$/.test(next) && !next.includes('//') ? next : undefined;

class PageError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}

export function inboxRoutes(app: FastifyInstance, deps: InboxDeps): void {
  const { inbox, client, limits } = deps;
  if (!inbox.users && !inbox.oidc) throw new Error('the inbox needs a users file or an OpenID provider');
  const desk = deps.desk;
  if (!desk) throw new Error('the inbox needs the ApprovalDesk (RouteDeps.desk)');
  const sealer = new Sealer(inbox.sessionKeys);
  const oidc = inbox.oidc ? new OidcLogin(inbox.oidc, inbox.env) : undefined;
  const idleSeconds = (inbox.idleMinutes ?? 30) * 60;
  const failures = new Map<string, { count: number; since: number }>();

  const secure = (req: FastifyRequest): boolean =>
    deps.publicUrl ? deps.publicUrl.startsWith('https:') : req.protocol === 'https';
  const origin = (req: FastifyRequest): string =>
    deps.publicUrl ? new URL(deps.publicUrl).origin : `${req.protocol}://${req.host}`;
  const redirectUrl = (req: FastifyRequest): string => inbox.oidc?.redirectUrl ?? `${origin(req)}/inbox/oidc/callback`;

  const sendPage = (
    reply: FastifyReply,
    status: number,
    text: string,
    headers: Record<string, string | string[]> = {},
  ): FastifyReply =>
    reply
      .code(status)
      .headers({ ...PAGE_HEADERS, ...headers })
      .type('text/html; charset=utf-8')
      .send(text);
  const seeOther = (reply: FastifyReply, to: string, cookies: string[] = []): FastifyReply =>
    reply
      .code(303)
      .headers({ ...PAGE_HEADERS, location: to, ...(cookies.length ? { 'set-cookie': cookies } : {}) })
      .send();

  async function sessionOf(req: FastifyRequest): Promise<(Session & { exp: number; iat: number }) | undefined> {
    const s = await sealer.open(
      readCookie(req.headers.cookie, cookieName('session', secure(req))),
      'amendctl-inbox-session',
      SessionSchema,
    );
    if (!s) return undefined;
    if (Date.now() / 1000 - s.auth > MAX_SESSION_SECONDS) return undefined;
    // A local user removed from the users file is signed out at once.
    if (s.via === 'password' && !inbox.users?.get(s.sub)) return undefined;
    return s;
  }

  async function sessionCookie(req: FastifyRequest, s: Session): Promise<string> {
    const left = MAX_SESSION_SECONDS - (Math.floor(Date.now() / 1000) - s.auth);
    const ttl = Math.max(1, Math.min(idleSeconds, left));
    return setCookie(cookieName('session', secure(req)), await sealer.seal({ ...s }, 'amendctl-inbox-session', ttl), {
      secure: secure(req),
      maxAgeSeconds: ttl,
    });
  }

  /** The session's cookie again once it is a few minutes old: an active person stays signed in. */
  async function renewal(req: FastifyRequest, s: Session & { iat: number }): Promise<Record<string, string>> {
    if (Date.now() / 1000 - s.iat < RENEW_AFTER_SECONDS) return {};
    const { iat: _iat, exp: _exp, ...claims } = s as Session & { iat: number; exp?: number };
    return { 'set-cookie': await sessionCookie(req, claims) };
  }

  /** A POST from another site is refused whatever it carries (the browser says where it comes from). */
  function sameSite(req: FastifyRequest): boolean {
    const o = req.headers.origin;
    if (typeof o === 'string' && o !== 'null') return o === origin(req);
    const site = req.headers['sec-fetch-site'];
    // An opaque origin ("null": a privacy setting, a sandboxed frame) counts only when the fetch metadata says same-origin.
    if (o === 'null') return site === 'same-origin';
    return site === undefined || site === 'same-origin';
  }

  const approverOf = (s: Session): Approver => ({ id: s.sub, via: s.via });

  async function view(id: string): Promise<AmendmentView> {
    return onTemporal(client, limits.temporalMs, () => client.getStatus(id)).catch((err: unknown) => {
      if (err instanceof AmendmentNotFoundError)
        throw new ProblemError(404, 'amendment-not-found', 'No such amendment', `no amendment ${id}`);
      throw err;
    });
  }

  const formOf = <S extends z.ZodType>(schema: S, body: unknown): z.output<S> | undefined => {
    const r = schema.safeParse(body ?? {});
    return r.success ? r.data : undefined;
  };

  async function loginForm(
    reply: FastifyReply,
    req: FastifyRequest,
    status: number,
    extra: { error?: string; id?: string; next?: string } = {},
  ): Promise<FastifyReply> {
    const csrf = newToken();
    const flow = await sealer.seal({ csrf }, 'amendctl-inbox-flow', FLOW_SECONDS);
    const text = loginPage({
      csrf,
      passwords: !!inbox.users,
      ...(oidc ? { oidcLabel: oidc.config.label } : {}),
      ...extra,
    });
    return sendPage(reply, status, text, {
      'set-cookie': setCookie(cookieName('flow', secure(req)), flow, {
        secure: secure(req),
        maxAgeSeconds: FLOW_SECONDS,
      }),
    });
  }

  const signedIn = async (
    req: FastifyRequest,
    reply: FastifyReply,
    s: Omit<Session, 'csrf' | 'auth'>,
    next?: string,
  ): Promise<FastifyReply> => {
    const session: Session = { ...s, csrf: newToken(), auth: Math.floor(Date.now() / 1000) };
    return seeOther(reply, next ?? '/inbox', [
      await sessionCookie(req, session),
      clearCookie(cookieName('flow', secure(req)), secure(req)),
    ]);
  };

  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: FORM_BYTES },
      (_req, body, done) => {
        const out: Record<string, string> = {};
        for (const [k, v] of new URLSearchParams(body as string)) if (!(k in out) && k !== '__proto__') out[k] = v;
        done(null, out);
      },
    );
    scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: FORM_BYTES }, (_req, body, done) => {
      try {
        done(null, JSON.parse(body as string) as unknown);
      } catch {
        done(
          new ProblemError(
            400,
            'malformed-body',
            'The body is not valid JSON',
            'send {"decision": "approve" | "reject", "comment": "..."}',
          ),
          undefined,
        );
      }
    });

    scope.setErrorHandler(async (err, req, reply) => {
      if (req.url.startsWith('/inbox/api/')) throw err; // the server's handler: problem+json, 5xx logged
      if (err instanceof PageError)
        return sendPage(
          reply,
          err.status,
          messagePage(err.title, err.message, { link: { href: '/inbox', text: 'Back to the inbox' } }),
        );
      const p = problemFrom(err, limits);
      if (p.status >= 500 && !(err instanceof ProblemError)) {
        deps.logger({
          kind: 'error',
          time: new Date().toISOString(),
          request: req.id,
          route: req.routeOptions.url ?? null,
          error: (err as Error).name ?? 'Error',
        });
      }
      const message =
        p.status >= 500 && !(err instanceof ProblemError)
          ? `The server could not answer; its log has the error under request ${req.id}.`
          : (p.detail ?? p.title);
      return sendPage(
        reply,
        p.status,
        messagePage(p.title, message, { link: { href: '/inbox', text: 'Back to the inbox' } }),
      );
    });

    // ---- assets -------------------------------------------------------------------------
    const asset = (type: string, text: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
      reply
        .headers({ 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' })
        .type(type)
        .send(text);
    scope.get('/inbox/assets/inbox.css', asset('text/css; charset=utf-8', INBOX_CSS));
    scope.get('/inbox/assets/inbox.js', asset('text/javascript; charset=utf-8', INBOX_JS));
    scope.get('/inbox/assets/icon.svg', asset('image/svg+xml', INBOX_ICON));

    // ---- sign-in ------------------------------------------------------------------------
    scope.get('/inbox/login', async (req, reply) => {
      const next = safeNext((req.query as Record<string, unknown>).next);
      if (await sessionOf(req)) return seeOther(reply, next ?? '/inbox');
      return loginForm(reply, req, 200, next ? { next } : {});
    });

    scope.post('/inbox/login', async (req, reply) => {
      if (!inbox.users) throw new PageError(404, 'Not here', 'This server signs in through its OpenID provider only.');
      const form = formOf(LoginForm, req.body);
      const flow = await sealer.open(
        readCookie(req.headers.cookie, cookieName('flow', secure(req))),
        'amendctl-inbox-flow',
        FlowSchema,
      );
      if (!form || !sameSite(req) || !flow || !sameToken(form._csrf, flow.csrf)) {
        return loginForm(reply, req, 403, {
          error: 'This sign-in form had expired or did not come from this page. Please sign in again.',
        });
      }
      const next = safeNext(form.next);
      const key = form.id.toLowerCase();
      const now = Date.now();
      const f = failures.get(key);
      if (f && now - f.since > FAILURE_WINDOW_MS) failures.delete(key);
      if ((failures.get(key)?.count ?? 0) >= MAX_FAILURES) {
        const minutes = Math.ceil((FAILURE_WINDOW_MS - (now - failures.get(key)!.since)) / 60_000);
        return loginForm(reply, req, 429, {
          error: `Too many failed sign-ins for this user id. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
          id: form.id,
          ...(next ? { next } : {}),
        });
      }
      const user = await inbox.users.verify(form.id, form.password);
      if (!user) {
        if (failures.size > 10_000) failures.clear();
        const g = failures.get(key) ?? { count: 0, since: now };
        failures.set(key, { count: g.count + 1, since: g.since });
        return loginForm(reply, req, 401, {
          error: 'The user id or the password is not right.',
          id: form.id,
          ...(next ? { next } : {}),
        });
      }
      failures.delete(key);
      return signedIn(req, reply, { sub: user.id, via: 'password', ...(user.name ? { name: user.name } : {}) }, next);
    });

    scope.get('/inbox/login/oidc', async (req, reply) => {
      if (!oidc) throw new PageError(404, 'Not here', 'This server has no OpenID provider configured.');
      const next = safeNext((req.query as Record<string, unknown>).next);
      const begun = await oidc.begin(redirectUrl(req)).catch((err: unknown) => {
        throw err instanceof SignInError ? new PageError(503, 'Cannot sign in now', err.message) : err;
      });
      const flow: Flow = {
        csrf: newToken(),
        state: begun.state,
        nonce: begun.nonce,
        verifier: begun.verifier,
        ...(next ? { next } : {}),
      };
      const cookie = setCookie(
        cookieName('flow', secure(req)),
        await sealer.seal(flow, 'amendctl-inbox-flow', FLOW_SECONDS),
        { secure: secure(req), maxAgeSeconds: FLOW_SECONDS },
      );
      return seeOther(reply, begun.url, [cookie]);
    });

    scope.get('/inbox/oidc/callback', async (req, reply) => {
      if (!oidc) throw new PageError(404, 'Not here', 'This server has no OpenID provider configured.');
      const flow = await sealer.open(
        readCookie(req.headers.cookie, cookieName('flow', secure(req))),
        'amendctl-inbox-flow',
        FlowSchema,
      );
      if (!flow?.state || !flow.nonce || !flow.verifier)
        throw new PageError(
          400,
          'Sign-in expired',
          'This sign-in had expired or was started in another browser. Please sign in again.',
        );
      const q = req.query as Record<string, unknown>;
      if (typeof q.error === 'string')
        throw new PageError(
          401,
          'Not signed in',
          `The OpenID provider did not sign you in (${q.error.slice(0, 100)}).`,
        );
      const callback = new URL(redirectUrl(req));
      callback.search = new URL(req.url, 'http://x').search;
      const who = await oidc
        .finish(callback, { state: flow.state, nonce: flow.nonce, verifier: flow.verifier })
        .catch((err: unknown) => {
          throw err instanceof SignInError ? new PageError(401, 'Not signed in', `${err.message}.`) : err;
        });
      return signedIn(
        req,
        reply,
        { sub: who.id, via: 'oidc', ...(who.name ? { name: who.name } : {}) },
        safeNext(flow.next),
      );
    });

    scope.post('/inbox/logout', async (req, reply) => {
      const s = await sessionOf(req);
      const form = formOf(CsrfForm, req.body);
      if (s && (!sameSite(req) || !form || !sameToken(form._csrf, s.csrf)))
        throw new PageError(403, 'Not signed out', 'This sign-out did not come from this site.');
      return seeOther(reply, '/inbox/login', [clearCookie(cookieName('session', secure(req)), secure(req))]);
    });

    // ---- pages ----------------------------------------------------------------------------
    const page = async (req: FastifyRequest, reply: FastifyReply): Promise<(Session & { iat: number }) | undefined> => {
      const s = await sessionOf(req);
      if (!s) void seeOther(reply, `/inbox/login?next=${encodeURIComponent(req.url.split('?')[0]!)}`);
      return s;
    };

    scope.get('/inbox', async (req, reply) => {
      const s = await page(req, reply);
      if (!s) return reply;
      const pending = await onTemporal(client, limits.temporalMs, () => listPending(client, PENDING_CAP));
      const mine = pending.views.filter((v) => desk.whyNot(v, s.sub) === undefined);
      return sendPage(
        reply,
        200,
        listPage(s, mine, { capped: pending.capped, cap: PENDING_CAP, unread: pending.unread }),
        await renewal(req, s),
      );
    });

    scope.get('/inbox/amendments/:id', async (req, reply) => {
      const s = await page(req, reply);
      if (!s) return reply;
      const { id } = paramsOf(req);
      const v = await view(id);
      return sendPage(reply, 200, detailPage({ session: s, view: v, ...mayDecide(v, s.sub) }), await renewal(req, s));
    });

    /** The form's decision without the script: the same desk, then back to the page, which follows the status. */
    scope.post('/inbox/amendments/:id/decision', async (req, reply) => {
      const s = await sessionOf(req);
      if (!s) throw new PageError(401, 'Not signed in', 'Your session has ended: sign in again, then decide.');
      const { id } = paramsOf(req);
      const raw = (req.body ?? {}) as Record<string, unknown>;
      if (!sameSite(req) || !sameToken(typeof raw._csrf === 'string' ? raw._csrf : undefined, s.csrf))
        throw new PageError(403, 'Not sent', 'This decision did not come from this site’s page: nothing was sent.');
      const parsed = DecisionForm.safeParse(raw);
      const comment = typeof raw.comment === 'string' ? raw.comment : '';
      const problem = !parsed.success
        ? (zodIssues(parsed.error)[0]?.message ?? 'not a decision')
        : parsed.data.decision === 'reject' && !comment.trim()
          ? 'a reason is required to reject: write it in the comment'
          : undefined;
      if (problem || !parsed.success) {
        const v = await view(id);
        return sendPage(
          reply,
          422,
          detailPage({
            session: s,
            view: v,
            ...mayDecide(v, s.sub),
            error: { field: 'comment', message: problem ?? 'not a decision' },
            comment,
          }),
        );
      }
      try {
        const out = await decide(s, id, parsed.data.decision, parsed.data.comment);
        // Sent, but the worker did not count it (the policy changed, the proof did not verify): say why.
        if (!out.counted)
          return sendPage(
            reply,
            403,
            detailPage({
              session: s,
              view: out.view,
              ...mayDecide(out.view, s.sub),
              error: { message: `Not counted: ${out.why ?? 'refused by the approval policy'}` },
              comment,
            }),
          );
      } catch (err) {
        if (!(err instanceof ProblemError) || err.status >= 500 || err.status === 404) throw err;
        const v = await view(id);
        return sendPage(
          reply,
          err.status,
          detailPage({
            session: s,
            view: v,
            ...mayDecide(v, s.sub),
            error: { message: `${err.title}: ${err.detail ?? ''}` },
            comment,
          }),
        );
      }
      return seeOther(reply, `/inbox/amendments/${encodeURIComponent(id)}`);
    });

    // ---- JSON for the page ------------------------------------------------------------------
    const apiSession = async (req: FastifyRequest) => {
      const s = await sessionOf(req);
      if (!s)
        throw new ProblemError(
          401,
          'not-signed-in',
          'Not signed in',
          'sign in at /inbox/login (the session cookie is missing, expired or not valid)',
        );
      return s;
    };

    scope.get('/inbox/api/amendments/:id', async (req, reply) => {
      const s = await apiSession(req);
      const v = await view(paramsOf(req).id);
      return reply.headers({ 'cache-control': 'no-store' }).send(summary(v, mayDecide(v, s.sub)));
    });

    scope.post('/inbox/api/amendments/:id/decision', async (req, reply) => {
      const s = await apiSession(req);
      const token = req.headers['x-csrf-token'];
      if (!sameSite(req) || !sameToken(typeof token === 'string' ? token : undefined, s.csrf)) {
        throw new ProblemError(
          403,
          'csrf-refused',
          'Not allowed',
          'send the session’s CSRF token in the x-csrf-token header, from a page of this site',
        );
      }
      const r = DecisionJson.safeParse(req.body ?? {});
      if (!r.success)
        throw new ProblemError(
          422,
          'validation-failed',
          'The request does not validate',
          'a decision is {"decision": "approve" | "reject", "comment": "..."}; who decides is the signed-in person',
          { errors: zodIssues(r.error) },
        );
      if (r.data.decision === 'reject' && !r.data.comment?.trim()) {
        throw new ProblemError(
          422,
          'validation-failed',
          'The request does not validate',
          'a reason is required to reject',
          { errors: [{ path: 'comment', message: 'a reason is required to reject' }] },
        );
      }
      const out = await decide(s, paramsOf(req).id, r.data.decision, r.data.comment);
      return reply.headers({ 'cache-control': 'no-store' }).send({
        counted: out.counted,
        ...(out.why ? { why: out.why } : {}),
        view: summary(out.view, mayDecide(out.view, s.sub)),
      });
    });

    scope.get('/inbox/api/pending', async (req, reply) => {
      const s = await apiSession(req);
      const pending = await onTemporal(client, limits.temporalMs, () => listPending(client, PENDING_CAP));
      const mine = pending.views.filter((v) => desk.whyNot(v, s.sub) === undefined);
      return reply
        .headers({ 'cache-control': 'no-store' })
        .send({ capped: pending.capped, amendments: mine.map((v) => summary(v, { mayReject: true })) });
    });
  });

  /** What this person may do with this amendment now: approve (no whyNot), and reject. */
  function mayDecide(v: AmendmentView, who: string): { whyNot?: string; mayReject: boolean } {
    const why = desk!.whyNot(v, who, 'approve');
    return { ...(why ? { whyNot: why } : {}), mayReject: desk!.whyNot(v, who, 'reject') === undefined };
  }

  function paramsOf(req: FastifyRequest): { id: string } {
    const r = IdParams.safeParse(req.params);
    if (!r.success)
      throw new ProblemError(
        422,
        'validation-failed',
        'The request does not validate',
        'the amendment id is not valid',
        { errors: zodIssues(r.error) },
      );
    return r.data;
  }

  async function decide(s: Session, id: string, decision: 'approve' | 'reject', comment?: string) {
    const text = comment?.trim() ? comment : undefined;
    return onTemporal(client, limits.temporalMs, () => desk!.decide(approverOf(s), id, decision, text));
  }
}

/** What the page's script reads: the status line, the approvals, and whether this person may still decide. */
function summary(v: AmendmentView, may: { whyNot?: string; mayReject: boolean }) {
  const { whyNot } = may;
  return {
    amendmentId: v.amendmentId,
    contractId: v.contractId,
    status: v.status,
    statusLabel: STATUS_LABEL[v.status],
    statusLine: statusLine(v),
    ...(v.reason ? { reason: v.reason } : {}),
    final: FINAL_STATUSES.has(v.status),
    approvals: (v.approval?.approvals ?? []).map((a) => ({
      by: a.by,
      at: a.at,
      ...(a.proof ? { verified: PROOF_LABEL[a.proof.via] ?? a.proof.via } : {}),
      ...(a.comment ? { comment: a.comment } : {}),
    })),
    approvalCount: approvalCount(v),
    needed: v.approval?.needed ?? 0,
    stillNeeded: v.approval?.stillNeeded ?? 0,
    ...(v.approval?.deadline ? { deadline: v.approval.deadline } : {}),
    mayDecide: whyNot === undefined,
    mayReject: may.mayReject,
    ...(whyNot ? { whyNot } : {}),
    operations: v.operations.map((o) => ({
      target: o.target,
      action: o.action,
      subject: o.subject,
      description: o.description,
      outcome: o.outcome,
    })),
    operationsTotal: v.operationsTotal ?? v.operations.length,
    reasons: (v.approval?.reasons ?? []).map((r) => ({ ruleId: r.ruleId, message: r.message })),
  };
}
