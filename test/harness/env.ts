/** What global-setup started, for the tests: read from .cache/test-env.json. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE } from './proc';

/** Per run (concurrent runs on one machine must not read each other's servers). */
export const TEST_ENV_FILE = process.env.AMENDCTL_TEST_ENV_FILE ?? join(CACHE, 'test-env.json');

let cached: Record<string, string> | undefined;

export function testEnv(): Record<string, string> {
  cached ??= JSON.parse(readFileSync(TEST_ENV_FILE, 'utf8')) as Record<string, string>;
  return cached;
}

/** One variable, or a clear failure naming the server that should have set it. */
export function need(name: string): string {
  // global-setup puts these in the environment the test workers inherit; the file is for tools.
  const v = process.env[name] ?? testEnv()[name];
  if (v === undefined)
    throw new Error(
      `${name} is not set: the harness did not start the server that provides it (AMENDCTL_TEST_SERVERS?)`,
    );
  return v;
}
