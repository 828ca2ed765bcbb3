/** GET /v1/contracts/{id}: a contract's line. */
import { WorkflowNotFoundError } from '@temporalio/client';
import { ProblemError } from '../problem';
import { type Route, route, UNAVAILABLE } from '../route';
import { ContractViewSchema, IdParamsSchema } from '../schemas';
import { onTemporal } from '../temporal';

const get = route({
  method: 'GET',
  path: '/v1/contracts/{id}',
  operationId: 'getContract',
  summary: "A contract's line: the sequence applied, who holds its turn since when, who waits, what is scheduled",
  tag: 'contracts',
  access: 'read',
  params: IdParamsSchema,
  answers: {
    200: { description: "the contract's view (as amendctl contract --json)", schema: ContractViewSchema },
    404: { description: 'no amendment of this contract was ever submitted' },
    422: { description: 'the id is not a valid contract id' },
    503: UNAVAILABLE,
  },
  async handle(_req, { client, limits }, { id }) {
    const { view, applied } = await onTemporal(client, limits.temporalMs, () => client.getContract(id)).catch(
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError)
          throw new ProblemError(
            404,
            'contract-not-found',
            'No such contract',
            `no amendment of contract ${id} was ever submitted`,
          );
        throw err;
      },
    );
    return {
      status: 200,
      body: { ...view, applied: applied ? { sequence: applied.sequence, amendmentId: applied.amendmentId } : null },
    };
  },
});

export const contractRoutes: Route[] = [get];
