/**
 * The Temporal Web UI with our codec endpoint (issue 6): headless Chromium (Debian's, driven by
 * playwright-core) finds an amendment by ContractId, opens it and reads the decoded summary and
 * input (a named user's email in clear text, which the server only holds encrypted). Leaves
 * test-artifacts/ui-amendment.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { need } from '../harness/env';
import { proven } from '../harness/approvals';
import { until } from '../harness/until';
import { ROOT } from '../harness/proc';
import { baseline, customer } from '../workflows/fixtures';
import { startStack, type Stack } from '../workflows/stack';

const CHROMIUM = process.env.AMENDCTL_CHROMIUM ?? '/usr/bin/chromium';
let stack: Stack;
let browser: BrowserContext;
const profile = mkdtempSync(join(tmpdir(), 'amendctl-ui-'));

beforeAll(async () => {
  stack = await startStack('ui');
  // A fresh profile per run (the user-data-dir), so no setting or cache from an earlier run decodes for us.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 1100 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  rmSync(profile, { recursive: true, force: true });
});

test('the UI finds the amendment by ContractId and shows its summary and input decoded through the codec server', async () => {
  const c = customer('ui');
  const a = baseline(c, [['hana', 'member']]);
  await stack.client.submitAmendment(a);
  expect((await stack.client.waitForResult(a.amendmentId)).status).toBe('completed');
  const workflowId = `amendment-${a.amendmentId}`;

  const page = await browser.newPage();
  const codecCalls: number[] = [];
  page.on('response', (r) => {
    if (r.url().startsWith(need('AMENDCTL_TEST_CODEC_URL')) && r.url().endsWith('/decode')) codecCalls.push(r.status());
  });
  const ui = need('AMENDCTL_TEST_TEMPORAL_UI');
  // The list, filtered by the search attribute (visibility may lag a moment behind the close).
  const listUrl = `${ui}/namespaces/default/workflows?query=${encodeURIComponent(`ContractId="${c.contractId}"`)}`;
  const link = page.locator(`a[href*="${encodeURIComponent(workflowId)}"], a:has-text("${workflowId}")`).first();
  for (let i = 0; ; i++) {
    await page.goto(listUrl, { waitUntil: 'domcontentloaded' });
    try {
      await link.waitFor({ timeout: 10_000 });
      break;
    } catch (err) {
      if (i >= 3) throw err;
    }
  }
  // Only this contract's amendment is listed.
  const listed = new Set(
    await page.locator('a[href*="/workflows/amendment-"]').evaluateAll((as) =>
      as.map(
        (x) =>
          decodeURIComponent((x as { pathname?: string }).pathname ?? '')
            .split('/workflows/')[1]
            ?.split('/')[0],
      ),
    ),
  );
  expect([...listed]).toEqual([workflowId]);
  await link.click();
  await page.waitForURL(/\/workflows\/amendment-/);

  // The static summary (user metadata, encrypted on the server) decoded.
  await page.getByText(`Amendment ${a.amendmentId} of contract ${c.contractId}`).first().waitFor({ timeout: 30_000 });
  // The input, decoded: the named user's email in clear text.
  await page.getByText(c.email('hana')).first().waitFor({ timeout: 30_000 });
  expect(codecCalls.length).toBeGreaterThan(0);
  expect(codecCalls.every((s) => s === 200)).toBe(true);

  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'test-artifacts', 'ui-amendment.png'), fullPage: false });
  await page.close();
});

test("the UI's signal form approves an amendment like our CLI and `temporal workflow signal` do", async () => {
  const c = customer('ui-signal');
  const a = baseline(c, [['ines', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(a);
  await until(
    `${a.amendmentId} pending approval`,
    () => stack.client.getStatus(a.amendmentId).then((v) => (v.status === 'pending_approval' ? v : undefined)),
    30_000,
    100,
  );

  const page = await browser.newPage();
  await page.goto(
    `${need('AMENDCTL_TEST_TEMPORAL_UI')}/namespaces/default/workflows/${encodeURIComponent(`amendment-${a.amendmentId}`)}`,
    { waitUntil: 'domcontentloaded' },
  );
  await page
    .getByRole('button', { name: /More Actions/ })
    .first()
    .click();
  await page
    .getByRole('menuitem', { name: /Send a Signal/ })
    .first()
    .click();
  // The UI keeps a hidden copy of each dialog: act on the visible one.
  await page.locator('[data-testid="signal-select-button"]:visible').click();
  await page
    .locator('[role=option]:visible', { hasText: /^\s*approve\s*$/ })
    .first()
    .click();
  const dialog = page.locator('[data-testid="signal-confirmation-modal"]:visible');
  await dialog.locator('.cm-content').first().click();
  // The signed input `amendctl approve --print-signal` prints (here: the run's harness key vouches for ulla).
  const input = await proven(stack.client.client.workflow.getHandle(`amendment-${a.amendmentId}`), 'approve', {
    by: 'ulla',
    comment: 'approved in the Web UI',
  });
  await page.keyboard.insertText(JSON.stringify(input)); // at once: the editor would pair brackets and quotes typed one by one
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'test-artifacts', 'ui-signal-approve.png') });
  // Leaving the editor reformats the JSON and the dialog grows: leave it first (and wait for the
  // reformatted text), so the click lands on Submit rather than where it was.
  const editor = dialog.locator('.cm-content').first();
  await editor.blur();
  await until(
    'the input reformatted',
    async () => ((await editor.textContent())?.includes('"by": "ulla"') ? true : undefined),
    10_000,
    100,
  );
  await dialog.getByRole('button', { name: 'Submit' }).click();

  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('completed');
  expect(v.approval?.approvals).toEqual([
    expect.objectContaining({
      by: 'ulla',
      comment: 'approved in the Web UI',
      proof: expect.objectContaining({ keyId: 'test-harness' }),
    }),
  ]);
  await page.close();
});
