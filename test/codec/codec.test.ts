/**
 * Payload encryption (issue 6) and compression (issue 9): the codec itself, the codec
 * server's access rules, and on the real dev server: raw history holds no named user's
 * email, the codec endpoint gives it back, and the search attributes follow the workflow.
 */
import { execFile } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { brotliDecompressSync } from 'node:zlib';
import { promisify } from 'node:util';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import {
  AesGcmCodec,
  COMPRESS_FROM,
  CodecKeyError,
  type CodecKeys,
  ENCODING,
  newKeyList,
  parseKeyFile,
  parseKeyList,
  payloadFromProto,
  payloadToProto,
  toJson,
} from '../../src/codec';
import { startCodecServer } from '../../src/codec/server';
import { need } from '../harness/env';
import { baseline, customer } from '../workflows/fixtures';
import { startStack, type Stack } from '../workflows/stack';
import { SA } from '../../src/client';

const run = promisify(execFile);
const text = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? []).toString('utf8');

/** The previous release's encrypt, copied: JSON of the payload (base64 fields), AAD without a compression marker. */
function oldFormat(keys: CodecKeys, p: Payload): Payload {
  const id = keys.current;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.keys.get(id)!, iv);
  cipher.setAAD(Buffer.from(`binary/encrypted-aes256gcm|${id}`));
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  const plain = Buffer.from(JSON.stringify({ metadata, data: Buffer.from(p.data ?? []).toString('base64') }), 'utf8');
  const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return {
    metadata: { encoding: Buffer.from('binary/encrypted-aes256gcm'), 'encryption-key-id': Buffer.from(id) },
    data: new Uint8Array(data),
  };
}

