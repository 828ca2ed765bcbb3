/**
 * Payload encryption for everything amendctl puts into Temporal: AES-256-GCM, one random
 * 96-bit IV per payload, the key id in the payload's metadata so keys can rotate
 * (encrypt with the current key, decrypt with any key still configured). Payloads are
 * compressed before they are encrypted (ciphertext does not compress).
 *
 * Keys live only in the environment of the processes that encode or decode (workers,
 * clients, the codec server), never in workflow history:
 *   AMENDCTL_CODEC_KEYS      "id:base64key[,id:base64key...]"; the FIRST is the current key.
 *   AMENDCTL_CODEC_KEY_FILE  a JSON file { "current": "id", "keys": { "id": "base64key" } }.
 *   otherwise                the dev key file .data/codec-keys.json, if it exists (`amendctl dev`
 *                            creates it on its first start, mode 0600, and reuses it).
 * With none of these a worker or client refuses to start: production must set a key.
 *
 * The encrypted payload: metadata { encoding: ENCODING, encryption-key-id: id,
 * compression: "brotli" | "none" }, data IV (12) || ciphertext || GCM tag (16). The AAD is
 * `${ENCODING}|${id}|${compression}`, so neither the key id nor the compression marker can be
 * changed without failing authentication. The plaintext is the original payload in the
 * protobuf wire encoding of temporal.api.common.v1.Payload (metadata = 1, data = 2),
 * brotli-compressed unless the marker says "none".
 * - Protobuf, not JSON: the JSON form carries the bytes as base64 (a third larger, and worse to
 *   compress); protobuf is compact and a standard any Temporal tool can read. It is written
 *   and read here by hand (about forty lines) rather than with @temporalio/proto: that is not
 *   a dependency of ours, and loading its generated root costs ~200 ms in every process.
 * - Brotli quality 5: on a 10,000-user list (~870 KB of JSON) it gives 8-11% of the raw size
 *   in ~10 ms, where deflate level 6 gives 12-14% in the same time (level 9 ~13% in 25 ms);
 *   on high-entropy data the two are alike. Higher brotli qualities cost much more CPU.
 * - Payloads under COMPRESS_FROM bytes, or that do not shrink, are stored with "none".
 * The previous release wrote payloads without the compression entry: those carry the JSON
 * form of the payload (see toJson), AAD `${ENCODING}|${id}`, and still decrypt.
 *
 * Codecs run outside the workflow sandbox (in the worker and the client), so workflow code
 * is unaffected. Payloads without our encoding (written before encryption was enabled)
 * pass through decode unchanged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, constants as zlib } from 'node:zlib';
import { defaultPayloadConverter, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';

export const ENCODING = 'binary/encrypted-aes256gcm';
export const KEY_ID_METADATA = 'encryption-key-id';
/** The compression marker: present on every payload this release writes (absent: the old format). */
export const COMPRESSION_METADATA = 'compression';
export type Compression = 'brotli' | 'none';
const COMPRESSIONS: readonly string[] = ['brotli', 'none'] satisfies Compression[];
/** Smaller serialised payloads are not compressed (brotli would add a few bytes). */
export const COMPRESS_FROM = 128;
const BROTLI_QUALITY = 5;
/** The largest serialised payload encrypt writes and decrypt inflates (a decompression bound). */
export const MAX_PLAINTEXT = 64 * 1024 * 1024;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface CodecKeys {
  /** The key id new payloads are encrypted with. */
  current: string;
  /** Every key that may decrypt (the current one included). */
  keys: Map<string, Buffer>;
}

export class CodecKeyError extends Error {
  override readonly name = 'CodecKeyError';
}

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

function keyFrom(id: string, b64: string, where: string): [string, Buffer] {
  if (!KEY_ID.test(id)) throw new CodecKeyError(`${where}: key id "${id}" must match ${KEY_ID.source}`);
  const key = Buffer.from(b64.trim(), 'base64');
  if (key.length !== 32) throw new CodecKeyError(`${where}: key "${id}" must be 32 bytes (base64), got ${key.length}`);
  return [id, key];
}

/** "id:base64[,id:base64]": the first is current. */
export function parseKeyList(text: string, where = 'AMENDCTL_CODEC_KEYS'): CodecKeys {
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const i = entry.indexOf(':');
      if (i <= 0) throw new CodecKeyError(`${where}: expected "id:base64key", got an entry without an id`);
      return keyFrom(entry.slice(0, i), entry.slice(i + 1), where);
    });
  if (entries.length === 0) throw new CodecKeyError(`${where}: no keys`);
  return { current: entries[0]![0], keys: new Map(entries) };
}

