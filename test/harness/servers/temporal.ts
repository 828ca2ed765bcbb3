/**
 * The real Temporal dev server (Temporal CLI, found or built by scripts/temporal-cli.sh)
 * with a SQLite file and the Web UI, plus the workflow bundle built once for every test worker.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
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
    const server = await startDevServer({ cli, port, uiPort, dbFile, logFile: join(LOG_DIR, 'temporal.log') });
    return {
      env: {
        AMENDCTL_TEST_TEMPORAL_CLI: cli,
        AMENDCTL_TEST_TEMPORAL_ADDRESS: server.address,
        AMENDCTL_TEST_TEMPORAL_UI: server.uiUrl ?? '',
        AMENDCTL_TEST_TEMPORAL_PORT: String(port),
        AMENDCTL_TEST_TEMPORAL_UI_PORT: String(uiPort),
        AMENDCTL_TEST_TEMPORAL_DB: dbFile,
        AMENDCTL_WORKFLOW_BUNDLE: bundle,
      },
      stop: () => server.stop(),
    };
  },
};
