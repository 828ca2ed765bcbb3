/**
 * The webhook sources file (YAML or JSON): one entry per `POST /v1/webhooks/{name}`, its
 * signature scheme and options, its secrets by reference only (`{ env: NAME }` or
 * `{ file: PATH }`, as in the targets file; a list, any one verifies, for rotation), its
 * mapping file, and for thin events how to fetch the record. `${VAR}` / `${VAR:-default}` in
 * values are replaced from the environment after parsing (addresses, not secrets:
 * src/connectors/interpolate.ts); relative paths are relative to
 * the sources file. Secrets, keys and mappings are read once, when the file is loaded, so a
 * missing one stops the server at start with the file and path named.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { type InputIssue, InputError } from '../../domain/errors';
import { loadWebhookMapping, type WebhookMapping } from './mapping';
import { parseEnvTyped, parseWithEnv } from '../../connectors/interpolate';
import { secretFrom, type SecretRef, SecretRefSchema } from '../../connectors/secrets';
import { docusignVerifier } from './docusign';
import { httpFetcher, type RecordFetcher } from './fetch';
import { hmacVerifier } from './hmac';
import { hubspotVerifier } from './hubspot';
import { ironcladVerifier } from './ironclad';
import { SHAPES, type Shape } from './shape';
import type { Verifier } from './signature';
import { createSource } from './source';
import { standardKey, standardVerifier } from './standard';
import type { WebhookSource } from './types';

const Refs = z.array(SecretRefSchema).min(1);
const Tolerance = z.number().int().min(1).max(3600).default(300);
const Fields = z.array(z.string().min(1)).min(1);

const FetchSchema = z
  .object({
    baseUrl: z.url({ protocol: /^https?$/ }),
    /** Under baseUrl; `{payload.workflowID}` is the event's field, URL-encoded. */
    path: z.string().startsWith('/'),
    token: SecretRefSchema.optional(),
    timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  })
  .strict();

const common = {
  mapping: z.string().min(1),
  /** How the payload carries the record (shape.ts), and where (a dotted path; default the root). */
  record: z
    .object({ shape: z.enum(SHAPES).optional(), at: z.string().optional() })
    .strict()
    .optional(),
  /** Only these events carry amendments; others are acknowledged with none. */
  events: z.array(z.string().min(1)).min(1).optional(),
  /** Where the event's type is in the body (each scheme has a default where it has one). */
  eventType: z.string().min(1).optional(),
  fetch: FetchSchema.optional(),
};

