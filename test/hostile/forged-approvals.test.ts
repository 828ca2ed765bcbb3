/**
 * Forged approvals (issue 12): on the real dev server, a worker with the reference targets and an
 * approval policy of two of dana, erin and sam (the submitter), an amendment that grants admin
 * waits for approval. Each variant below claims an allowed approver but does not prove it (no
 * token, a wrong key, another amendment's or plan's token, expired, replayed, a tampered comment,
 * a token for reject used to approve, ...), sent as a raw signal, as `temporal workflow signal`
 * would. None may count; each must be recorded as ignored with its reason. Then two proven
 * approvals complete the amendment, and its audit record says who, how proven and when.
 */
import { createPrivateKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { stringify } from 'yaml';
import {
  ApprovalSigner as Signer,
  type ApprovalSigner,
  newSigningKey,
  type ProofMethod,
  readSigningKeyFile,
  trustEntry,
} from '../../src/approvals/token';
import { recordFromView } from '../../src/audit/record';
import { toMarkdown } from '../../src/audit/format';
import { need } from '../harness/env';
import { harnessSigner } from '../harness/approvals';
import { until } from '../harness/until';
import { baseline, customer } from '../workflows/fixtures';
import { startStack, type Stack } from '../workflows/stack';

const dir = mkdtempSync(join(tmpdir(), 'amendctl-forged-'));
let stack: Stack;
/** Keys the worker trusts besides the harness's: erin's own, and one that vouches only for OIDC sign-ins. */
const erinKey = newSigningKey('erin-laptop', 'erin');
const oidcOnly = newSigningKey('oidc-only');
/** Not trusted by the worker: an attacker's key, once under an unknown id and once under the harness key's id. */
const rogue = newSigningKey('rogue');
const rogueAsHarness = newSigningKey('test-harness');

beforeAll(async () => {
  const approvals = join(dir, 'approvals.yaml');
  writeFileSync(approvals, stringify({ approvers: ['dana', 'erin', 'sam'], required: 2, separationOfDuties: true }));
  const trust = join(dir, 'trust.yaml');
  const harness = trustEntry(readSigningKeyFile(need('AMENDCTL_APPROVER_KEY')));
  writeFileSync(
    trust,
    stringify({ keys: [harness, erinKey.trust, { ...oidcOnly.trust, methods: ['oidc'] }], maxLifetimeSeconds: 3600 }),
  );
  stack = await startStack('forged', { approvalsFile: approvals, env: { AMENDCTL_APPROVAL_KEYS: trust } });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const b64 = (x: Buffer | string): string => Buffer.from(x).toString('base64url');
/** A token with any claims, signed by any private key (PEM): what an attacker holding a key could make. */
function craft(claims: Record<string, unknown>, privateKeyPem: string): string {
  const body = `amap1.${b64(JSON.stringify(claims))}`;
  return `${body}.${b64(sign(null, Buffer.from(body), createPrivateKey(privateKeyPem)))}`;
}
const claimsOf = (token: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
const withClaims = (token: string, change: Record<string, unknown>): string => {
  const [p, , s] = token.split('.');
  return `${p}.${b64(JSON.stringify({ ...claimsOf(token), ...change }))}.${s}`;
};

interface Ctx {
  id: string;
  plan: string;
  other: { id: string; plan: string };
  h: WorkflowHandle;
}
type Signal = { name: 'approve' | 'reject'; payload: Record<string, unknown> };
interface Variant {
  name: string;
  make(ctx: Ctx): Signal;
  why: RegExp;
}

const h = harnessSigner;
const tok = (
  s: ApprovalSigner,
  ctx: { id: string; plan: string },
  o: {
    decision?: 'approve' | 'reject';
    by?: string;
    text?: string;
    via?: ProofMethod;
    seconds?: number;
    nowMs?: number;
  } = {},
): string =>
  s.sign({
    amendmentId: ctx.id,
    planHash: ctx.plan,
    decision: o.decision ?? 'approve',
    by: o.by ?? 'dana',
    via: o.via ?? 'service',
    ...(o.text !== undefined ? { text: o.text } : {}),
    ...(o.seconds ? { seconds: o.seconds } : {}),
    ...(o.nowMs ? { nowMs: o.nowMs } : {}),
  }).token;
const approve = (payload: Record<string, unknown>): Signal => ({ name: 'approve', payload });
const reject = (payload: Record<string, unknown>): Signal => ({ name: 'reject', payload });
const HOUR = 3_600_000;

/** Each forgery once as an approval; those that can also forge a rejection, once more as one. */
const FORGERIES: Array<{
  name: string;
  why: RegExp;
  proof: (ctx: Ctx, decision: 'approve' | 'reject', text: string | undefined) => string | undefined;
  by?: string;
}> = [
  { name: 'no token', why: /^no proof of identity/, proof: () => undefined },
  { name: 'an empty token', why: /^no proof of identity/, proof: () => '' },
  { name: 'a word, not a token', why: /^the proof is not an amap1 approval token$/, proof: () => 'approved' },
  {
    name: 'another format prefix',
    why: /^the proof is not an amap1 approval token$/,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: t }).replace(/^amap1/, 'amap2'),
  },
  {
    name: 'two parts only',
    why: /^the proof is not an amap1 approval token$/,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: t }).split('.').slice(0, 2).join('.'),
  },
  {
    name: 'claims that are not JSON',
    why: /^the proof's claims are not JSON$/,
    proof: (c, d, t) => {
      const [p, , s] = tok(h(), c, { decision: d, text: t }).split('.');
      return `${p}.${b64('{not json')}.${s}`;
    },
  },
  {
    name: 'claims missing the plan hash',
    why: /^the proof's claims are malformed$/,
    proof: (c, d, t) => {
      const tk = tok(h(), c, { decision: d, text: t });
      const cl = claimsOf(tk);
      delete cl.planHash;
      return craft(cl, rogueAsHarness.file.privateKey);
    },
  },
  {
    name: 'an unknown signing key',
    why: /^the proof is signed with key "rogue", which this worker does not trust$/,
    proof: (c, d, t) => tok(new Signer(rogue.file), c, { decision: d, text: t }),
  },
  {
    name: "a rogue key under the trusted key's id",
    why: /^the proof's signature does not verify with key "test-harness"$/,
    proof: (c, d, t) => tok(new Signer(rogueAsHarness.file), c, { decision: d, text: t }),
  },
  {
    name: 'a truncated signature',
    why: /^the proof's signature does not verify/,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: t }).slice(0, -6),
  },
  {
    name: "another token's signature",
    why: /^the proof's signature does not verify/,
    proof: (c, d, t) => {
      const a = tok(h(), c, { decision: d, text: t }).split('.');
      const b = tok(h(), c, { decision: d, text: t, by: 'erin' }).split('.');
      return `${a[0]}.${a[1]}.${b[2]}`;
    },
  },
  {
    name: 'claims changed after signing (another approver)',
    why: /^the proof's signature does not verify/,
    proof: (c, d, t) => withClaims(tok(h(), c, { decision: d, text: t, by: 'mallory' }), { sub: 'dana' }),
  },
  {
    name: 'claims changed after signing (a longer life)',
    why: /^the proof's signature does not verify/,
    proof: (c, d, t) => {
      const tk = tok(h(), c, { decision: d, text: t, nowMs: Date.now() - 2 * HOUR, seconds: 60 });
      return withClaims(tk, { exp: Math.floor(Date.now() / 1000) + 600 });
    },
  },
  {
    name: "another amendment's token",
    why: /^the proof is for amendment .+, not this one$/,
    proof: (c, d, t) => tok(h(), c.other, { decision: d, text: t }),
  },
  {
    name: "another plan's hash",
    why: /^the proof is for another plan of this amendment/,
    proof: (c, d, t) => tok(h(), { id: c.id, plan: '0'.repeat(64) }, { decision: d, text: t }),
  },
  {
    name: 'expired an hour ago',
    why: /^the proof expired at /,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: t, nowMs: Date.now() - 2 * HOUR, seconds: 600 }),
  },
  {
    name: 'issued an hour from now',
    why: /^the proof is issued in the future/,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: t, nowMs: Date.now() + HOUR }),
  },
  {
    name: 'a lifetime of two days',
    why: /^the proof claims a lifetime over 3600 s$/,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: t, seconds: 48 * 3600 }),
  },
  {
    name: "erin's token sent as dana",
    why: /^the proof is erin's, not from dana$/,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: t, by: 'erin' }),
  },
  {
    name: "erin's own key signing for dana",
    why: /^key "erin-laptop" may not sign for dana$/,
    proof: (c, d, t) =>
      craft({ ...claimsOf(tok(h(), c, { decision: d, text: t })), kid: 'erin-laptop' }, erinKey.file.privateKey),
  },
  {
    name: 'an OIDC-only key vouching for a password sign-in',
    why: /^key "oidc-only" may not sign approvals proven by password$/,
    proof: (c, d, t) => tok(new Signer(oidcOnly.file), c, { decision: d, text: t, via: 'password' }),
  },
  {
    name: 'the token of another comment or reason',
    why: /^the (comment|reason) is not the one the proof was signed for$/,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: `${t ?? ''} (edited)` }),
  },
  {
    name: 'a token for the other decision',
    why: /^the proof is for (a rejection|an approval), not (an approval|a rejection)$/,
    proof: (c, d, t) => tok(h(), c, { decision: d === 'approve' ? 'reject' : 'approve', text: t }),
  },
  {
    name: 'claims with an extra field (signed)',
    why: /^the proof's claims are malformed$/,
    proof: (c, d, t) =>
      craft(
        { ...claimsOf(tok(h(), c, { decision: d, text: t })), admin: true },
        readSigningKeyFile(need('AMENDCTL_APPROVER_KEY')).privateKey,
      ),
  },
  {
    name: 'a decision "admin" (signed)',
    why: /^the proof's claims are malformed$/,
    proof: (c, d, t) =>
      craft(
        { ...claimsOf(tok(h(), c, { decision: d, text: t })), decision: 'admin' },
        readSigningKeyFile(need('AMENDCTL_APPROVER_KEY')).privateKey,
      ),
  },
  {
    name: 'an RSA signature',
    why: /^the proof's signature does not verify/,
    proof: (c, d, t) => {
      const [p, cl] = tok(h(), c, { decision: d, text: t }).split('.');
      const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
      return `${p}.${cl}.${b64(sign('sha256', Buffer.from(`${p}.${cl}`), rsa))}`;
    },
  },
  {
    name: 'a "Dana" token for dana',
    why: /^the proof is Dana's, not from dana$/,
    proof: (c, d, t) => tok(h(), c, { decision: d, text: t, by: 'Dana' }),
  },
  {
    name: 'a token with an id of its own but an expiry before its issue',
    why: /^the proof expires before it was issued$/,
    proof: (c, d, t) =>
      craft(
        {
          ...claimsOf(tok(h(), c, { decision: d, text: t })),
          exp: Math.floor(Date.now() / 1000) - 10,
          iat: Math.floor(Date.now() / 1000),
          jti: randomUUID(),
        },
        readSigningKeyFile(need('AMENDCTL_APPROVER_KEY')).privateKey,
      ),
  },
];