describe('AesGcmCodec', () => {
  const k1 = parseKeyList(newKeyList('k1'));
  const k2 = parseKeyList(newKeyList('k2'));
  const original = defaultPayloadConverter.toPayload({ email: 'ann@acme.example', n: 1 })!;

  test('round trip; ciphertext carries the key id and no plain text', async () => {
    const codec = new AesGcmCodec(k1);
    const [enc] = await codec.encode([original]);
    expect(text(enc!.metadata!.encoding)).toBe(ENCODING);
    expect(text(enc!.metadata!['encryption-key-id'])).toBe('k1');
    expect(Buffer.from(enc!.data!).includes('ann@acme.example')).toBe(false);
    const [dec] = await codec.decode([enc!]);
    expect(defaultPayloadConverter.fromPayload(dec!)).toEqual({ email: 'ann@acme.example', n: 1 });
    expect(text(dec!.metadata!.encoding)).toBe('json/plain');
  });

  test('rotation: encrypt with the current key, decrypt with any configured key; a missing key is named', async () => {
    const [old] = await new AesGcmCodec(k1).encode([original]);
    const rotated = { current: 'k2', keys: new Map([...k2.keys, ...k1.keys]) };
    const codec = new AesGcmCodec(rotated);
    const [fresh] = await codec.encode([original]);
    expect(text(fresh!.metadata!['encryption-key-id'])).toBe('k2');
    const [a, b] = await codec.decode([old!, fresh!]);
    expect(defaultPayloadConverter.fromPayload(a!)).toEqual(defaultPayloadConverter.fromPayload(b!));
    await expect(new AesGcmCodec(k2).decode([old!])).rejects.toThrow(/key "k1", which is not configured/);
  });

  test('tampering is detected (GCM tag); plain payloads pass through decode', async () => {
    const codec = new AesGcmCodec(k1);
    const [enc] = await codec.encode([original]);
    const data = Buffer.from(enc!.data!);
    data[20] = data[20]! ^ 1;
    await expect(codec.decode([{ ...enc!, data: new Uint8Array(data) }])).rejects.toThrow();
    // The key id is authenticated too: relabelling a payload with another key fails.
    const both = new AesGcmCodec({ current: 'k1', keys: new Map([...k1.keys, ['k2', k1.keys.get('k1')!]]) });
    await expect(
      both.decode([{ ...enc!, metadata: { ...enc!.metadata, 'encryption-key-id': Buffer.from('k2') } }]),
    ).rejects.toThrow();
    expect(await codec.decode([original])).toEqual([original]);
  });

  test('round trip of a large payload: brotli-compressed, far smaller than the raw JSON', async () => {
    const codec = new AesGcmCodec(k1);
    const roles = ['admin', 'member', 'viewer', 'billing'];
    const users = Array.from({ length: 10_000 }, (_, i) => ({
      email: `user${i}@acme.example`,
      name: `User Number ${i}`,
      role: roles[i % roles.length],
    }));
    const big = defaultPayloadConverter.toPayload({ contractId: 'acme-msa', users })!;
    expect(big.data!.length).toBeGreaterThan(500_000);
    const [enc] = await codec.encode([big]);
    expect(text(enc!.metadata!.compression)).toBe('brotli');
    expect(enc!.data!.length).toBeLessThan(big.data!.length * 0.15);
    expect(Buffer.from(enc!.data!).includes('user1@acme.example')).toBe(false);
    const [dec] = await codec.decode([enc!]);
    expect(toJson(dec!)).toEqual(toJson(big));
    expect(defaultPayloadConverter.fromPayload<{ users: unknown[] }>(dec!).users).toHaveLength(10_000);
  });

  test('a tiny payload is not compressed and costs only IV and tag over its protobuf form; smaller than the old format', async () => {
    const tiny = defaultPayloadConverter.toPayload('bob@acme.example')!;
    const inner = payloadToProto(tiny);
    expect(inner.length).toBeLessThan(COMPRESS_FROM);
    const enc = new AesGcmCodec(k1).encrypt(tiny);
    expect(text(enc.metadata!.compression)).toBe('none');
    expect(enc.data!.length).toBe(inner.length + 12 + 16);
    expect(enc.data!.length).toBeLessThan(oldFormat(k1, tiny).data!.length);
    expect(toJson(new AesGcmCodec(k1).decrypt(enc))).toEqual(toJson(tiny));
    // Empty data and metadata values survive too.
    const empty: Payload = {
      metadata: { encoding: Buffer.from('binary/null'), blank: new Uint8Array(0) },
      data: new Uint8Array(0),
    };
    expect(toJson(new AesGcmCodec(k1).decrypt(new AesGcmCodec(k1).encrypt(empty)))).toEqual(toJson(empty));
  });

  test('the plaintext is the protobuf encoding of temporal.api.common.v1.Payload (read and written by the SDK protos)', () => {
    const { Payload: ProtoPayload } = temporal.api.common.v1;
    const p: Payload = {
      metadata: { encoding: Buffer.from('json/plain'), 'x-long': Buffer.alloc(300, 7) },
      data: Buffer.from(JSON.stringify({ s: 'é'.repeat(5000) })),
    };
    const ours = ProtoPayload.decode(payloadToProto(p));
    expect(toJson(ours)).toEqual(toJson(p));
    expect(toJson(payloadFromProto(ProtoPayload.encode(p).finish()))).toEqual(toJson(p));
    // What an outside reader with the key does: GCM with the documented AAD, brotli, protobuf.
    const enc = new AesGcmCodec(k1).encrypt(p);
    const data = Buffer.from(enc.data!);
    const d = createDecipheriv('aes-256-gcm', k1.keys.get('k1')!, data.subarray(0, 12));
    d.setAAD(Buffer.from(`${ENCODING}|k1|brotli`));
    d.setAuthTag(data.subarray(data.length - 16));
    const plain = Buffer.concat([d.update(data.subarray(12, data.length - 16)), d.final()]);
    expect(toJson(ProtoPayload.decode(brotliDecompressSync(plain)))).toEqual(toJson(p));
  });

  test("payloads in the previous release's format (JSON plaintext, no compression marker) still decode, also after rotation", async () => {
    const old = oldFormat(k1, original);
    expect(old.metadata!.compression).toBeUndefined();
    const [dec] = await new AesGcmCodec(k1).decode([old]);
    expect(toJson(dec!)).toEqual(toJson(original));
    const rotated = new AesGcmCodec({ current: 'k2', keys: new Map([...k2.keys, ...k1.keys]) });
    const [fresh] = await rotated.encode([original]);
    const [a, b] = await rotated.decode([old, fresh!]);
    expect(defaultPayloadConverter.fromPayload(a!)).toEqual({ email: 'ann@acme.example', n: 1 });
    expect(defaultPayloadConverter.fromPayload(b!)).toEqual({ email: 'ann@acme.example', n: 1 });
    await expect(new AesGcmCodec(k2).decode([old])).rejects.toThrow(/key "k1", which is not configured/);
  });

  test('the compression marker is authenticated: relabelling, removing or adding it fails; an unknown one is named', () => {
    const codec = new AesGcmCodec(k1);
    const big = codec.encrypt(defaultPayloadConverter.toPayload({ list: 'ann@acme.example '.repeat(200) })!);
    const small = codec.encrypt(original);
    expect(text(big.metadata!.compression)).toBe('brotli');
    expect(text(small.metadata!.compression)).toBe('none');
    const relabel = (p: Payload, marker: string | undefined): Payload => {
      const metadata = { ...p.metadata };
      if (marker === undefined) delete metadata.compression;
      else metadata.compression = Buffer.from(marker);
      return { ...p, metadata };
    };
    expect(() => codec.decrypt(relabel(big, 'none'))).toThrow();
    expect(() => codec.decrypt(relabel(big, undefined))).toThrow();
    expect(() => codec.decrypt(relabel(small, 'brotli'))).toThrow();
    expect(() => codec.decrypt(relabel(small, undefined))).toThrow();
    expect(() => codec.decrypt(relabel(oldFormat(k1, original), 'none'))).toThrow();
    expect(() => codec.decrypt(relabel(big, 'zstd'))).toThrow(/compressed as "zstd", which this release cannot read/);
    // A flipped ciphertext bit in a compressed payload fails the tag before anything is inflated.
    const data = Buffer.from(big.data!);
    data[40] = data[40]! ^ 1;
    expect(() => codec.decrypt({ ...big, data: new Uint8Array(data) })).toThrow();
    expect(toJson(codec.decrypt(big))).toEqual(
      toJson(defaultPayloadConverter.toPayload({ list: 'ann@acme.example '.repeat(200) })!),
    );
  });

  test('key configuration errors say what is wrong', () => {
    expect(() => parseKeyList('k1:c2hvcnQ=')).toThrow(/32 bytes/);
    expect(() => parseKeyList('nokey')).toThrow(CodecKeyError);
    expect(() => parseKeyFile('{"current":"a","keys":{}}', 'f.json')).toThrow(/current key "a"/);
  });
});