const SourceSchema = z.discriminatedUnion('scheme', [
  z.object({ scheme: z.literal('standard-webhooks'), secrets: Refs, toleranceSeconds: Tolerance, ...common }).strict(),
  z
    .object({
      scheme: z.literal('hubspot-v3'),
      secrets: Refs,
      toleranceSeconds: Tolerance,
      eventId: Fields.optional(),
      ...common,
    })
    .strict(),
  z.object({ scheme: z.literal('docusign'), secrets: Refs, ...common }).strict(),
  z.object({ scheme: z.literal('ironclad'), publicKeys: Refs, ...common, fetch: FetchSchema }).strict(),
  z
    .object({
      scheme: z.literal('hmac'),
      secrets: Refs,
      header: z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name'),
      algorithm: z.enum(['sha256', 'sha512']).default('sha256'),
      encoding: z.enum(['hex', 'base64']).default('hex'),
      prefix: z.string().min(1).optional(),
      signed: z.enum(['body', 'timestamp.body']).default('body'),
      timestamp: z
        .object({
          header: z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name'),
          unit: z.enum(['seconds', 'milliseconds']).default('seconds'),
          toleranceSeconds: Tolerance,
        })
        .strict()
        .optional(),
      eventId: z
        .union([
          z.object({ header: z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name') }).strict(),
          z.object({ fields: Fields }).strict(),
        ])
        .optional(),
      ...common,
    })
    .strict()
    .refine((s) => s.signed === 'body' || s.timestamp !== undefined, {
      path: ['timestamp'],
      message: 'signed: timestamp.body needs a timestamp header',
    }),
]);
export type SourceConfig = z.output<typeof SourceSchema>;

export const SourcesFileSchema = z
  .object({
    sources: z.record(z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'a source name: a-z, 0-9, "-"'), SourceSchema),
  })
  .strict();

/** Where each scheme's events say what they are, when the scheme has a convention. */
const EVENT_TYPE: Partial<Record<SourceConfig['scheme'], string>> = {
  'standard-webhooks': 'type',
  docusign: 'event',
  ironclad: 'payload.event',
};
const DEFAULT_SHAPE: Record<SourceConfig['scheme'], Shape> = {
  'standard-webhooks': 'typed',
  'hubspot-v3': 'hubspot',
  docusign: 'docusign',
  ironclad: 'typed',
  hmac: 'typed',
};

export interface LoadOptions {
  /** A fetcher per source with a `fetch` section instead of the HTTP one (tests, another client). */
  fetcher?: (source: string, config: z.output<typeof FetchSchema>) => RecordFetcher;
}

export function parseWebhookSources(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv,
  options: LoadOptions = {},
): Map<string, WebhookSource> {
  const doc = parseWithEnv(text, env, file, 'webhook sources file');
  const top = parseEnvTyped(SourcesFileSchema, doc.value, doc.sole, file);
  if (!top.success) throw new InputError('invalid webhook sources file', top.issues);
  const dir = dirname(file);
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  const issues: InputIssue[] = [];
  const sources = new Map<string, WebhookSource>();

  for (const [name, cfg] of Object.entries(top.data.sources)) {
    const where = `sources.${name}`;
    const problem = (path: string, message: string): undefined => {
      issues.push({ file, path: `${where}.${path}`, message });
      return undefined;
    };
    const secret = (ref: SecretRef, path: string): string | undefined => {
      try {
        return secretFrom('file' in ref ? { file: at(ref.file) } : ref, `${where}.${path}`, env);
      } catch (err) {
        return problem(path, (err as Error).message.replace(`${where}.${path}: `, ''));
      }
    };
    const texts = (refs: SecretRef[], path: string): Array<string | undefined> =>
      refs.map((r, i) => secret(r, `${path}[${i}]`));

    let mapping: WebhookMapping | undefined;
    try {
      mapping = loadWebhookMapping(readFileSync(at(cfg.mapping), 'utf8'), cfg.mapping);
    } catch (err) {
      if (err instanceof InputError) issues.push(...err.issues);
      else
        problem(
          'mapping',
          `cannot read ${cfg.mapping}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
    }

    const verify = verifierFor(cfg, texts, problem);

    const eventType = cfg.eventType ?? EVENT_TYPE[cfg.scheme];
    if (cfg.events && eventType === undefined)
      problem(
        'eventType',
        `the ${cfg.scheme} scheme has no event type field: name where the body says which event it is`,
      );

    let fetch: { fetcher: RecordFetcher; path: string } | undefined;
    if (cfg.fetch) {
      const f = cfg.fetch;
      const token = f.token ? secret(f.token, 'fetch.token') : undefined;
      const fetcher =
        options.fetcher?.(name, f) ??
        httpFetcher({
          source: name,
          baseUrl: f.baseUrl,
          timeoutMs: f.timeoutMs,
          ...(token !== undefined ? { token } : {}),
          ...(f.token ? { tokenName: 'env' in f.token ? f.token.env : f.token.file } : {}),
        });
      fetch = { fetcher, path: f.path };
    }

    if (mapping) {
      sources.set(
        name,
        createSource({
          name,
          scheme: cfg.scheme,
          verify,
          mapping,
          shape: cfg.record?.shape ?? DEFAULT_SHAPE[cfg.scheme],
          at: cfg.record?.at ?? '',
          ...(cfg.events && eventType !== undefined ? { events: { types: cfg.events, at: eventType } } : {}),
          ...(fetch ? { fetch } : {}),
        }),
      );
    }
  }
  if (issues.length > 0) throw new InputError('invalid webhook sources file', issues);
  return sources;
}

/** The scheme's verifier, with the keys that could be read (a key that could not is an issue already). */
function verifierFor(
  cfg: SourceConfig,
  texts: (refs: SecretRef[], path: string) => Array<string | undefined>,
  problem: (path: string, message: string) => undefined,
): Verifier {
  const utf8 = (values: Array<string | undefined>): Buffer[] =>
    values.filter((v): v is string => v !== undefined).map((v) => Buffer.from(v, 'utf8'));
  switch (cfg.scheme) {
    case 'standard-webhooks': {
      const keys = texts(cfg.secrets, 'secrets').map((s, i) =>
        s === undefined
          ? undefined
          : (standardKey(s) ?? problem(`secrets[${i}]`, 'not a Standard Webhooks secret (whsec_ followed by base64)')),
      );
      return standardVerifier({
        keys: keys.filter((k): k is Buffer => k !== undefined),
        toleranceSeconds: cfg.toleranceSeconds,
      });
    }
    case 'hubspot-v3':
      return hubspotVerifier({
        keys: utf8(texts(cfg.secrets, 'secrets')),
        toleranceSeconds: cfg.toleranceSeconds,
        ...(cfg.eventId ? { eventId: cfg.eventId } : {}),
      });
    case 'docusign':
      return docusignVerifier({ keys: utf8(texts(cfg.secrets, 'secrets')) });
    case 'ironclad': {
      const keys = texts(cfg.publicKeys, 'publicKeys').map((pem, i) =>
        pem === undefined ? undefined : (rsaKey(pem) ?? problem(`publicKeys[${i}]`, 'not an RSA public key in PEM')),
      );
      return ironcladVerifier({ keys: keys.filter((k): k is KeyObject => k !== undefined) });
    }
    case 'hmac':
      return hmacVerifier({
        keys: utf8(texts(cfg.secrets, 'secrets')),
        header: cfg.header,
        algorithm: cfg.algorithm,
        encoding: cfg.encoding,
        signed: cfg.signed,
        ...(cfg.prefix !== undefined ? { prefix: cfg.prefix } : {}),
        ...(cfg.timestamp ? { timestamp: cfg.timestamp } : {}),
        ...(cfg.eventId ? { eventId: cfg.eventId } : {}),
      });
  }
}

function rsaKey(pem: string): KeyObject | undefined {
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'rsa' ? key : undefined;
  } catch {
    return undefined;
  }
}
