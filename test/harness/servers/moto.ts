/** moto in server mode (PyPI, .cache/venv): a real AWS API endpoint on loopback, for the IAM connector. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestServer } from '../server';
import { CACHE, freePort, startProcess, waitFor } from '../proc';

export const motoServer: TestServer = {
  name: 'moto',
  async start() {
    const bin = join(CACHE, 'venv', 'bin', 'moto_server');
    if (!existsSync(bin)) throw new Error(`${bin} not found: run \`bash scripts/setup.sh python\``);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = startProcess('moto', bin, ['-H', '127.0.0.1', '-p', String(port)], {
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    try {
      // moto answers its own dashboard API once the app is up.
      await waitFor('moto_server', async () => (await fetch(`${url}/moto-api/`)).status < 500, 60_000, proc.child);
    } catch (e) {
      await proc.stop();
      throw e;
    }
    return { env: { AMENDCTL_TEST_MOTO_URL: url }, stop: () => proc.stop() };
  },
};
