import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE } from './proc';

export default async function globalTeardown(): Promise<void> {
  const stops = (globalThis as { __amendctlStops?: Array<() => Promise<void>> }).__amendctlStops ?? [];
  await Promise.allSettled(stops.map((stop) => stop()));
  if (process.env.AMENDCTL_TEST_RUN_ID)
    rmSync(join(CACHE, 'test-runs', process.env.AMENDCTL_TEST_RUN_ID), { recursive: true, force: true });
}
