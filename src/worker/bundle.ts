/** Prebuilds the workflow bundle (lib/workflow-bundle.js) so workers start in about a second. */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/** The workflow interceptors of OpenTelemetry tracing, in the traced bundle only (src/observability/tracing.ts). */
export const TRACING_WORKFLOW_MODULE =
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

/** The traced bundle beside a plain one: `workflow-bundle.js` -> `workflow-bundle.traced.js`. */
export function tracedBundlePath(plain: string): string {
  return plain.replace(/(\.js)?$/, '.traced.js');
}

export async function buildWorkflowBundle(out: string, opts: { traced?: boolean } = {}): Promise<void> {
  // The failure converter goes into the bundle too: failures raised in workflow code (an Update's
  // refusal names a person) are encoded like every other payload.
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    failureConverterPath: require.resolve('../codec/failure-converter'),
    // zod once per workflow thread, not once per cached workflow (src/workflows/preload-zod.ts).
    preloadModules: [require.resolve('../workflows/preload-zod')],
    ...(opts.traced ? { workflowInterceptorModules: [TRACING_WORKFLOW_MODULE] } : {}),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  writeFileSync(out, code);
}

if (require.main === module) {
  const out = process.argv[2] ?? resolve(__dirname, '..', 'workflow-bundle.js');
  Promise.all([buildWorkflowBundle(out), buildWorkflowBundle(tracedBundlePath(out), { traced: true })]).then(
    () => process.stdout.write(`workflow bundles: ${out}, ${tracedBundlePath(out)}\n`),
    (err) => {
      process.stderr.write(`workflow bundle failed: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
