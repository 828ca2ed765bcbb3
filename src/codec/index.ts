/**
 * Payload encryption for everything amendctl puts into Temporal: AES-256-GCM, one random
 * 96-bit IV per payload, the key id in the payload's metadata so keys can rotate
 * (encrypt with the current key, decrypt with any key still configured).
 *
 * Keys live only in the environment of the processes that encode or decode (workers,
 * clients, the codec server), never in workflow history:
 *   AMENDCTL_CODEC_KEYS      "id:base64key[,id:base64key...]"; the FIRST is the current key.
 *   AMENDCTL_CODEC_KEY_FILE  a JSON file { "current": "id", "keys": { "id": "base64key" } }.
 *   otherwise                the dev key file .data/codec-keys.json, if it exists (`amendctl dev`
 *                            creates it on its first start, mode 0600, and reuses it).
 * With none of these a worker or client refuses to start: production must set a key.
 *
 * Codecs run outside the workflow sandbox (in the worker and the client), so workflow code
 * is unaffected. Payloads without our encoding (written before encryption was enabled)
 * pass through decode unchanged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { defaultPayloadConverter, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';

export const ENCODING = 'binary/encrypted-aes256gcm';
export const KEY_ID_METADATA = 'encryption-key-id';
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
  if (typeof raw.current !== 'string' || !raw.keys || typeof raw.keys !== 'object') throw new CodecKeyError(`${file}: expected { "current": "id", "keys": { "id": "base64key" } }`);
  const keys = new Map(Object.entries(raw.keys as Record<string, unknown>).map(([id, v]) => keyFrom(id, String(v), file)));
  if (!keys.has(raw.current)) throw new CodecKeyError(`${file}: the current key "${raw.current}" is not among the keys`);
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
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const id = `dev-${new Date().toISOString().slice(0, 10)}`;
    writeFileSync(file, `${JSON.stringify({ current: id, keys: { [id]: randomBytes(32).toString('base64') } }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  }
  chmodSync(file, 0o600);
  return file;
}

/** A fresh random key in AMENDCTL_CODEC_KEYS form (tests, `amendctl codec-server --new-key`). */
export function newKeyList(id = `k-${randomBytes(3).toString('hex')}`): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

/**
 * The encrypted payload's data: IV (12) || ciphertext || tag (16). The plaintext is the
 * original payload (metadata and data) as JSON, so its encoding survives the round trip;
 * the key id and our encoding name are bound in as additional authenticated data.
 */
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
    const id = this.keys.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.keys.get(id)!, iv);
    cipher.setAAD(Buffer.from(`${ENCODING}|${id}`));
    const plain = Buffer.from(JSON.stringify(toJson(p)), 'utf8');
    const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return { metadata: { encoding: utf8(ENCODING), [KEY_ID_METADATA]: utf8(id) }, data: new Uint8Array(data) };
  }

  decrypt(p: Payload): Payload {
    if (!p.metadata || Buffer.from(p.metadata.encoding ?? []).toString('utf8') !== ENCODING) return p;
    const id = Buffer.from(p.metadata[KEY_ID_METADATA] ?? []).toString('utf8');
    const key = this.keys.keys.get(id);
    if (!key) throw new CodecKeyError(`payload encrypted with key "${id}", which is not configured (configured: ${[...this.keys.keys.keys()].join(', ')})`);
    const data = Buffer.from(p.data ?? []);
    if (data.length < IV_BYTES + TAG_BYTES) throw new CodecKeyError('encrypted payload too short');
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(`${ENCODING}|${id}`));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    return fromJson(JSON.parse(plain.toString('utf8')) as PayloadJson);
  }
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
export function dataConverter(env: NodeJS.ProcessEnv = process.env, keys: CodecKeys = loadCodecKeys(env)): DataConverter {
  return { payloadCodecs: [new AesGcmCodec(keys)], failureConverterPath: require.resolve('./failure-converter') };
}

/** Decode one payload from history to its value (the audit command reads raw history with this). */
export async function decodePayload(codec: PayloadCodec, p: Payload | null | undefined): Promise<unknown> {
  if (!p) return undefined;
  const [decoded] = await codec.decode([p]);
  return defaultPayloadConverter.fromPayload(decoded!);
}
