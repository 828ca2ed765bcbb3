/**
 * The workflow threads' heap bound (src/worker/index.ts, issue 9 point 4): the SDK starts its
 * workflow threads with V8's default heap, sized to the machine; the worker bounds the isolates
 * it creates after the call, so garbage is collected before it costs hundreds of MB.
 */
import { getHeapStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { boundWorkflowHeap, defaultCachedWorkflows, workflowHeapMb } from '../../src/worker';

const MiB = 1024 * 1024;

/** The heap limit of a new worker thread, in MiB (old space plus young generation). */
function threadHeapLimitMb(): Promise<number> {
  return new Promise((resolve, reject) => {
    const w = new Worker(
      `require('node:worker_threads').parentPort.postMessage(require('node:v8').getHeapStatistics().heap_size_limit)`,
      { eval: true },
    );
    w.once('message', (n: number) => {
      resolve(n / MiB);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

describe('workflow thread heap', () => {
  it('is 256 MiB for the default cache and grows 4 MiB per cached workflow above 64', () => {
    expect(workflowHeapMb(defaultCachedWorkflows(24 * 1024 * MiB))).toBe(256);
    expect(workflowHeapMb(20)).toBe(256);
    expect(workflowHeapMb(64)).toBe(256);
    expect(workflowHeapMb(200)).toBe(256 + 4 * 136);
  });

  it('bounds the threads started after the call, not the main thread', async () => {
    const main = getHeapStatistics().heap_size_limit / MiB;
    const before = await threadHeapLimitMb();
    expect(boundWorkflowHeap({ AMENDCTL_WORKFLOW_HEAP_MB: '200' }, 47, [])).toBe(200);
    const after = await threadHeapLimitMb();
    // Old space 200 MiB, plus V8's young generation (a few tens of MiB).
    expect(after).toBeGreaterThanOrEqual(200);
    expect(after).toBeLessThan(300);
    expect(after).toBeLessThan(before);
    expect(getHeapStatistics().heap_size_limit / MiB).toBe(main);
    expect(boundWorkflowHeap({}, 47, [])).toBe(256);
    const bounded = await threadHeapLimitMb();
    expect(bounded).toBeGreaterThanOrEqual(256);
    expect(bounded).toBeLessThan(356);
  });

  it('leaves a heap size given to node alone', () => {
    expect(boundWorkflowHeap({}, 47, ['--max-old-space-size=2048'])).toBeUndefined();
    expect(boundWorkflowHeap({}, 47, ['--max_old_space_size=2048'])).toBeUndefined();
  });

  it('says what is wrong with a bad AMENDCTL_WORKFLOW_HEAP_MB', () => {
    expect(() => boundWorkflowHeap({ AMENDCTL_WORKFLOW_HEAP_MB: 'lots' }, 47, [])).toThrow(
      'AMENDCTL_WORKFLOW_HEAP_MB must be a whole number of at least 1, got "lots"',
    );
  });
});
