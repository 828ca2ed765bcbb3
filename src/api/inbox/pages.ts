/**
 * The inbox's pages, rendered on the server (no build step): plain HTML with real labels and
 * buttons, one stylesheet and one small script (./assets.ts) that follows an amendment's status
 * live. Every value from outside goes through `esc`; nothing is inserted as HTML otherwise.
 */
import type { AmendmentView } from '../../client';
import { FINAL_STATUSES } from '../../workflows/definitions';
import type { Session } from './session';

export function esc(value: unknown): string {
  return String(value ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** Already-escaped HTML, built from `html` templates: the only kind of value inserted unescaped. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Part = Html | string | number | undefined | null | false | Part[];

function flat(p: Part): string {
  if (p === undefined || p === null || p === false) return '';
  if (p instanceof Html) return p.text;
  if (Array.isArray(p)) return p.map(flat).join('');
  return esc(p);
}

/** A template whose values are escaped unless they are Html. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += flat(v) + strings[i + 1]!));
  return new Html(out);
}

export const STATUS_LABEL: Record<AmendmentView['status'], string> = {
  queued: 'queued',
  scheduled: 'scheduled',
  pending_approval: 'pending approval',
  running: 'running',
  completed: 'completed',
  invalid: 'invalid',
  rejected: 'rejected',
  rolled_back: 'rolled back',
  failed: 'failed',
};

const when = (iso: string | undefined): Html =>
  iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '')} UTC</time>` : html`none`;

export interface Layout {
  title: string;
  session?: Session;
  body: Html;
  /** No script: reload the page this often (the status is not final). */
  refreshSeconds?: number;
}

export function page(l: Layout): string {
  const s = l.session;
  return `<!doctype html>\n${
    html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${l.title} · amendctl approvals</title>
<link rel="icon" href="/inbox/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/inbox/assets/inbox.css">
<script src="/inbox/assets/inbox.js" defer></script>
${s ? html`<meta name="csrf-token" content="${s.csrf}">` : ''}
${l.refreshSeconds ? html`<noscript><meta http-equiv="refresh" content="${l.refreshSeconds}"></noscript>` : ''}
</head>
<body>
<a class="skip" href="#main">Skip to the content</a>
<header class="top">
  <a class="brand" href="/inbox">amendctl approvals</a>
  ${
    s
      ? html`<form class="signout" method="post" action="/inbox/logout">
    <span class="who">Signed in as <strong>${s.name ?? s.sub}</strong>${s.name && s.name !== s.sub ? html` (${s.sub})` : ''}</span>
    <input type="hidden" name="_csrf" value="${s.csrf}">
    <button type="submit" class="secondary">Sign out</button>
  </form>`
      : ''
  }
</header>
<main id="main" tabindex="-1">
${l.body}
</main>
</body>
</html>`.text
  }\n`;
}

// ---- sign-in ------------------------------------------------------------------------------

export interface LoginPage {
  csrf: string;
  passwords: boolean;
  oidcLabel?: string;
  next?: string;
  error?: string;
  id?: string;
}

export function loginPage(p: LoginPage): string {
  const body = html`<h1>Sign in</h1>
<p>Sign in to see the amendments waiting for your approval.</p>
${p.error ? html`<p class="error" role="alert" id="login-error">${p.error}</p>` : ''}
${
  p.oidcLabel
    ? html`<p><a class="button" href="/inbox/login/oidc${p.next ? html`?next=${encodeURIComponent(p.next)}` : ''}">${p.oidcLabel}</a></p>`
    : ''
}
${
  p.passwords
    ? html`<form method="post" action="/inbox/login" class="card" ${p.error ? html`aria-describedby="login-error"` : ''}>
  ${p.oidcLabel ? html`<h2>With a local account</h2>` : ''}
  <input type="hidden" name="_csrf" value="${p.csrf}">
  ${p.next ? html`<input type="hidden" name="next" value="${p.next}">` : ''}
  <div class="field">
    <label for="id">User id</label>
    <input id="id" name="id" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="128" value="${p.id ?? ''}" ${p.error ? html`aria-invalid="true"` : ''}>
  </div>
  <div class="field">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024" ${p.error ? html`aria-invalid="true"` : ''}>
  </div>
  <button type="submit">Sign in</button>
</form>`
    : ''
}`;
  return page({ title: 'Sign in', body });
}

export function messagePage(
  title: string,
  message: string,
  opts: { session?: Session; link?: { href: string; text: string } } = {},
): string {
  return page({
    title,
    ...(opts.session ? { session: opts.session } : {}),
    body: html`<h1>${title}</h1>
<p class="error" role="alert">${message}</p>
${opts.link ? html`<p><a href="${opts.link.href}">${opts.link.text}</a></p>` : ''}`,
  });
}

// ---- amendments ---------------------------------------------------------------------------

const amendmentUrl = (id: string): string => `/inbox/amendments/${encodeURIComponent(id)}`;

function grants(v: AmendmentView, max: number): Html {
  const ops = v.operations.slice(0, max);
  const total = v.operationsTotal ?? v.operations.length;
  if (total === 0) return html`<p>No access changes.</p>`;
  return html`<ul class="ops">
${ops.map(
  (
    o,
    i,
  ) => html`<li data-op="${i}"><span class="op">${o.description}</span> <span class="meta"><span class="target">${o.target}</span> · <span class="action">${o.action}</span> · <span class="outcome">${o.outcome}</span></span></li>
`,
)}</ul>
${total > ops.length ? html`<p class="more">and ${total - ops.length} more (<code>amendctl status ${v.amendmentId} --operations</code>)</p>` : ''}`;
}

function reasons(v: AmendmentView): Html {
  const rs = v.approval?.reasons ?? [];
  if (rs.length === 0) return html`<p>No rule named a reason.</p>`;
  return html`<ul class="reasons">${rs.map((r) => html`<li><code>${r.ruleId}</code>: ${r.message}</li>`)}</ul>`;
}

/** How an approver proved themselves, as the verified proof says. */
export const PROOF_LABEL: Record<string, string> = {
  oidc: 'OpenID sign-in',
  password: 'password sign-in',
  'api-key': 'API key',
  jwt: 'access token',
  'personal-key': 'personal key',
  service: 'service key',
};

export function approvalsList(v: AmendmentView): Html {
  const a = v.approval;
  if (!a) return html`<ul id="approvals" class="approvals"><li>none</li></ul>`;
  const items = a.approvals.length
    ? a.approvals.map(
        (x) =>
          html`<li><strong>${x.by}</strong>, ${when(x.at)}${x.proof ? ` (verified: ${PROOF_LABEL[x.proof.via] ?? x.proof.via})` : ''}${x.comment ? html`: “${x.comment}”` : ''}</li>`,
      )
    : [html`<li>none yet</li>`];
  return html`<ul id="approvals" class="approvals">${items}</ul>`;
}

export function approvalCount(v: AmendmentView): string {
  const a = v.approval;
  return a?.required ? `${a.needed - a.stillNeeded} of ${a.needed} needed` : 'none needed';
}

function facts(v: AmendmentView): Html {
  const a = v.approval;
  return html`<dl class="facts">
  <div><dt>Contract</dt><dd>${v.contractId} (sequence ${v.sequence})</dd></div>
  <div><dt>Customer</dt><dd>${v.customerId ?? 'unknown'}</dd></div>
  <div><dt>Submitted by</dt><dd>${v.submittedBy}, ${when(v.submittedAt)}</dd></div>
  ${v.rollback ? html`<div><dt>Reverses</dt><dd>${v.rollback.of}: asked by ${v.rollback.requestedBy} (“${v.rollback.reason}”)</dd></div>` : ''}
  <div><dt>Deadline</dt><dd>${when(a?.deadline)}${a?.stage === 'escalated' ? ' (escalated)' : ''}</dd></div>
  <div><dt>Approvals</dt><dd class="approval-count">${approvalCount(v)}</dd></div>
</dl>`;
}

export function listPage(
  session: Session,
  items: AmendmentView[],
  opts: { capped: boolean; cap: number; unread: number },
): string {
  const body = html`<h1>Waiting for me</h1>
${opts.capped ? html`<p class="note" role="note">Only the first ${opts.cap} amendments pending approval were read; there are more. Decide these first, or find the rest with <code>AmendmentStatus = "pending_approval"</code> in the Temporal UI.</p>` : ''}
${opts.unread ? html`<p class="note" role="note">${opts.unread} pending amendment${opts.unread === 1 ? '' : 's'} could not be read just now (no worker answered).</p>` : ''}
${
  items.length === 0
    ? html`<p id="empty">Nothing is waiting for you.</p>`
    : html`<p>${items.length} amendment${items.length === 1 ? '' : 's'} need${items.length === 1 ? 's' : ''} your decision.</p>
<ol class="inbox">
${items.map(
  (v) => html`<li class="card amendment" data-amendment="${v.amendmentId}">
  <h2><a href="${amendmentUrl(v.amendmentId)}">Amendment ${v.amendmentId}</a></h2>
  ${facts(v)}
  <h3>Why it needs approval</h3>
  ${reasons(v)}
  <h3>What it grants, to whom</h3>
  ${grants(v, 10)}
  <h3>Approved so far</h3>
  ${approvalsList(v)}
  <p><a class="button" href="${amendmentUrl(v.amendmentId)}">Review and decide<span class="sr"> on ${v.amendmentId}</span></a></p>
</li>
`,
)}</ol>`
}`;
  return page({ title: 'Waiting for me', session, body });
}

export interface DetailPage {
  session: Session;
  view: AmendmentView;
  /** Why this person may not approve now (then no Approve button). */
  whyNot?: string;
  /** May reject all the same: the submitter withdrawing its own amendment. */
  mayReject?: boolean;
  error?: { field?: 'comment'; message: string };
  comment?: string;
}

export function statusLine(v: AmendmentView): string {
  return `Status: ${STATUS_LABEL[v.status]}${v.reason ? `: ${v.reason}` : ''}`;
}

export function detailPage(p: DetailPage): string {
  const v = p.view;
  const final = FINAL_STATUSES.has(v.status);
  const body = html`<p><a href="/inbox">← Waiting for me</a></p>
<h1>Amendment ${v.amendmentId}</h1>
<p id="status" class="status status-${v.status}" role="status" aria-live="polite" data-amendment="${v.amendmentId}" data-status="${v.status}" data-final="${final ? 'true' : 'false'}">${statusLine(v)}</p>
${facts(v)}
<h2>Why it needs approval</h2>
${reasons(v)}
<h2>What it grants, to whom</h2>
${grants(v, 50)}
<h2>Approved so far</h2>
${approvalsList(v)}
${v.approval?.rejection ? html`<p>Rejected by <strong>${v.approval.rejection.by}</strong>, ${when(v.approval.rejection.at)}: “${v.approval.rejection.reason}”</p>` : ''}
${p.whyNot ? html`<p class="note" id="why-not" role="note">You cannot ${p.mayReject ? 'approve' : 'decide'} this amendment: ${p.whyNot}.${p.mayReject ? ' You may withdraw it (reject it with a reason).' : ''}</p>` : ''}
${
  p.whyNot && !p.mayReject
    ? ''
    : html`<form id="decision" class="card" method="post" action="${amendmentUrl(v.amendmentId)}/decision" novalidate>
  <h2>Your decision</h2>
  <input type="hidden" name="_csrf" value="${p.session.csrf}">
  <div class="field">
    <label for="comment">${p.whyNot ? 'Reason' : 'Comment'} <span class="hint">(${p.whyNot ? 'required to reject' : 'optional to approve, required to reject'})</span></label>
    <textarea id="comment" name="comment" rows="3" maxlength="2000" aria-describedby="comment-error" ${p.error?.field === 'comment' ? html`aria-invalid="true"` : ''}>${p.comment ?? ''}</textarea>
  </div>
  <p id="comment-error" class="error" role="alert" ${p.error ? '' : html`hidden`}>${p.error?.message ?? ''}</p>
  <div class="actions">
    ${p.whyNot ? '' : html`<button type="submit" name="decision" value="approve">Approve</button>`}
    <button type="submit" name="decision" value="reject" class="danger">Reject</button>
  </div>
</form>`
}`;
  return page({
    title: `Amendment ${v.amendmentId}`,
    session: p.session,
    body,
    ...(final || v.status === 'pending_approval' ? {} : { refreshSeconds: 2 }),
  });
}