export function parseKeyFile(text: string, file: string): CodecKeys {
  let raw: { current?: unknown; keys?: unknown };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch (err) {
    throw new CodecKeyError(`${file}: not JSON (${(err as Error).message})`);
  }
  if (typeof raw.current !== 'string' || !raw.keys || typeof raw.keys !== 'object')
    throw new CodecKeyError(`${file}: expected { "current": "id", "keys": { "id": "base64key" } }`);
  const keys = new Map(
    Object.entries(raw.keys as Record<string, unknown>).map(([id, v]) => keyFrom(id, String(v), file)),
  );
  if (!keys.has(raw.current))
    throw new CodecKeyError(`${file}: the current key "${raw.current}" is not among the keys`);
  return { current: raw.current, keys };
}

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
export const DEV_KEY_FILE = resolve(PROJECT_ROOT, '.data', 'codec-keys.json');

/** The keys from the environment (see the module comment), or a CodecKeyError saying what to set. */
export function loadCodecKeys(env: NodeJS.ProcessEnv = process.env): CodecKeys {
  if (env.AMENDCTL_CODEC_KEYS) return parseKeyList(env.AMENDCTL_CODEC_KEYS);
  const file = env.AMENDCTL_CODEC_KEY_FILE || (existsSync(DEV_KEY_FILE) ? DEV_KEY_FILE : undefined);
  if (file) return parseKeyFile(readFileSync(file, 'utf8'), file);
  throw new CodecKeyError(
    'no payload encryption key: set AMENDCTL_CODEC_KEYS ("id:base64-32-bytes", first = current) or AMENDCTL_CODEC_KEY_FILE; ' +
      '`amendctl dev` creates a local key in .data/codec-keys.json on its first start',
  );
}

/** The dev key file: created once (random key, 0600), then reused so old histories stay readable. */
export function ensureDevKeyFile(file = DEV_KEY_FILE): string {
  return ensureSecretFile(file, () => {
    const id = `dev-${new Date().toISOString().slice(0, 10)}`;
    return JSON.stringify({ current: id, keys: { [id]: randomBytes(32).toString('base64') } }, null, 2);
  });
}

