/**
 * The worker loads its failure converter by path (WorkerOptions.dataConverter.failureConverterPath):
 * failure messages and stack traces go into an encoded attributes payload, which the codec
 * encrypts. Activity failures can name users ("warehouse: grant app_admin to ann@x.com").
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
