/**
 * The approvals inbox (issue 12, point 2), end to end in headless Chromium (Debian's, driven by
 * playwright-core) at a phone's width, on the real stack: the dev server, PostgreSQL and
 * scim2-server with an in-process worker, the API server on loopback with the inbox, and a real
 * OpenID provider (oidc-provider, in its own process on loopback).
 *
 * - dana (local users file, bcrypt) signs in, sees the amendment pending approval with what it
 *   grants to whom and why, approves it with a comment and sees it completed, live.
 * - mallory (signed in, not an approver) is not offered it, sees no Approve button on its page,
 *   and the decision POSTed directly with mallory's own session and CSRF token is refused (403).
 * - olga signs in through the OpenID provider (code + PKCE; her approver id is the verified
 *   preferred_username claim, not the opaque sub), and approves from the keyboard alone.
 * Screenshots: test-artifacts/inbox-*.png.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { ApprovalDesk } from '../../src/api/approvals';
import { LocalUsers, parseSessionKeys } from '../../src/api/inbox';
import { OidcConfigSchema } from '../../src/api/inbox/oidc';
import { newSessionKey } from '../../src/api/inbox/session';
import { addUser } from '../../src/api/inbox/users';
import type { LogEntry } from '../../src/api/log';
import { buildApiServer } from '../../src/api/server';
import type { AmendmentView } from '../../src/client';
import { loadSigningKey } from '../../src/approvals/token';
import { need } from '../harness/env';
import { ROOT } from '../harness/proc';
import { until } from '../harness/until';
import { baseline, customer } from '../workflows/fixtures';
import { startStack, type Stack } from '../workflows/stack';

const CHROMIUM = process.env.AMENDCTL_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const PHONE = { width: 375, height: 812 };
const dir = mkdtempSync(join(tmpdir(), 'amendctl-inbox-'));
const PASSWORDS = {
  dana: `dana-${randomBytes(8).toString('hex')}`,
  mallory: `mallory-${randomBytes(8).toString('hex')}`,
  olga: `olga-${randomBytes(8).toString('hex')}`,
};
const OIDC_CLIENT = 'amendctl-inbox';
const OIDC_SECRET = randomBytes(24).toString('hex');

let stack: Stack;
let app: FastifyInstance;
let base = '';
let idp: ChildProcess | undefined;
let issuer = '';
let browser: Browser;
let desk: ApprovalDesk;
const logs: LogEntry[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** The OpenID provider in its own process; resolves with its issuer URL once it listens. */
async function startIdp(redirectUri: string): Promise<string> {
  const accounts = {
    olga: {
      sub: `u-${randomBytes(6).toString('hex')}`,
      password: PASSWORDS.olga,
      name: 'Olga Operator',
      email: 'olga@corp.test',
    },
  };
  idp = spawn(process.execPath, [join(__dirname, 'support', 'oidc-provider.mjs'), redirectUri, OIDC_CLIENT], {
    env: {
      ...process.env,
      OIDC_TEST_CLIENT_SECRET: OIDC_SECRET,
      OIDC_TEST_ACCOUNTS: JSON.stringify(accounts),
      NODE_NO_WARNINGS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  idp.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    idp!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { issuer: string }).issuer);
    });
    idp!.once('exit', (code) => reject(new Error(`the OpenID provider exited (${code}): ${err.slice(0, 2000)}`)));
  });
}