describe('codec server', () => {
  const keys = parseKeyList(newKeyList('k1'));
  const token = 'x'.repeat(32);
  const ui = 'http://127.0.0.1:8233';
  let server: Awaited<ReturnType<typeof startCodecServer>>;
  let encoded: ReturnType<typeof toJson>;
  beforeAll(async () => {
    server = await startCodecServer({ keys, token, allowedOrigins: [ui] });
    const [enc] = await new AesGcmCodec(keys).encode([defaultPayloadConverter.toPayload('bob@acme.example')!]);
    encoded = toJson(enc!);
  });
  afterAll(() => server.close());
  const post = (url: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ payloads: [encoded] }),
    });

  test('decodes with the token in the path (the UI) or as a bearer token (tools)', async () => {
    for (const r of [
      await post(`${server.endpoint}/decode`, { Origin: ui, 'X-Namespace': 'default' }),
      await post(`${server.url}/decode`, { Authorization: `Bearer ${token}` }),
    ]) {
      expect(r.status).toBe(200);
      const body = (await r.json()) as { payloads: Array<{ data: string }> };
      expect(Buffer.from(body.payloads[0]!.data, 'base64').toString()).toBe('"bob@acme.example"');
    }
  });

  test('refuses without the token, with a wrong token, and from another origin; CORS only for the UI', async () => {
    expect((await post(`${server.url}/decode`)).status).toBe(401);
    expect((await post(`${server.url}/${'y'.repeat(32)}/decode`)).status).toBe(401);
    expect((await post(`${server.endpoint}/decode`, { Origin: 'http://evil.example' })).status).toBe(403);
    const pre = await fetch(`${server.endpoint}/decode`, {
      method: 'OPTIONS',
      headers: {
        Origin: ui,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-namespace',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ui);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/i);
  });
});

describe('on the dev server', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('codec');
  });
  afterAll(() => stack?.stop());

  test('raw history holds no named user email; through the codec endpoint it does; search attributes follow the workflow', async () => {
    const c = customer('codec');
    const a = baseline(c, [
      ['erin', 'member'],
      ['frank', 'viewer'],
    ]);
    await stack.client.submitAmendment(a);
    const v = await stack.client.waitForResult(a.amendmentId);
    expect(v.status).toBe('completed');

    const cli = need('AMENDCTL_TEST_TEMPORAL_CLI');
    const base = [
      'workflow',
      'show',
      '--address',
      need('AMENDCTL_TEST_TEMPORAL_ADDRESS'),
      '--namespace',
      'default',
      '--workflow-id',
      `amendment-${a.amendmentId}`,
      '--output',
      'json',
    ];
    const raw = (await run(cli, base, { maxBuffer: 64 << 20 })).stdout;
    expect(raw).toContain(Buffer.from(ENCODING).toString('base64'));
    // Neither in the JSON text nor inside any base64 field (payload data, metadata).
    const decodedFields = [...raw.matchAll(/"([A-Za-z0-9+/]{16,}={0,2})"/g)]
      .map((m) => Buffer.from(m[1]!, 'base64').toString('latin1'))
      .join('\n');
    for (const who of ['erin', 'frank']) {
      expect(raw).not.toContain(c.email(who));
      expect(decodedFields).not.toContain(c.email(who));
    }
    expect(raw).not.toContain(c.domain);

    // The same history through the codec server (what the UI sees): the emails are there.
    const decoded = (
      await run(
        cli,
        [
          ...base,
          '--codec-endpoint',
          need('AMENDCTL_TEST_CODEC_URL'),
          '--codec-auth',
          `Bearer ${need('AMENDCTL_TEST_CODEC_TOKEN')}`,
        ],
        { maxBuffer: 64 << 20 },
      )
    ).stdout;
    const decodedText =
      decoded +
      [...decoded.matchAll(/"([A-Za-z0-9+/]{16,}={0,2})"/g)]
        .map((m) => Buffer.from(m[1]!, 'base64').toString('latin1'))
        .join('\n');
    expect(decodedText).toContain(c.email('erin'));

    // Search attributes: listed by ContractId, the status is the final one.
    const found = [];
    for await (const w of stack.client.client.workflow.list({
      query: `ContractId = '${c.contractId}' AND WorkflowType = 'amendmentV4'`,
    }))
      found.push(w);
    expect(found).toHaveLength(1);
    expect(found[0]!.typedSearchAttributes.get(SA.AmendmentStatus)).toBe('completed');
    expect(found[0]!.typedSearchAttributes.get(SA.CustomerId)).toBe(c.id);
    expect(found[0]!.typedSearchAttributes.get(SA.AmendmentId)).toBe(a.amendmentId);
    const desc = await stack.client.handle(a.amendmentId).describe();
    expect(await desc.staticSummary()).toContain(a.amendmentId);
    expect(desc.memo?.rulesetHash).toBe(v.rulesetHash);
  });

  test('AmendmentStatus follows the workflow: pending_approval while it waits, then rejected', async () => {
    const c = customer('codecsa');
    const a = baseline(c, [['gina', 'admin']], { submittedBy: 'sam' });
    await stack.client.submitAmendment(a);
    const statusOf = async (): Promise<string | undefined> => {
      for await (const w of stack.client.client.workflow.list({
        query: `ContractId = '${c.contractId}' AND AmendmentId = '${a.amendmentId}'`,
      }))
        return w.typedSearchAttributes.get(SA.AmendmentStatus);
      return undefined;
    };
    const until = async (want: string): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while ((await statusOf()) !== want) {
        if (Date.now() > deadline) throw new Error(`AmendmentStatus is ${await statusOf()}, expected ${want}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    await until('pending_approval');
    await stack.client.reject(a.amendmentId, { by: 'dana', reason: 'not this quarter' });
    await until('rejected');
  });
});