const COMMENT = 'checked against the order form';
const REASON = 'not in the signed contract';
const VARIANTS: Variant[] = FORGERIES.flatMap((f) => [
  {
    name: `approve: ${f.name}`,
    why: f.why,
    make: (c: Ctx) => approve({ by: f.by ?? 'dana', comment: COMMENT, ...proofField(f.proof(c, 'approve', COMMENT)) }),
  },
  {
    name: `reject: ${f.name}`,
    why: f.why,
    make: (c: Ctx) => reject({ by: f.by ?? 'dana', reason: REASON, ...proofField(f.proof(c, 'reject', REASON)) }),
  },
]);
function proofField(p: string | undefined): { proof?: string } {
  return p === undefined ? {} : { proof: p };
}

test(`${VARIANTS.length} forged decisions claiming an allowed approver: none counts, each is recorded as ignored with its reason`, async () => {
  expect(VARIANTS.length).toBeGreaterThanOrEqual(50);
  const c = customer('forged');
  const a = baseline(c, [['alice', 'admin']], { submittedBy: 'sam' });
  const other = baseline(customer('forged-other'), [['bob', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(a);
  await stack.client.submitAmendment(other);
  const pending = (id: string) =>
    until(
      `${id} pending approval`,
      async () => {
        const v = await stack.client.getStatus(id);
        return v.status === 'pending_approval' ? v : undefined;
      },
      60_000,
    );
  const [va, vo] = await Promise.all([pending(a.amendmentId), pending(other.amendmentId)]);
  const handle = stack.client.client.workflow.getHandle(`amendment-${a.amendmentId}`);
  const ctx: Ctx = {
    id: a.amendmentId,
    plan: va.planHash!,
    other: { id: other.amendmentId, plan: vo.planHash! },
    h: handle,
  };

  const sent: Array<{ variant: Variant; signal: Signal }> = [];
  // One at a time, each recorded before the next: a burst would also meet the bound on decisions
  // waiting to be verified (20), which is another test's subject.
  for (const variant of VARIANTS) {
    const signal = variant.make(ctx);
    sent.push({ variant, signal });
    await handle.signal(signal.name, signal.payload);
    await until(
      `${variant.name} recorded`,
      async () =>
        (await stack.client.getStatus(a.amendmentId)).approval!.ignored.length >= sent.length ? true : undefined,
      30_000,
      50,
    );
  }
  const v = await until(
    'every forged decision recorded',
    async () => {
      const x = await stack.client.getStatus(a.amendmentId);
      return (x.approval?.ignored.length ?? 0) >= VARIANTS.length ? x : undefined;
    },
    120_000,
  );
  expect(v.status).toBe('pending_approval');
  expect(v.approval!.approvals).toEqual([]);
  expect(v.approval!.rejection).toBeUndefined();
  // In the order sent: each recorded with the reason its forgery deserves.
  const rows = sent.map(({ variant }, i) => ({
    variant: variant.name,
    why: v.approval!.ignored[i]?.why ?? '(not recorded)',
  }));
  for (const [i, r] of rows.entries())
    expect({ variant: r.variant, matches: VARIANTS[i]!.why.test(r.why), why: r.why }).toEqual({
      variant: r.variant,
      matches: true,
      why: r.why,
    });
  expect(v.approval!.ignored.every((x) => x.by === 'dana')).toBe(true);
  expect(JSON.stringify(v)).not.toContain('amap1.'); // no token is kept in the view
}, 240_000);

test('a proven approval counts once: replaying its token is ignored; a second approver completes it, and the audit shows who, how proven and when', async () => {
  const c = customer('proven');
  const a = baseline(c, [['alice', 'admin']], { submittedBy: 'sam' });
  await stack.client.submitAmendment(a);
  const v0 = await until(
    'pending approval',
    async () => {
      const v = await stack.client.getStatus(a.amendmentId);
      return v.status === 'pending_approval' ? v : undefined;
    },
    60_000,
  );
  const handle = stack.client.client.workflow.getHandle(`amendment-${a.amendmentId}`);
  const ctx = { id: a.amendmentId, plan: v0.planHash! };
  const dana = { by: 'dana', comment: 'ok', proof: tok(h(), ctx, { text: 'ok', via: 'password' }) };
  await handle.signal('approve', dana);
  await handle.signal('approve', dana); // the same token again
  const v1 = await until('both recorded', async () => {
    const v = await stack.client.getStatus(a.amendmentId);
    return v.approval!.approvals.length + v.approval!.ignored.length >= 2 ? v : undefined;
  });
  expect(v1.approval!.approvals.map((x) => x.by)).toEqual(['dana']);
  expect(v1.approval!.ignored.map((x) => x.why)).toEqual(['this proof was already used (a token counts once)']);
  expect(v1.status).toBe('pending_approval');
  // erin with her own key.
  await handle.signal('approve', {
    by: 'erin',
    proof: tok(new Signer(erinKey.file), ctx, { by: 'erin', via: 'personal-key' }),
  });
  const v = await stack.client.waitForResult(a.amendmentId);
  expect(v.status).toBe('completed');
  expect(v.approval!.approvals).toEqual([
    expect.objectContaining({
      by: 'dana',
      comment: 'ok',
      proof: expect.objectContaining({
        via: 'password',
        keyId: 'test-harness',
        verifiedAt: expect.any(String),
        issuedAt: expect.any(String),
      }),
    }),
    expect.objectContaining({
      by: 'erin',
      proof: expect.objectContaining({ via: 'personal-key', keyId: 'erin-laptop' }),
    }),
  ]);
  // The audit record (what the durable log keeps, from the final view) and its report.
  const md = toMarkdown(recordFromView(v));
  expect(md).toMatch(
    /\| dana \(proven by password \(key test-harness\), verified \d{4}-\d\d-\d\dT[^)]+\) \| approved \| yes \|/,
  );
  expect(md).toMatch(/\| erin \(proven by personal-key \(key erin-laptop\), verified [^)]+\) \| approved \| yes \|/);
  expect(md).toContain('this proof was already used');
}, 180_000);
