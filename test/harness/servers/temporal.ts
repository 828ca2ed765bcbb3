/**
 * The real Temporal dev server (Temporal CLI, found or built by scripts/temporal-cli.sh)
 * with a SQLite file and the Web UI, plus the workflow bundle built once for every test worker.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { newKeyList, parseKeyList } from '../../../src/codec';
import { startCodecServer } from '../../../src/codec/server';
import { findTemporalCli, startDevServer } from '../../../src/devserver';
import { buildWorkflowBundle } from '../../../src/worker/bundle';
import type { TestServer } from '../server';
import { runDir, freePort, LOG_DIR } from '../proc';

export const temporal: TestServer = {
  name: 'temporal',
  async start() {
    const dir = runDir('temporal');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    mkdirSync(LOG_DIR, { recursive: true });
    const bundle = join(dir, 'workflow-bundle.js');
    const [cli] = await Promise.all([findTemporalCli(), buildWorkflowBundle(bundle)]);
    const [port, uiPort] = [await freePort(), await freePort()];
    const dbFile = join(dir, 'temporal.sqlite');
    // Payload encryption: a key for this run (workers and clients read AMENDCTL_CODEC_KEYS), and
    // the codec server the Web UI decodes with (issue 6), started first so the UI knows its endpoint.
    const keys = newKeyList('test');
    const token = randomBytes(24).toString('hex');
    const codec = await startCodecServer({
      keys: parseKeyList(keys),
      token,
      allowedOrigins: [`http://127.0.0.1:${uiPort}`, `http://localhost:${uiPort}`],
    });
    const server = await startDevServer({
      cli,
      port,
      uiPort,
      dbFile,
      logFile: join(LOG_DIR, 'temporal.log'),
      uiCodecEndpoint: codec.endpoint,
    }).catch(async (err: unknown) => {
      await codec.close();
      throw err;
    });
    return {
      env: {
        AMENDCTL_CODEC_KEYS: keys,
        AMENDCTL_TEST_CODEC_URL: codec.url,
        AMENDCTL_TEST_CODEC_TOKEN: token,
        AMENDCTL_TEST_TEMPORAL_CLI: cli,
        AMENDCTL_TEST_TEMPORAL_ADDRESS: server.address,
        AMENDCTL_TEST_TEMPORAL_UI: server.uiUrl ?? '',
        AMENDCTL_TEST_TEMPORAL_PORT: String(port),
        AMENDCTL_TEST_TEMPORAL_UI_PORT: String(uiPort),
        AMENDCTL_TEST_TEMPORAL_DB: dbFile,
        AMENDCTL_WORKFLOW_BUNDLE: bundle,
      },
      stop: async () => {
        await Promise.all([server.stop(), codec.close()]);
      },
    };
  },
};