beforeAll(async () => {
  const approvals = join(dir, 'approvals.yaml');
  writeFileSync(approvals, 'approvers: [dana, olga]\nrequired: 1\nseparationOfDuties: true\ndeadline: 72h\n');
  stack = await startStack('inbox', { approvalsFile: approvals });

  const usersFile = join(dir, 'users.yaml');
  await addUser(usersFile, { id: 'dana', name: 'Dana Approver', password: PASSWORDS.dana }, 10);
  await addUser(usersFile, { id: 'mallory', password: PASSWORDS.mallory }, 10);

  const port = await freePort();
  issuer = await startIdp(`http://127.0.0.1:${port}/inbox/oidc/callback`);
  const oidc = OidcConfigSchema.parse({
    issuer,
    clientId: OIDC_CLIENT,
    clientSecret: { env: 'INBOX_TEST_OIDC_SECRET' },
    approverClaim: 'preferred_username',
    label: 'Sign in with Test IdP',
  });
  app = buildApiServer({
    client: stack.client,
    sources: new Map(),
    auth: { keys: [] },
    limits: { bodyBytes: 64 * 1024, temporalMs: 10_000 },
    logger: (e) => logs.push(e),
    // The harness's service signing key, which the test workers trust (AMENDCTL_APPROVAL_KEYS).
    desk: (desk = new ApprovalDesk({ client: stack.client, signer: loadSigningKey(need('AMENDCTL_APPROVER_KEY')) })),
    inbox: {
      sessionKeys: parseSessionKeys(newSessionKey(), 'test'),
      users: new LocalUsers(usersFile),
      oidc,
      env: { INBOX_TEST_OIDC_SECRET: OIDC_SECRET },
    },
  });
  base = await app.listen({ port, host: '127.0.0.1' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  idp?.kill('SIGTERM');
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function pendingAmendment(tag: string, who: string): Promise<AmendmentView & { email: string }> {
  const c = customer(tag);
  const a = baseline(c, [[who, 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(a);
  const v = await until(
    `${a.amendmentId} pending approval`,
    async () => {
      const s = await stack.client.getStatus(a.amendmentId);
      return s.status === 'pending_approval' ? s : undefined;
    },
    60_000,
  );
  return { ...v, email: c.email(who) };
}

const phone = (): Promise<BrowserContext> =>
  browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(ARTIFACTS, `inbox-${name}.png`), fullPage: true });

/** Nothing is wider than the phone: no sideways scrolling. */
async function fitsThePhone(page: Page): Promise<void> {
  expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
}

/** The element's text once it matches (polled: the page changes it live). */
function seeText(l: Locator, re: RegExp, timeoutMs = 15_000): Promise<string> {
  return until(
    `text ${re}`,
    async () => {
      const t = await l.first().textContent({ timeout: 1000 });
      return t !== null && re.test(t) ? t : undefined;
    },
    timeoutMs,
    100,
  );
}

async function signIn(page: Page, id: string, password: string): Promise<void> {
  await page.goto(`${base}/inbox`);
  await page.waitForURL(/\/inbox\/login/);
  await page.getByLabel('User id').fill(id);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Password').press('Enter');
  await page.getByRole('heading', { name: 'Waiting for me' }).waitFor();
}

test('dana signs in with the local users file, sees the pending amendment with its grants, approves it and sees it completed', async () => {
  const pending = await pendingAmendment('inbox-dana', 'ines');
  const ctx = await phone();
  const page = await ctx.newPage();

  // A wrong password first: told so, in an alert, and not signed in.
  await page.goto(`${base}/inbox`);
  await page.waitForURL(/\/inbox\/login\?next=%2Finbox$/);
  await shot(page, 'login');
  await page.getByLabel('User id').fill('dana');
  await page.getByLabel('Password').fill('not the password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await seeText(page.getByRole('alert'), /user id or the password is not right/);

  await signIn(page, 'dana', PASSWORDS.dana);
  const card = page.locator(`li.amendment[data-amendment="${pending.amendmentId}"]`);
  await card.waitFor();
  await expect(card.textContent()).resolves.toContain(pending.contractId);
  // What it grants to whom, and why approval is needed (the rule that asked).
  const cardText = (await card.textContent())!;
  expect(cardText).toContain(pending.email);
  expect(cardText).toMatch(/admin/);
  expect(cardText).toContain('admin-grant-needs-approval');
  expect(cardText).toMatch(/Deadline\s*\d{4}-\d\d-\d\d \d\d:\d\d/);
  for (const op of pending.operations.slice(0, 10)) expect(cardText).toContain(op.description);
  await fitsThePhone(page);
  await shot(page, 'list');

  await card.getByRole('link', { name: /Review and decide/ }).click();
  await page.getByRole('heading', { name: `Amendment ${pending.amendmentId}` }).waitFor();
  await seeText(page.getByRole('status'), /pending approval/);
  await page.getByLabel(/Comment/).fill('checked against the signed order form');
  await fitsThePhone(page);
  await shot(page, 'detail');
  await page.getByRole('button', { name: 'Approve' }).click();

  // The status follows live in the page's live region until it is final.
  await seeText(page.getByRole('status'), /^Status: completed/, 60_000);
  await seeText(
    page.locator('#approvals'),
    /dana.*\(verified: password sign-in\).*checked against the signed order form/,
  );
  await seeText(page.locator('.approval-count'), /^1 of 1 needed$/);
  await seeText(page.locator('li[data-op="0"] .outcome'), /^(applied|unchanged)$/);
  await shot(page, 'completed');

  const v = await stack.client.getStatus(pending.amendmentId);
  expect(v.status).toBe('completed');
  // Signed by the server for the proven person, verified by the worker: how she proved herself is on the record.
  expect(v.approval?.approvals).toEqual([
    expect.objectContaining({
      by: 'dana',
      comment: 'checked against the signed order form',
      proof: expect.objectContaining({ via: 'password' }),
    }),
  ]);
  await ctx.close();

  // The access log: route patterns and statuses, no person, no email, no password, no token.
  const text = JSON.stringify(logs);
  for (const secret of [PASSWORDS.dana, pending.email, 'dana', 'ines']) expect(text).not.toContain(secret);
  expect(
    logs.some((l) => l.kind === 'access' && l.route === '/inbox/api/amendments/:id/decision' && l.status === 200),
  ).toBe(true);
});

test('mallory, signed in but not an approver, is not offered the amendment, sees no Approve button, and the decision API refuses her', async () => {
  const pending = await pendingAmendment('inbox-mallory', 'jon');
  const ctx = await phone();
  const page = await ctx.newPage();
  await signIn(page, 'mallory', PASSWORDS.mallory);
  expect(await page.locator(`li.amendment[data-amendment="${pending.amendmentId}"]`).count()).toBe(0);
  await seeText(page.locator('#empty'), /^Nothing is waiting for you\.$/);

  await page.goto(`${base}/inbox/amendments/${pending.amendmentId}`);
  await page.getByRole('heading', { name: `Amendment ${pending.amendmentId}` }).waitFor();
  expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
  expect(await page.getByRole('button', { name: 'Reject' }).count()).toBe(0);
  await seeText(page.locator('#why-not'), /mallory is not an approver/);
  await fitsThePhone(page);
  await shot(page, 'not-allowed');

  // Straight to the API with her own session and CSRF token: refused, as a problem.
  const csrf = (await page.locator('meta[name="csrf-token"]').getAttribute('content'))!;
  const post = (body: unknown, withToken = true) =>
    page.evaluate(
      async ({ url, body, token }) => {
        const r = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(token ? { 'x-csrf-token': token } : {}) },
          body: JSON.stringify(body),
        });
        return {
          status: r.status,
          type: r.headers.get('content-type'),
          body: (await r.json()) as { type: string; detail?: string },
        };
      },
      { url: `/inbox/api/amendments/${pending.amendmentId}/decision`, body, token: withToken ? csrf : '' },
    );
  const refused = await post({ decision: 'approve', comment: 'let me in' });
  expect(refused.status).toBe(403);
  expect(refused.type).toMatch(/^application\/problem\+json/);
  expect(refused.body.type).toBe('urn:amendctl:problem:approver-not-allowed');
  expect(refused.body.detail).toMatch(/mallory is not an approver/);
  // Naming someone else is no way round it: who decides is not a field.
  const named = await post({ decision: 'approve', by: 'dana' });
  expect(named.status).toBe(422);
  // Without the session's CSRF token, nothing is even looked at.
  expect((await post({ decision: 'approve' }, false)).status).toBe(403);
  // Without a session at all.
  const anonymous = await fetch(`${base}/inbox/api/amendments/${pending.amendmentId}/decision`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': 'x' },
    body: '{"decision":"approve"}',
  });
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  // A form posted from another site with her cookie: the browser says where it came from.
  const cookie = (await ctx.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const crossSite = await fetch(`${base}/inbox/api/amendments/${pending.amendmentId}/decision`, {
    method: 'POST',
    headers: { cookie, origin: 'https://evil.example', 'content-type': 'application/json', 'x-csrf-token': 'guess' },
    body: '{"decision":"approve"}',
  });
  expect(crossSite.status).toBe(403);

  const v = await stack.client.getStatus(pending.amendmentId);
  expect(v.status).toBe('pending_approval');
  expect(v.approval?.approvals).toEqual([]);
  await ctx.close();
  expect(
    (await desk.decide({ id: 'dana', via: 'password' }, pending.amendmentId, 'reject', 'test cleanup')).counted,
  ).toBe(true);
});

test('olga signs in through the OpenID provider (code + PKCE), is named by her preferred_username, and approves from the keyboard', async () => {
  const pending = await pendingAmendment('inbox-olga', 'kai');
  const ctx = await phone();
  const page = await ctx.newPage();
  await page.goto(`${base}/inbox`);
  await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
  await page.waitForURL((u) => u.href.startsWith(issuer));
  await page.getByLabel('Username').fill('olga');
  await page.getByLabel('Password').fill(PASSWORDS.olga);
  await shot(page, 'oidc-provider');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Waiting for me' }).waitFor();
  await seeText(page.locator('.who'), /Olga Operator \(olga\)/);
  const card = page.locator(`li.amendment[data-amendment="${pending.amendmentId}"]`);
  await card.waitFor();
  expect(await card.textContent()).toContain(pending.email);
  await shot(page, 'oidc-list');

  // Keyboard only: to the amendment's link, Enter; the comment; Tab to Approve, Enter.
  await card.getByRole('link', { name: /Review and decide/ }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: `Amendment ${pending.amendmentId}` }).waitFor();
  // Reject with no reason: the page says a reason is required and puts the focus in the comment.
  await page.getByRole('button', { name: 'Reject' }).focus();
  await page.keyboard.press('Enter');
  await seeText(page.locator('#comment-error'), /A reason is required to reject/);
  expect(await page.evaluate<string | null>('document.activeElement && document.activeElement.id')).toBe('comment');
  expect(await page.getByLabel(/Comment/).getAttribute('aria-invalid')).toBe('true');
  await page.keyboard.type('fine by me');
  await page.keyboard.press('Tab');
  expect(await page.evaluate<string | null>('document.activeElement && document.activeElement.textContent')).toBe(
    'Approve',
  );
  await page.keyboard.press('Enter');
  await seeText(page.getByRole('status'), /^Status: completed/, 60_000);
  await shot(page, 'oidc-completed');

  const v = await stack.client.getStatus(pending.amendmentId);
  expect(v.approval?.approvals).toEqual([
    expect.objectContaining({ by: 'olga', comment: 'fine by me', proof: expect.objectContaining({ via: 'oidc' }) }),
  ]);
  await ctx.close();
});

test('without JavaScript the forms still work: a rejection needs a reason, and the page reloads itself until the status is final', async () => {
  const pending = await pendingAmendment('inbox-nojs', 'lea');
  const ctx = await browser.newContext({ viewport: PHONE, javaScriptEnabled: false });
  const page = await ctx.newPage();
  await signIn(page, 'dana', PASSWORDS.dana);
  await page.goto(`${base}/inbox/amendments/${pending.amendmentId}`);
  await page.getByRole('button', { name: 'Reject' }).click();
  await seeText(page.getByRole('alert'), /a reason is required to reject/);
  expect(await page.getByLabel(/Comment/).getAttribute('aria-invalid')).toBe('true');
  await shot(page, 'reject-needs-reason');
  await page.getByLabel(/Comment/).fill('not in the signed contract');
  await page.getByRole('button', { name: 'Reject' }).click();
  await page.waitForURL(new RegExp(`/inbox/amendments/${pending.amendmentId}$`));
  // The noscript refresh reloads the page until the status is final.
  await seeText(page.getByRole('status'), /^Status: rejected/, 30_000);
  const v = await stack.client.getStatus(pending.amendmentId);
  expect(v.status).toBe('rejected');
  expect(v.approval?.rejection).toMatchObject({
    by: 'dana',
    reason: 'not in the signed contract',
    proof: { via: 'password' },
  });
  await ctx.close();
});
