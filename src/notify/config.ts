/**
 * The notifications file (AMENDCTL_NOTIFICATIONS, YAML or JSON): where approval notices go.
 *
 *   endpoints:
 *     - name: approvals-channel          # a-z, 0-9, "-": what the workflow and its history name
 *       url: https://hooks.example.com/amendctl   # http(s); ${VAR} / ${VAR:-default} from the environment (in values, after parsing)
 *       events: [requested, escalated, decided]   # default: all four (requested, reminded, escalated, decided)
 *       secret: env:AMENDCTL_NOTIFY_SECRET        # or file:/run/secrets/notify, or { env: NAME } / { file: PATH }
 *       inboxUrl: https://amendctl.example.com    # optional: a link to ${inboxUrl}/inbox/amendments/{id}
 *       timeoutMs: 10000                          # per attempt, default 10 s
 *
 * The secret is named, never written: a Standard Webhooks secret (`whsec_` + base64 of the key;
 * the prefix is optional, as in the reference libraries; the HMAC key is the decoded bytes, at
 * least 16 of them). A relative `file:` path is relative to the notifications file. An endpoint
 * that cannot verify signatures (a Slack incoming webhook, whose URL is its credential) says
 * `unsigned: true` instead of naming a secret. Secrets are checked when the file is loaded (a
 * missing one stops the worker at start, naming the file and field) and read again on each
 * delivery, so a rotated file or variable takes effect without a restart.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { type InputIssue, InputError } from '../domain/errors';
import { parseWithEnv, parseWithEnvTyped } from '../connectors/interpolate';
import { secretFrom, type SecretRef, SecretRefSchema } from '../connectors/secrets';
import { readDocumentFile } from '../worker/config';
import { NOTICE_KINDS, type NoticeKind } from './notice';
import { signingKey } from './send';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REF_HINT = 'a secret reference: env:NAME, file:PATH, { env: NAME } or { file: PATH } (never the secret itself)';

/** `env:NAME` / `file:PATH`, or the object form of the targets file. */
const SecretField = z.unknown().transform((v, ctx): SecretRef | undefined => {
  if (v === undefined) return undefined;
  if (typeof v === 'string') {
    const m = /^(env|file):(.*)$/s.exec(v.trim());
    if (!m) {
      ctx.addIssue({ code: 'custom', message: REF_HINT });
      return z.NEVER;
    }
    const [, kind, rest] = m as unknown as [string, 'env' | 'file', string];
    if (kind === 'env' && !ENV_NAME.test(rest)) {
      ctx.addIssue({ code: 'custom', message: `env:${rest.slice(0, 60)} is not an environment variable name` });
      return z.NEVER;
    }
    if (kind === 'file' && rest === '') {
      ctx.addIssue({ code: 'custom', message: 'file: needs a path' });
      return z.NEVER;
    }
    return kind === 'env' ? { env: rest } : { file: rest };
  }
  const r = SecretRefSchema.safeParse(v);
  if (!r.success) {
    ctx.addIssue({ code: 'custom', message: REF_HINT });
    return z.NEVER;
  }
  return r.data;
});

const HttpUrl = z
  .url({ protocol: /^https?$/, error: 'an http or https URL' })
  .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), { message: 'no user or password in the URL' });

const EndpointSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'an endpoint name: a-z first, then a-z, 0-9, "-" (at most 40)'),
    url: HttpUrl,
    events: z
      .array(z.enum(NOTICE_KINDS, { error: `one of ${NOTICE_KINDS.join(', ')}` }))
      .min(1, 'at least one event (leave the field out for all four)')
      .default([...NOTICE_KINDS]),
    secret: SecretField.optional(),
    unsigned: z.boolean().default(false),
    inboxUrl: HttpUrl.optional(),
    timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (e.secret === undefined && !e.unsigned)
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message: `required: ${REF_HINT}; or unsigned: true for a receiver that verifies no signature`,
      });
    if (e.secret !== undefined && e.unsigned)
      ctx.addIssue({
        code: 'custom',
        path: ['unsigned'],
        message: 'an endpoint with a secret is signed: leave out unsigned',
      });
  });

export const NotificationsFileSchema = z
  .object({ endpoints: z.array(EndpointSchema) })
  .strict()
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    f.endpoints.forEach((e, i) => {
      if (seen.has(e.name))
        ctx.addIssue({
          code: 'custom',
          path: ['endpoints', i, 'name'],
          message: `"${e.name}" names an earlier endpoint too`,
        });
      seen.add(e.name);
    });
  });

export interface NotifyEndpoint {
  name: string;
  url: string;
  events: NoticeKind[];
  /** Absent only for `unsigned: true`. A `file:` path is absolute here. */
  secret?: SecretRef;
  /** Without a trailing slash. */
  inboxUrl?: string;
  timeoutMs: number;
}

export interface NotificationsConfig {
  /** The file it came from, for messages. */
  file?: string;
  endpoints: NotifyEndpoint[];
}

export const NO_NOTIFICATIONS: NotificationsConfig = { endpoints: [] };

/** The file's text to its configuration; `checkSecrets` (default) reads every secret once, so a missing one fails here, with the file and field named. */
export function parseNotifications(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: { checkSecrets?: boolean } = {},
): NotificationsConfig {
  const parsed = parseWithEnvTyped(
    NotificationsFileSchema,
    parseWithEnv(text, env, file, 'notifications file'),
    'invalid notifications file',
    file,
  );
  const dir = dirname(file);
  const issues: InputIssue[] = [];
  const endpoints = parsed.endpoints.map((e, i): NotifyEndpoint => {
    const secret =
      e.secret && 'file' in e.secret
        ? { file: isAbsolute(e.secret.file) ? e.secret.file : resolve(dir, e.secret.file) }
        : e.secret;
    if (secret && opts.checkSecrets !== false) {
      const path = `endpoints[${i}].secret`;
      try {
        signingKey(secretFrom(secret, path, env), path);
      } catch (err) {
        issues.push({ file, path, message: (err as Error).message.replace(`${path}: `, '') });
      }
    }
    return {
      name: e.name,
      url: e.url,
      events: [...new Set(e.events)],
      ...(secret ? { secret } : {}),
      ...(e.inboxUrl ? { inboxUrl: e.inboxUrl.replace(/\/+$/, '') } : {}),
      timeoutMs: e.timeoutMs,
    };
  });
  if (issues.length > 0) throw new InputError('notifications file: secrets that cannot be used', issues);
  return { file, endpoints };
}

/** AMENDCTL_NOTIFICATIONS, or no notifications when it is not set. */
export function loadNotifications(env: NodeJS.ProcessEnv = process.env): NotificationsConfig {
  const file = env.AMENDCTL_NOTIFICATIONS;
  if (!file) return NO_NOTIFICATIONS;
  return parseNotifications(readDocumentFile(file, 'notifications file', 'AMENDCTL_NOTIFICATIONS'), file, env);
}

/** The names of the endpoints that take notices of this kind, in file order. */
export function endpointsFor(config: NotificationsConfig, kind: NoticeKind): string[] {
  return config.endpoints.filter((e) => e.events.includes(kind)).map((e) => e.name);
}
