/**
 * Webhook sources for `POST /v1/webhooks/{source}`: load the sources file once at start,
 * then for each delivery `verify` (who sent it, the event's id) and `amendments` (what it
 * changes). See types.ts for the seam with the server, config.ts for the file.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../../domain/errors';
import { type LoadOptions, parseWebhookSources } from './config';
import type { WebhookSource } from './types';

export type { Refusal, Verified, WebhookRequest, WebhookSource } from './types';
export { type Fetched, httpFetcher, type RecordFetcher, SourceUnavailableError } from './fetch';
export { isRefusal } from './refusal';
export { parseWebhookSources, SourcesFileSchema, type LoadOptions } from './config';

/** The configured sources by name; throws InputError naming the file and path of anything wrong. */
export function loadWebhookSources(
  file: string,
  env: NodeJS.ProcessEnv,
  options: LoadOptions = {},
): Map<string, WebhookSource> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError('cannot read the webhook sources file', [
      { file, path: '', message: (err as NodeJS.ErrnoException).code ?? (err as Error).message },
    ]);
  }
  return parseWebhookSources(text, file, env, options);
}
