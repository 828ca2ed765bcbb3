/**
 * The refusals a webhook source answers with: one stable problem type per reason, each with
 * its status and title; the detail says what exactly was wrong (never a secret or the
 * signature we expected).
 */
import type { Refusal } from './types';

const PROBLEMS = {
  'header-missing': [400, 'A required header is missing'],
  'header-repeated': [400, 'A header is given more than once'],
  'signature-missing': [401, 'The delivery is not signed'],
  'signature-malformed': [400, 'The signature cannot be read'],
  'signature-invalid': [401, 'The signature does not match'],
  'timestamp-malformed': [400, 'The timestamp cannot be read'],
  'timestamp-stale': [409, 'The delivery is outside the accepted time window'],
  'body-malformed': [400, 'The body cannot be read'],
  'payload-unmappable': [422, 'The payload does not map to an amendment'],
  'record-not-found': [422, "The record the event names is not in the source's API"],
  'record-unreadable': [502, "The source's API did not answer with a record"],
  'source-refused': [502, "The source's API refused the request"],
} as const satisfies Record<string, readonly [Refusal['status'], string]>;

export type Problem = keyof typeof PROBLEMS;

export function refuse(type: Problem, detail: string): Refusal {
  const [status, title] = PROBLEMS[type];
  return { ok: false, status, type, title, detail };
}

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && (value as { ok?: unknown }).ok === false;
}
