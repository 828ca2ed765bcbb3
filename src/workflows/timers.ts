/**
 * A durable timer that can be called off: its own CancellationScope. Cancelling the scope
 * cancels the timer (a command in the cancelling workflow task: no workflow task of its own);
 * `fired` runs only when the timer fires. Workflow code: deterministic, the workflow SDK only.
 */
import { CancellationScope, sleep } from '@temporalio/workflow';

export function cancellableTimer(ms: number, fired: () => void): CancellationScope {
  const scope = new CancellationScope();
  scope.run(() => sleep(ms)).then(fired, () => undefined); // cancelled: nothing to do
  return scope;
}
