/**
 * No credential in any workflow history: after real amendments on the reference targets,
 * every history on the dev server is read (raw, and with each payload decoded by the
 * client's data converter) and searched for the configured secrets.
 */
import { need } from '../harness/env';
import { baseline, changes, customer } from './fixtures';
import { startStack, type Stack } from './stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack('secrets');
});
afterAll(async () => {
  await stack?.stop();
});

test('the PostgreSQL password and the SCIM bearer token appear in no history', async () => {
  const c = customer('secrets');
  const a = baseline(c, [
    ['bob', 'member'],
    ['carol', 'viewer'],
  ]);
  await stack.client.submitAmendment(a);
  expect((await stack.client.waitForResult(a.amendmentId)).status).toBe('completed');
  const b = changes(c, 2, [{ op: 'set', path: 'status', value: 'suspended' }]);
  await stack.client.submitAmendment(b);
  expect((await stack.client.waitForResult(b.amendmentId)).status).toBe('completed');

  const secrets = [need('AMENDCTL_TEST_PG_PASSWORD'), need('AMENDCTL_TEST_SCIM_TOKEN')];
  const converter = stack.client.client.options.loadedDataConverter;
  let histories = 0;
  let payloads = 0;
  for await (const wf of stack.client.client.workflow.list({ query: `ContractId = '${c.contractId}'` })) {
    for (const id of [wf.workflowId, `contract-${c.contractId}`]) {
      const history = await stack.client.client.workflow.getHandle(id).fetchHistory();
      histories++;
      const raw = JSON.stringify(history);
      for (const s of secrets) expect(raw).not.toContain(s);
      // Decode every payload (codec, then JSON) and search the plain text too.
      const found: Array<{ metadata?: Record<string, Uint8Array> | null; data?: Uint8Array | null }> = [];
      const walk = (v: unknown): void => {
        if (!v || typeof v !== 'object') return;
        if ('data' in (v as object) && 'metadata' in (v as object)) found.push(v as (typeof found)[number]);
        for (const x of Object.values(v as object)) walk(x);
      };
      walk(history);
      const decoded = await Promise.all(
        found.map(async (p) => {
          let out = [p];
          for (const codec of [...converter.payloadCodecs].reverse()) out = await codec.decode(out as never);
          return Buffer.from(out[0]?.data ?? new Uint8Array()).toString('utf8');
        }),
      );
      payloads += decoded.length;
      for (const text of decoded) for (const s of secrets) expect(text).not.toContain(s);
    }
  }
  expect(histories).toBeGreaterThanOrEqual(4);
  expect(payloads).toBeGreaterThan(10);
});
