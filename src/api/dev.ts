/**
 * The API of the embedded default (`amendctl dev`): on loopback, with a key and a webhook
 * secret made once in .data/ and reused (mode 0600, like the dev codec key), and one webhook
 * source, `clm` (Standard Webhooks, the mapping of examples/webhook/mapping.yaml), and, with the
 * approval key, the approvals inbox (/inbox) with one local user, `approver`, whose generated
 * password is kept in .data/ and printed. A real deployment runs `amendctl serve` with its own
 * keys, sources and users files.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AmendctlClient } from '../client';
import { ensureSecretFile, PROJECT_ROOT } from '../codec';
import { loadSigningKey } from '../approvals/token';
import { ApprovalDesk } from './approvals';
import { SCOPES, newApiKey, sha256 } from './auth';
import { LocalUsers, parseSessionKeys } from './inbox';
import { newSessionKey } from './inbox/session';
import { addUser } from './inbox/users';
import { Intake } from './intake';
import { jsonLines } from './log';
import { buildApiServer, DEFAULT_LIMITS } from './server';
import { loadWebhookSources } from './webhooks';

export const DEV_API_KEY_FILE = resolve(PROJECT_ROOT, '.data', 'api-key');
export const DEV_WEBHOOK_SECRET_FILE = resolve(PROJECT_ROOT, '.data', 'webhook-secret');
export const DEV_INBOX_USERS_FILE = resolve(PROJECT_ROOT, '.data', 'inbox-users.yaml');
export const DEV_INBOX_PASSWORD_FILE = resolve(PROJECT_ROOT, '.data', 'inbox-password');
export const DEV_INBOX_SESSION_KEY_FILE = resolve(PROJECT_ROOT, '.data', 'inbox-session-key');
export const DEV_INBOX_USER = 'approver';

const once = (file: string, make: () => string): string => readFileSync(ensureSecretFile(file, make), 'utf8').trim();

export interface DevApi {
  app: FastifyInstance;
  url: string;
  /** The approvals inbox (served when there is an approval key): its page, its user and that user's password. */
  inbox?: { url: string; user: string; password: string };
}

/** The dev inbox's user: made once, with a generated password kept (0600) beside the users file. */
async function devInboxUser(): Promise<string> {
  const password = once(DEV_INBOX_PASSWORD_FILE, () => randomBytes(15).toString('base64url'));
  const users = existsSync(DEV_INBOX_USERS_FILE) ? new LocalUsers(DEV_INBOX_USERS_FILE) : undefined;
  if (!(await users?.verify(DEV_INBOX_USER, password)))
    await addUser(DEV_INBOX_USERS_FILE, { id: DEV_INBOX_USER, name: 'Dev approver', password }, 10);
  return password;
}

export async function startDevApi(
  client: AmendctlClient,
  port: number,
  logFile?: string,
  approvalKeyFile?: string,
): Promise<DevApi> {
  const key = once(DEV_API_KEY_FILE, () => newApiKey({ id: 'dev', scopes: [...SCOPES] }).key);
  once(DEV_WEBHOOK_SECRET_FILE, () => `whsec_${randomBytes(32).toString('base64')}`);
  const sourcesFile = join(dirname(DEV_API_KEY_FILE), 'dev-sources.yaml');
  const mapping = resolve(PROJECT_ROOT, 'examples', 'webhook', 'mapping.yaml');
  writeFileSync(
    sourcesFile,
    `# Written by amendctl dev: the webhook source of the embedded default.\nsources:\n  clm:\n    scheme: standard-webhooks\n    secrets: [{ file: ${JSON.stringify(DEV_WEBHOOK_SECRET_FILE)} }]\n    events: [contract.amended, contract.created]\n    record: { at: data }\n    mapping: ${JSON.stringify(mapping)}\n`,
  );
  const password = approvalKeyFile ? await devInboxUser() : undefined;
  const inbox = approvalKeyFile
    ? {
        sessionKeys: parseSessionKeys(once(DEV_INBOX_SESSION_KEY_FILE, newSessionKey), DEV_INBOX_SESSION_KEY_FILE),
        users: new LocalUsers(DEV_INBOX_USERS_FILE),
      }
    : undefined;
  const app = buildApiServer({
    client,
    ...(approvalKeyFile ? { desk: new ApprovalDesk({ client, signer: loadSigningKey(approvalKeyFile) }) } : {}),
    ...(inbox ? { inbox } : {}),
    intake: Intake.fromEnv(client),
    sources: loadWebhookSources(sourcesFile, process.env),
    auth: { keys: [{ id: 'dev', name: 'amendctl dev', scopes: [...SCOPES], sha256: sha256(key) }] },
    limits: DEFAULT_LIMITS,
    logger: logFile ? jsonLines((line) => appendFileSync(logFile, line)) : () => undefined,
  });
  const url = await app.listen({ port, host: '127.0.0.1' });
  return { app, url, ...(password ? { inbox: { url: `${url}/inbox`, user: DEV_INBOX_USER, password } } : {}) };
}