/** A secret file of the embedded default, made once (`make()`'s text) and kept; readable by its owner only. Returns its path. */
export function ensureSecretFile(file: string, make: () => string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${make()}\n`, { mode: 0o600, flag: 'wx' });
  }
  chmodSync(file, 0o600);
  return file;
}

/** A fresh random key in AMENDCTL_CODEC_KEYS form (tests, `amendctl codec-server --new-key`). */
export function newKeyList(id = `k-${randomBytes(3).toString('hex')}`): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

/** The additional authenticated data: the old format (no compression marker) bound only the key id. */
function aadFor(id: string, compression: string | undefined): Buffer {
  return Buffer.from(compression === undefined ? `${ENCODING}|${id}` : `${ENCODING}|${id}|${compression}`);
}

/** See the module comment for the format. */
export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeys) {
    if (!keys.keys.has(keys.current)) throw new CodecKeyError(`the current key "${keys.current}" is not configured`);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.decrypt(p));
  }

  encrypt(p: Payload): Payload {
    const inner = payloadToProto(p);
    if (inner.length > MAX_PLAINTEXT)
      throw new CodecKeyError(`payload too large to encode: ${inner.length} bytes (at most ${MAX_PLAINTEXT})`);
    let plain = inner;
    let compression: Compression = 'none';
    if (inner.length >= COMPRESS_FROM) {
      const packed = brotliCompressSync(inner, {
        params: { [zlib.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY, [zlib.BROTLI_PARAM_SIZE_HINT]: inner.length },
      });
      if (packed.length < inner.length) [plain, compression] = [packed, 'brotli'];
    }
    const id = this.keys.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.keys.get(id)!, iv);
    cipher.setAAD(aadFor(id, compression));
    const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { encoding: utf8(ENCODING), [KEY_ID_METADATA]: utf8(id), [COMPRESSION_METADATA]: utf8(compression) },
      data: new Uint8Array(data),
    };
  }

  decrypt(p: Payload): Payload {
    if (!p.metadata || Buffer.from(p.metadata.encoding ?? []).toString('utf8') !== ENCODING) return p;
    const id = Buffer.from(p.metadata[KEY_ID_METADATA] ?? []).toString('utf8');
    const marker = p.metadata[COMPRESSION_METADATA];
    const compression = marker == null ? undefined : Buffer.from(marker).toString('utf8');
    if (compression !== undefined && !COMPRESSIONS.includes(compression))
      throw new CodecKeyError(
        `payload compressed as "${compression}", which this release cannot read (known: ${COMPRESSIONS.join(', ')})`,
      );
    const key = this.keys.keys.get(id);
    if (!key)
      throw new CodecKeyError(
        `payload encrypted with key "${id}", which is not configured (configured: ${[...this.keys.keys.keys()].join(', ')})`,
      );
    const data = Buffer.from(p.data ?? []);
    if (data.length < IV_BYTES + TAG_BYTES) throw new CodecKeyError('encrypted payload too short');
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(aadFor(id, compression));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    if (compression === undefined) return fromJson(JSON.parse(plain.toString('utf8')) as PayloadJson);
    return payloadFromProto(
      compression === 'brotli' ? brotliDecompressSync(plain, { maxOutputLength: MAX_PLAINTEXT }) : plain,
    );
  }
}

// The protobuf wire encoding of temporal.api.common.v1.Payload { map<string, bytes> metadata = 1;
// bytes data = 2; }: a map entry is a length-delimited message { string key = 1; bytes value = 2; }.
// Lengths are varints; every field we write is length-delimited (wire type 2).

const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

function putVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at++] = n;
  return at;
}

/** A length-delimited field: tag, length, bytes. */
const fieldSize = (len: number): number => 1 + varintSize(len) + len;

function putField(out: Buffer, at: number, field: number, bytes: Uint8Array): number {
  out[at++] = (field << 3) | 2;
  at = putVarint(out, at, bytes.length);
  out.set(bytes, at);
  return at + bytes.length;
}

/** The payload's metadata and data as protobuf bytes (what temporal.api.common.v1.Payload.encode writes). */
export function payloadToProto(p: Payload): Buffer {
  const entries: Array<[Buffer, Uint8Array, number]> = [];
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    if (!v) continue;
    const key = Buffer.from(k, 'utf8');
    entries.push([key, v, fieldSize(key.length) + fieldSize(v.length)]);
  }
  const data = p.data ?? new Uint8Array(0);
  const size = entries.reduce((n, [, , len]) => n + fieldSize(len), 0) + (data.length > 0 ? fieldSize(data.length) : 0);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const [key, value, len] of entries) {
    out[at++] = (1 << 3) | 2;
    at = putVarint(out, at, len);
    at = putField(out, at, 1, key);
    at = putField(out, at, 2, value);
  }
  if (data.length > 0) at = putField(out, at, 2, data);
  return out;
}

/** Reads protobuf fields from bytes; throws on anything truncated or malformed. */
class ProtoReader {
  private at = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.buf.length;
  }

  varint(): number {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.at >= this.buf.length) throw new CodecKeyError('encrypted payload: truncated protobuf varint');
      const b = this.buf[this.at++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    throw new CodecKeyError('encrypted payload: protobuf varint too long');
  }

  /** The next field as [number, its bytes if length-delimited]; other wire types are skipped. */
  field(): [number, Uint8Array | undefined] {
    const tag = this.varint();
    const wire = tag & 7;
    let len: number;
    if (wire === 2) len = this.varint();
    else if (wire === 1) len = 8;
    else if (wire === 5) len = 4;
    else if (wire === 0) {
      this.varint();
      len = 0;
    } else throw new CodecKeyError(`encrypted payload: protobuf wire type ${wire} not supported`);
    if (this.at + len > this.buf.length) throw new CodecKeyError('encrypted payload: truncated protobuf field');
    const bytes = wire === 2 ? this.buf.subarray(this.at, this.at + len) : undefined;
    this.at += len;
    return [Math.floor(tag / 8), bytes];
  }
}

/** The inverse of payloadToProto (unknown fields, e.g. external_payloads, are ignored). */
export function payloadFromProto(buf: Uint8Array): Payload {
  const metadata: Record<string, Uint8Array> = {};
  let data = new Uint8Array(0);
  const r = new ProtoReader(buf);
  while (!r.done) {
    const [field, bytes] = r.field();
    if (!bytes) continue;
    if (field === 2) data = new Uint8Array(bytes);
    else if (field === 1) {
      const entry = new ProtoReader(bytes);
      let key = '';
      let value = new Uint8Array(0);
      while (!entry.done) {
        const [f, b] = entry.field();
        if (f === 1 && b) key = Buffer.from(b).toString('utf8');
        else if (f === 2 && b) value = new Uint8Array(b);
      }
      metadata[key] = value;
    }
  }
  return { metadata, data };
}

/** The wire form the codec server speaks (proto3 JSON of Payload: bytes as base64). */
export interface PayloadJson {
  metadata?: Record<string, string>;
  data?: string;
}

export function toJson(p: Payload): PayloadJson {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? []).toString('base64') };
}

export function fromJson(j: PayloadJson): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(j.metadata ?? {})) metadata[k] = new Uint8Array(Buffer.from(v, 'base64'));
  return { metadata, data: new Uint8Array(Buffer.from(j.data ?? '', 'base64')) };
}

/**
 * The data converter for the worker and every client: our codec, and failure messages and
 * stack traces moved into an encoded payload (they can name users: "grant app_admin to ann@x").
 * Temporal loads failure converters by module path (the worker also bundles it for workflows).
 */
export function dataConverter(
  env: NodeJS.ProcessEnv = process.env,
  keys: CodecKeys = loadCodecKeys(env),
): DataConverter {
  return { payloadCodecs: [new AesGcmCodec(keys)], failureConverterPath: require.resolve('./failure-converter') };
}

/** Decode one payload from history to its value (the audit command reads raw history with this). */
export async function decodePayload(codec: PayloadCodec, p: Payload | null | undefined): Promise<unknown> {
  if (!p) return undefined;
  const [decoded] = await codec.decode([p]);
  return defaultPayloadConverter.fromPayload(decoded!);
}
