/**
 * Fault injection for tests (a workflow interceptor module, bundled with the workflows): the
 * signal `inject-failure` makes the workflow that receives it fail at the Temporal level, as a
 * bug in workflow code or a payload the server refuses would. Only test workers load it.
 */
import { ApplicationFailure, defineSignal, setHandler, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

export const injectFailureSignal = defineSignal<[string]>('inject-failure');

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      async execute(input, next) {
        let fail: (reason: string) => void = () => undefined;
        const failed = new Promise<never>((_, reject) => {
          fail = (reason) =>
            reject(ApplicationFailure.create({ message: reason, type: 'InjectedFailure', nonRetryable: true }));
        });
        setHandler(injectFailureSignal, (reason) => fail(reason));
        return Promise.race([next(input), failed]);
      },
    },
  ],
});
