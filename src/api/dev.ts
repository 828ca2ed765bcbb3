/**
 * The API of the embedded default (`amendctl dev`): on loopback, with a key and a webhook
 * secret made once in .data/ and reused (mode 0600, like the dev codec key), and one webhook
 * source, `clm` (Standard Webhooks, the mapping of examples/webhook/mapping.yaml). A real
 * deployment runs `amendctl serve` with its own keys and sources files.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AmendctlClient } from '../client';
import { ensureSecretFile, PROJECT_ROOT } from '../codec';
import { loadSigningKey } from '../approvals/token';
import { ApprovalDesk } from './approvals';
import { SCOPES, newApiKey, sha256 } from './auth';
import { jsonLines } from './log';
import { buildApiServer, DEFAULT_LIMITS } from './server';
import { loadWebhookSources } from './webhooks';

export const DEV_API_KEY_FILE = resolve(PROJECT_ROOT, '.data', 'api-key');
export const DEV_WEBHOOK_SECRET_FILE = resolve(PROJECT_ROOT, '.data', 'webhook-secret');

const once = (file: string, make: () => string): string => readFileSync(ensureSecretFile(file, make), 'utf8').trim();

export interface DevApi {
  app: FastifyInstance;
  url: string;
}

export async function startDevApi(client: AmendctlClient, port: number, logFile?: string, approvalKeyFile?: string): Promise<DevApi> {
  const key = once(DEV_API_KEY_FILE, () => newApiKey({ id: 'dev', scopes: [...SCOPES] }).key);
  once(DEV_WEBHOOK_SECRET_FILE, () => `whsec_${randomBytes(32).toString('base64')}`);
  const sourcesFile = join(dirname(DEV_API_KEY_FILE), 'dev-sources.yaml');
  const mapping = resolve(PROJECT_ROOT, 'examples', 'webhook', 'mapping.yaml');
  writeFileSync(sourcesFile, `# Written by amendctl dev: the webhook source of the embedded default.\nsources:\n  clm:\n    scheme: standard-webhooks\n    secrets: [{ file: ${JSON.stringify(DEV_WEBHOOK_SECRET_FILE)} }]\n    events: [contract.amended, contract.created]\n    record: { at: data }\n    mapping: ${JSON.stringify(mapping)}\n`);
  const app = buildApiServer({
    client,
    ...(approvalKeyFile ? { desk: new ApprovalDesk({ client, signer: loadSigningKey(approvalKeyFile) }) } : {}),
    sources: loadWebhookSources(sourcesFile, process.env),
    auth: { keys: [{ id: 'dev', name: 'amendctl dev', scopes: [...SCOPES], sha256: sha256(key) }] },
    limits: DEFAULT_LIMITS,
    logger: logFile ? jsonLines((line) => appendFileSync(logFile, line)) : () => undefined,
  });
  const url = await app.listen({ port, host: '127.0.0.1' });
  return { app, url };
}
