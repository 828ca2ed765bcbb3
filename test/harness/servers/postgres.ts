/** A real PostgreSQL (Debian's packages) in a private cluster on a free loopback port: scripts/local-postgres.sh. */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestServer } from '../server';
import { runDir, freePort, ROOT } from '../proc';

const run = promisify(execFile);

export const postgres: TestServer = {
  name: 'postgres',
  async start() {
    const dir = runDir('postgres');
    rmSync(dir, { recursive: true, force: true });
    const port = await freePort();
    const script = join(ROOT, 'scripts', 'local-postgres.sh');
    await run('bash', [script, 'start', dir, String(port)], { timeout: 120_000 });
    return {
      env: {
        AMENDCTL_TEST_PG_HOST: '127.0.0.1',
        AMENDCTL_TEST_PG_PORT: String(port),
        AMENDCTL_TEST_PG_DATABASE: 'warehouse',
        AMENDCTL_TEST_PG_USER: 'amendctl',
        AMENDCTL_TEST_PG_PASSWORD: readFileSync(join(dir, 'amendctl.password'), 'utf8').trim(),
        AMENDCTL_TEST_PG_DIR: dir,
        AMENDCTL_TEST_PG_SUPERUSER_SOCKET: join(dir, 'sock'),
      },
      async stop() {
        await run('bash', [script, 'stop', dir, '--remove'], { timeout: 60_000 }).catch(() => undefined);
      },
    };
  },
};
