/**
 * The history-based audit builder on captured histories (test/audit/fixtures: real runs of
 * test/audit/audit.test.ts, captured with AMENDCTL_CAPTURE_AUDIT_FIXTURE=1 through the codec
 * server, so the payloads are plain and no key is stored). A pure function: no server.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { formatRecords, toCsv, toMarkdown } from '../../src/audit/format';
import { type History, recordFromHistory } from '../../src/audit/history';

/**
 * `temporal workflow show --output json` (proto3 JSON) to the shape the client's fetchHistory
 * returns: payload bytes from base64, timestamps as { seconds, nanos }. (The SDK's historyFromJSON
 * does this with protobufjs, whose type registry does not survive Jest's module isolation.)
 */
function fromCliJson(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => fromCliJson(v));
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && ('data' in o || Object.keys(o).length === 1)) {
      const metadata = Object.fromEntries(
        Object.entries(o.metadata as Record<string, string>).map(([k, v]) => [
          k,
          new Uint8Array(Buffer.from(v, 'base64')),
        ]),
      );
      return { metadata, data: new Uint8Array(Buffer.from(String(o.data ?? ''), 'base64')) };
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, fromCliJson(v, k)]));
  }
  if (key === 'eventTime' && typeof value === 'string') {
    const ms = Date.parse(value);
    return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
  }
  return value;
}

const load = (name: string) =>
  fromCliJson(JSON.parse(readFileSync(join(__dirname, 'fixtures', `history-${name}.json`), 'utf8'))) as History;
const plain = async (p: Payload | null | undefined) => (p ? defaultPayloadConverter.fromPayload(p) : undefined);

test('approval: the ignored self-approval and the counted one, in order, with arrival times from history', async () => {
  const r = await recordFromHistory(load('approved'), plain);
  expect(r).toMatchObject({ source: 'history', status: 'completed', sequence: 1, submittedBy: 'sam' });
  expect(r.summary).toMatch(/^Amendment .+-001 of contract .+-msa, sequence 1$/);
  expect(r.approval.required).toBe(true);
  expect(r.approval.reasons.map((x) => x.ruleId)).toContain('admin-grant-needs-approval');
  expect(r.approval.decisions.map((d) => [d.by, d.accepted])).toEqual([
    ['sam', false],
    ['dana', true],
  ]);
  expect(r.approval.decisions[0]!.why).toMatch(/separation of duties/);
  expect(r.rulesetHash).toMatch(/^[0-9a-f]{64}$/);
  expect(r.operations.length).toBeGreaterThan(0);
  expect(r.operations.every((o) => o.outcome === 'applied' && o.attempts === 1 && o.scheduledAt && o.finishedAt)).toBe(
    true,
  );
});

test('rolled_back: the failed operation with its error and attempts, every applied one compensated', async () => {
  const r = await recordFromHistory(load('failed'), plain);
  expect(r.status).toBe('rolled_back');
  const failed = r.operations.filter((o) => o.outcome === 'failed');
  expect(failed).toHaveLength(1);
  expect(failed[0]!.error?.message).toMatch(/superuser/);
  expect(failed[0]!.attempts).toBeGreaterThanOrEqual(1);
  const compensated = r.operations.filter((o) => o.compensation);
  expect(compensated.length).toBeGreaterThan(0);
  expect(
    compensated.every(
      (o) => o.outcome === 'compensated' && ['compensated', 'unchanged'].includes(o.compensation!.outcome),
    ),
  ).toBe(true);
  expect(r.operations.filter((o) => o.outcome === 'applied')).toEqual([]);
});

test('the three formats of a reference-like amendment', async () => {
  const r = await recordFromHistory(load('added'), plain);
  const md = toMarkdown(r);
  expect(md).toMatch(/^# Audit record: amendment .+-002$/m);
  expect(md).toMatch(/- added namedUsers\[dave@/);
  expect(md).toMatch(/- added modules\[billing\] = "billing"|- added modules\[billing\]/);
  expect(md).toContain('Not required: the plan grants no admin role');
  expect(md).toMatch(/\| 1 \| \w+ \| .+dave@.+ \| `[^`]+` \| done \| 1 \| \d{4}-/);
  expect(md).toContain('None: nothing had to be compensated.');
  const csv = toCsv([r]).split('\n');
  expect(csv.filter((l) => l.split(',')[4] === 'operation')).toHaveLength(r.operations.length);
  expect(csv.filter((l) => l.split(',')[4] === 'change')).toHaveLength(2);
  expect(JSON.parse(formatRecords([r], 'json', true))).toEqual(JSON.parse(JSON.stringify(r)));
});

test('a history cut short (still waiting for approval) still gives a record: status from the last search attribute upsert', async () => {
  const h = load('approved');
  const firstSignal = h.events!.findIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'approve');
  const r = await recordFromHistory({ ...h, events: h.events!.slice(0, firstSignal) }, plain);
  expect(r.status).toBe('pending_approval');
  expect(r.finishedAt).toBeUndefined();
  expect(r.approval.decisions).toEqual([]);
  expect(r.operations.length).toBeGreaterThan(0);
  expect(r.operations.every((o) => o.outcome === 'pending')).toBe(true);
  // With the first signal received but not judged yet, it is listed as such.
  const r2 = await recordFromHistory({ ...h, events: h.events!.slice(0, firstSignal + 1) }, plain);
  expect(r2.approval.decisions).toEqual([
    expect.objectContaining({ by: 'sam', accepted: false, why: expect.stringMatching(/not yet judged/) }),
  ]);
});
