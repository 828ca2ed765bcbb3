/**
 * Every call to Temporal from a request: bounded by a deadline, and an unreachable or
 * overloaded Temporal answered as 503 with Retry-After, so a caller (or a webhook sender)
 * retries instead of taking the request as done.
 */
import { isGrpcDeadlineError, isGrpcServiceError } from '@temporalio/client';
import type { AmendctlClient } from '../client';
import { ProblemError } from './problem';

/** gRPC status codes: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE. */
const OUTAGE = new Set<number>([4, 8, 14]);

function isOutage(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e) && OUTAGE.has(e.code)) return true;
    if (isGrpcDeadlineError(e)) return true;
  }
  return false;
}

export const RETRY_AFTER_SECONDS = 5;

export function temporalUnavailable(): ProblemError {
  return new ProblemError(
    503,
    'temporal-unavailable',
    'Temporal is unavailable',
    `nothing was started or changed for certain; try again in ${RETRY_AFTER_SECONDS} s`,
    {
      headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
    },
  );
}

export async function onTemporal<T>(client: AmendctlClient, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  // The deadline bounds each gRPC call; the timer bounds the whole (connecting, the SDK's own retries).
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(temporalUnavailable()), timeoutMs + 1000);
  });
  try {
    return await Promise.race([client.client.connection.withDeadline(Date.now() + timeoutMs, fn), late]);
  } catch (err) {
    if (isOutage(err)) throw temporalUnavailable();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
