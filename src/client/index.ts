/**
 * The typed client for services: submit an amendment, approve or reject it, read its
 * status, wait for its result. Workflow ids are business keys, so submitting the same
 * amendmentId twice starts nothing new.
 */
import { type ApprovalSigner, type DecisionKind, loadSigningKey, type ProofMethod } from '../approvals/token';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import { currentTracing } from '../observability/tracing';
import { createHash } from 'node:crypto';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { decodeArrayFromPayloads, encodeToPayloads } from '@temporalio/common/lib/internal-non-workflow';
import { dataConverter } from '../codec';
import { type Amendment, AmendmentDocumentSchema } from '../domain/amendment';
import { InputError, parseWith } from '../domain/errors';
import { canonicalJson } from '../domain/json';
import {
  AMENDMENT_WORKFLOW_TYPE,
  amendmentWorkflowId,
  type AmendmentView,
  type AmendmentWorkflowInput,
  type ApproveInput,
  approveSignal,
  approveUpdate,
  type ApproveUpdateResult,
  appliedStateQuery,
  type AppliedStateView,
  type BatchProgress,
  contractQuery,
  releaseTurnSignal,
  type ContractView,
  contractWorkflowId,
  type CancelInput,
  cancelSignal,
  FINAL_STATUSES,
  type RejectInput,
  rejectSignal,
  SA,
  statusQuery,
  TASK_QUEUE_DEFAULT,
} from '../workflows/definitions';
import type { amendmentV4 } from '../workflows/amendment';
import { temporalTarget, type TemporalTarget } from './connection';
import {
  ApproveInputSchema,
  CancelInputSchema,
  checkId,
  checkInput,
  RejectInputSchema,
  ReleaseInputSchema,
  SubmitOptionsSchema,
} from './inputs';

export * from '../workflows/definitions';
export { checkId } from './inputs';

/** Temporal refuses a payload over 2 MB (its default blob size limit): the amendment is measured as it would be sent. */
export const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;
export { temporalTarget, type TemporalTarget } from './connection';

export interface SubmitResult {
  amendmentId: string;
  contractId: string;
  workflowId: string;
  runId: string;
  /** True when this amendmentId was already submitted: nothing new was started. */
  duplicate: boolean;
  /** For a duplicate: whether the earlier submission carried different content. */
  differs?: boolean;
}

/** A validated amendment ready to start (AmendctlClient.prepareSubmission): plain JSON, so it can be kept and started later. */
export interface Submission {
  input: AmendmentWorkflowInput & { amendment: Amendment };
  /** SHA-256 of the amendment's canonical JSON: the memo `amendmentHash`, which tells a duplicate that differs. */
  hash: string;
  claimedBy?: string;
}

export interface SubmitOptions {
  retryBudgetSeconds?: number;
  /**
   * Set by `reverse`: the amendment is an operator's reversal and always needs approval. The field
   * keeps its recorded name `rollback` (workflow input and view, docs/ARCHITECTURE.md, "Words").
   */
  rollback?: { requestedBy: string; reason: string };
  /**
   * Set by the HTTP API (src/api): the submitter the document named when it was not the proven
   * caller, whom `submittedBy` names instead. Kept in the memo for the record, never decides anything.
   */
  claimedBy?: string;
}

export class AmendmentNotFoundError extends Error {
  override readonly name = 'AmendmentNotFoundError';
}

/** The workflow refused an approval at once (the Update's validator): not allowed, own amendment, not pending. */
export class ApprovalRefusedError extends Error {
  override readonly name = 'ApprovalRefusedError';
  constructor(
    message: string,
    readonly type: string,
  ) {
    super(message);
  }
}

/** A reversal that cannot be submitted: the amendment is not completed, or is not the contract's last applied one. */
export class ReversalRefusedError extends Error {
  override readonly name = 'ReversalRefusedError';
}

/** An operator release that cannot be done: no holder, another holder, or a holder that still runs. */
export class ReleaseRefusedError extends Error {
  override readonly name = 'ReleaseRefusedError';
}

/** The id of the reversal of `amendmentId`: `rollback-<id>` (a recorded reference value, kept). */
export const reversalAmendmentId = (amendmentId: string): string => `rollback-${amendmentId}`;

export class AmendctlClient {
  private signer: { key: ApprovalSigner; via: ProofMethod } | undefined;
  constructor(
    readonly client: Client,
    readonly taskQueue: string = TASK_QUEUE_DEFAULT,
  ) {}

  /**
   * Sign every approval and rejection this client sends with this key (src/approvals/token.ts):
   * a person's own key (`via` personal-key), or an identity provider's after it proved who the
   * approver is. Without a signer, a decision counts only if it carries its own `proof`.
   */
  signWith(key: ApprovalSigner, via: ProofMethod = key.approver ? 'personal-key' : 'service'): this {
    this.signer = { key, via };
    return this;
  }

  /**
   * The proof for one decision on the amendment's current plan: signed by `key` (default: this
   * client's signer). The token binds the amendment, its plan hash, the decision, the approver and
   * the comment or reason, and expires (default 10 minutes).
   */
  async proofFor(
    amendmentId: string,
    decision: DecisionKind,
    by: string,
    text?: string,
    key = this.signer?.key,
    via = this.signer?.via,
    view?: AmendmentView,
  ): Promise<string> {
    if (!key)
      throw new ApprovalRefusedError(
        "no approval key to sign with: give the approver's key (amendctl approve --key FILE, or AMENDCTL_APPROVER_KEY)",
        'NoApprovalKey',
      );
    const v = view ?? (await this.getStatus(amendmentId));
    if (v.status !== 'pending_approval' || !v.planHash)
      throw new ApprovalRefusedError(
        `${amendmentId} is ${v.status}, not pending approval${v.reason ? ` (${v.reason})` : ''}`,
        'NotPendingApproval',
      );
    return key.sign({
      amendmentId,
      planHash: v.planHash,
      decision,
      by,
      via: via ?? (key.approver ? 'personal-key' : 'service'),
      ...(text !== undefined ? { text } : {}),
    }).token;
  }

  /** The decision as it will be sent, with a proof of this client's signer unless it has one (the text signed is the one sent). */
  private async withProof<
    T extends { by: string; proof?: string | undefined; comment?: string | undefined; reason?: string | undefined },
  >(amendmentId: string, decision: DecisionKind, d: T): Promise<T> {
    if (d.proof || !this.signer) return d;
    // The first release's amendments (workflow type amendmentWorkflow, still draining) have no plan hash and decide by name.
    const v = await this.getStatus(amendmentId);
    if (v.status === 'pending_approval' && !v.planHash) return d;
    return {
      ...d,
      proof: await this.proofFor(
        amendmentId,
        decision,
        d.by,
        decision === 'approve' ? d.comment : d.reason,
        this.signer.key,
        this.signer.via,
        v,
      ),
    };
  }

  static async connect(
    target: TemporalTarget = temporalTarget(),
    taskQueue = process.env.AMENDCTL_TASK_QUEUE ?? TASK_QUEUE_DEFAULT,
  ): Promise<AmendctlClient> {
    const connection = await Connection.connect({
      ...(target.connectionOptions as Parameters<typeof Connection.connect>[0]),
      connectTimeout: '5s',
    });
    // Payloads are encrypted (src/codec): keys from AMENDCTL_CODEC_KEYS / AMENDCTL_CODEC_KEY_FILE / the dev key file.
    // Tracing installed in this process (src/observability/tracing.ts): the caller's trace continues into the workflow.
    const interceptors = currentTracing()
      ? { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } }
      : {};
    const client = new AmendctlClient(
      new Client({ connection, namespace: target.namespace, dataConverter: dataConverter(), ...interceptors }),
      taskQueue,
    );
    // The approver's own key (or a trusted service's): approvals and rejections are signed with it.
    const key = process.env.AMENDCTL_APPROVER_KEY;
    return key ? client.signWith(loadSigningKey(key)) : client;
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }

  /** Validate and start; the same amendmentId again returns the existing workflow. */
  async submitAmendment(document: unknown, options: SubmitOptions = {}): Promise<SubmitResult> {
    return this.startSubmission(await this.prepareSubmission(document, options));
  }

  /**
   * Everything a start checks before it calls Temporal: the document, the options, and the size
   * of the workflow input as it would be sent (compressed, then encrypted), which Temporal would
   * refuse with an opaque error. The webhook intake (src/api/intake.ts) prepares before it
   * acknowledges, so what it keeps can start.
   */
  async prepareSubmission(document: unknown, options: SubmitOptions = {}): Promise<Submission> {
    const amendment: Amendment = parseWith(AmendmentDocumentSchema, document, 'invalid amendment');
    checkInput(SubmitOptionsSchema, options, 'invalid submit options');
    const opts = {
      ...(options.retryBudgetSeconds ? { retryBudgetSeconds: options.retryBudgetSeconds } : {}),
      ...(options.rollback ? { rollback: options.rollback } : {}),
    };
    const input: Submission['input'] = { amendment, ...(Object.keys(opts).length > 0 ? { options: opts } : {}) };
    const payloads = (await encodeToPayloads(this.client.options.loadedDataConverter, input)) ?? [];
    const bytes = payloads.reduce((n, p) => n + (p.data?.length ?? 0), 0);
    if (bytes > MAX_PAYLOAD_BYTES) {
      throw new InputError('amendment too large for Temporal', [
        {
          path: '',
          message: `${bytes} bytes once compressed and encrypted; Temporal takes at most ${MAX_PAYLOAD_BYTES} bytes per payload (split the amendment, or keep large data out of custom clauses)`,
        },
      ]);
    }
    return { input, hash: contentHash(amendment), ...(options.claimedBy ? { claimedBy: options.claimedBy } : {}) };
  }

  /** Start a prepared submission: one call to Temporal, and a second only for a duplicate (to tell whether it differs). */
  async startSubmission(sub: Submission): Promise<SubmitResult> {
    const { amendment } = sub.input;
    const workflowId = amendmentWorkflowId(amendment.amendmentId);
    const base = { amendmentId: amendment.amendmentId, contractId: amendment.contractId, workflowId };
    try {
      const handle = await this.client.workflow.start<typeof amendmentV4>(AMENDMENT_WORKFLOW_TYPE, {
        taskQueue: this.taskQueue,
        workflowId,
        args: [sub.input],
        // A running or closed workflow with this id means: already submitted. Start nothing.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: SA.ContractId, value: amendment.contractId },
          { key: SA.AmendmentId, value: amendment.amendmentId },
          { key: SA.AmendmentStatus, value: 'queued' },
        ],
        memo: {
          amendmentHash: sub.hash,
          sequence: amendment.sequence,
          ...(sub.claimedBy ? { claimedBy: sub.claimedBy } : {}),
        },
        staticSummary: `Amendment ${amendment.amendmentId} of contract ${amendment.contractId}, sequence ${amendment.sequence}${amendment.reverses ? `, reverses ${amendment.reverses}` : ''}`,
      });
      return { ...base, runId: handle.firstExecutionRunId, duplicate: false };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        const d = await this.describe(workflowId);
        return { ...base, runId: d?.runId ?? '', duplicate: true, differs: d?.memo?.amendmentHash !== sub.hash };
      }
      throw err;
    }
  }

  async approve(amendmentId: string, decision: ApproveInput): Promise<void> {
    const d = await this.withProof(
      amendmentId,
      'approve',
      checkInput(ApproveInputSchema, decision, 'invalid approval'),
    );
    await this.handle(amendmentId).signal(approveSignal, { ...d, at: d.at ?? new Date().toISOString() });
  }

  /**
   * Approve through the Update `approveUpdate`: the answer is immediate. A not-allowed
   * approver, the submitter, a repeat, or an amendment not pending approval throws
   * ApprovalRefusedError with the workflow's reason (and nothing is recorded).
   */
  async approveNow(amendmentId: string, decision: ApproveInput): Promise<ApproveUpdateResult> {
    const d = await this.withProof(
      amendmentId,
      'approve',
      checkInput(ApproveInputSchema, decision, 'invalid approval'),
    );
    try {
      return await this.handle(amendmentId).executeUpdate(approveUpdate, {
        args: [{ ...d, at: d.at ?? new Date().toISOString() }],
      });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        const cause = err.cause as { message?: string; type?: string } | undefined;
        throw new ApprovalRefusedError(cause?.message ?? err.message, cause?.type ?? 'ApprovalRefused');
      }
      if (err instanceof WorkflowNotFoundError)
        throw new AmendmentNotFoundError(
          `no amendment ${amendmentId} (workflow amendment-${amendmentId} not found or not running)`,
        );
      throw err;
    }
  }

  /** Cancel a scheduled or queued amendment before it takes effect (it ends `rejected`). */
  async cancel(amendmentId: string, decision: CancelInput): Promise<void> {
    const d = checkInput(CancelInputSchema, decision, 'invalid cancellation');
    await this.handle(amendmentId).signal(cancelSignal, { ...d, at: d.at ?? new Date().toISOString() });
  }

  /**
   * An operator's reversal: submits `rollback-<id>` with the contract's next sequence,
   * `reverses: <id>` and `submittedBy: by`. It always needs approval under the approval
   * policy (so `by` can never approve it alone), and its view names who asked and why.
   * Only a completed amendment that is the contract's last applied one can be reversed.
   */
  async reverse(amendmentId: string, request: { by: string; reason: string }): Promise<SubmitResult> {
    checkId('AMENDMENT_ID', amendmentId);
    const checked = checkInput(
      RejectInputSchema,
      { by: request.by, reason: request.reason },
      'invalid reversal request',
    );
    const by = checked.by.trim();
    const reason = checked.reason.trim();
    const id = reversalAmendmentId(amendmentId);
    const earlier = await this.describe(amendmentWorkflowId(id));
    if (earlier)
      return {
        amendmentId: id,
        contractId: earlier.typedSearchAttributes.get(SA.ContractId) ?? '',
        workflowId: amendmentWorkflowId(id),
        runId: earlier.runId,
        duplicate: true,
        differs: false,
      };
    const target = await this.getStatus(amendmentId);
    if (target.status !== 'completed')
      throw new ReversalRefusedError(
        `${amendmentId} is ${target.status}, not completed: only a completed amendment can be reversed`,
      );
    const { view: contract } = await this.getContract(target.contractId);
    if (contract.lastAmendmentId !== amendmentId) {
      throw new ReversalRefusedError(
        `${amendmentId} is not the last applied amendment of contract ${target.contractId} (that is ${contract.lastAmendmentId ?? 'none'}, sequence ${contract.appliedSequence}); reverse the later ones first`,
      );
    }
    const doc = {
      amendmentId: id,
      contractId: target.contractId,
      sequence: contract.appliedSequence + 1,
      submittedBy: by,
      reverses: amendmentId,
    };
    return this.submitAmendment(doc, { rollback: { requestedBy: by, reason } });
  }

  /** @deprecated The former name of `reverse`. */
  rollback(amendmentId: string, request: { by: string; reason: string }): Promise<SubmitResult> {
    return this.reverse(amendmentId, request);
  }

  async reject(amendmentId: string, decision: RejectInput): Promise<void> {
    const d = await this.withProof(amendmentId, 'reject', checkInput(RejectInputSchema, decision, 'invalid rejection'));
    await this.handle(amendmentId).signal(rejectSignal, { ...d, at: d.at ?? new Date().toISOString() });
  }

  /** The amendment's view: queried while it runs, its result once it has ended. */
  async getStatus(amendmentId: string): Promise<AmendmentView> {
    const handle = this.handle(amendmentId);
    let desc;
    try {
      desc = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError)
        throw new AmendmentNotFoundError(`no amendment ${amendmentId} (workflow ${handle.workflowId} not found)`);
      throw err;
    }
    if (desc.status.name === 'RUNNING') {
      try {
        const view = await handle.query(statusQuery);
        if (view.status === 'running') {
          const progress = await this.batchProgress(desc.raw.pendingActivities ?? []);
          if (progress.length > 0) view.progress = progress;
        }
        return view;
      } catch (err) {
        // No worker to answer (all down, or deploying): the search attributes still say where it is.
        const status = desc.typedSearchAttributes.get(SA.AmendmentStatus) as AmendmentView['status'] | undefined;
        return {
          ...emptyView(amendmentId, handle.workflowId),
          contractId: desc.typedSearchAttributes.get(SA.ContractId) ?? '',
          status: status ?? 'queued',
          reason: `no worker answered (${(err as Error).message}); status from the search attributes`,
          submittedAt: desc.startTime.toISOString(),
        };
      }
    }
    if (desc.status.name === 'COMPLETED') return (await handle.result()) as AmendmentView;
    // Terminated, cancelled, timed out or failed: an operator intervened; say so plainly.
    const view = await handle.query(statusQuery).catch(() => undefined);
    return {
      ...(view ?? emptyView(amendmentId, handle.workflowId)),
      status: 'failed',
      reason: `the workflow was ${desc.status.name.toLowerCase().replace('_', ' ')} by an operator or the server; check every target by hand`,
    };
  }

  /** Wait until the amendment reaches a final status (completed, invalid, rejected, rolled_back, failed). */
  async waitForResult(
    amendmentId: string,
    opts: { pollMs?: number; onUpdate?: (v: AmendmentView) => void } = {},
  ): Promise<AmendmentView> {
    let last = '';
    for (;;) {
      const v = await this.getStatus(amendmentId);
      const key = `${v.status}|${v.reason ?? ''}`;
      if (key !== last) {
        opts.onUpdate?.(v);
        last = key;
      }
      if (FINAL_STATUSES.has(v.status)) return v;
      if (v.status === 'pending_approval' && !opts.onUpdate) {
        // Nothing to report to: block on the result rather than poll.
        return (await this.handle(amendmentId).result()) as AmendmentView;
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
  }

  async getContract(contractId: string): Promise<{ view: ContractView; applied: AppliedStateView | null }> {
    checkId('CONTRACT_ID', contractId);
    const h = this.client.workflow.getHandle(contractWorkflowId(contractId));
    return { view: await h.query(contractQuery), applied: await h.query(appliedStateQuery) };
  }

  /**
   * An operator frees a contract's turn from a holder whose workflow has ended (`amendctl contract
   * release`): the contract takes it back as it does when a keeper reports the end (what the holder
   * applied is compensated; an audit record names `by` and `reason`). A holder that still runs is
   * refused: reject or cancel it instead. Resolves with the contract's view once the turn is free.
   */
  async releaseTurn(
    contractId: string,
    request: { by: string; reason: string; amendmentId?: string; timeoutMs?: number },
  ): Promise<ContractView> {
    checkId('CONTRACT_ID', contractId);
    checkInput(ReleaseInputSchema, request, 'invalid release');
    const h = this.client.workflow.getHandle(contractWorkflowId(contractId));
    const view = await h.query(contractQuery).catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError)
        throw new ReleaseRefusedError(
          `contract ${contractId} has no amendments (no workflow ${contractWorkflowId(contractId)})`,
        );
      throw err;
    });
    const holder = view.holding ?? (view.holder ? { amendmentId: view.holder, sequence: 0 } : undefined);
    if (!holder) throw new ReleaseRefusedError(`contract ${contractId} has no holder: its turn is free`);
    if (request.amendmentId && request.amendmentId !== holder.amendmentId)
      throw new ReleaseRefusedError(
        `amendment ${request.amendmentId} does not hold the turn of contract ${contractId}; ${holder.amendmentId} does`,
      );
    const d = await this.client.workflow
      .getHandle(amendmentWorkflowId(holder.amendmentId))
      .describe()
      .catch(() => undefined);
    if (d?.status.name === 'RUNNING') {
      const status = await this.getStatus(holder.amendmentId).then(
        (v) => v.status,
        () => 'running',
      );
      throw new ReleaseRefusedError(
        `amendment ${holder.amendmentId} holds the turn of contract ${contractId} and its workflow is running (${status}): reject it, or cancel it (temporal workflow cancel), and it releases the turn itself`,
      );
    }
    await h.signal(releaseTurnSignal, { amendmentId: holder.amendmentId, by: request.by, reason: request.reason });
    const until = Date.now() + (request.timeoutMs ?? 120_000);
    for (;;) {
      const v = await h.query(contractQuery);
      if (v.holder !== holder.amendmentId) return v;
      if (Date.now() > until)
        throw new ReleaseRefusedError(
          `contract ${contractId} still shows ${holder.amendmentId} as its holder after ${Math.round((request.timeoutMs ?? 120_000) / 1000)} s: is a worker running?`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  handle(amendmentId: string): WorkflowHandle<typeof amendmentV4> {
    checkId('AMENDMENT_ID', amendmentId);
    return this.client.workflow.getHandle<typeof amendmentV4>(amendmentWorkflowId(amendmentId));
  }

  /** Batches in flight, from their last heartbeats (a batch reports how far it got every second or so). */
  private async batchProgress(
    pending: NonNullable<WorkflowExecutionDescription['raw']['pendingActivities']>,
  ): Promise<BatchProgress[]> {
    const out: BatchProgress[] = [];
    for (const a of pending) {
      const payloads = a.heartbeatDetails?.payloads;
      if (!payloads?.length) continue;
      const [p] = (await decodeArrayFromPayloads(this.client.options.loadedDataConverter, payloads).catch(
        () => [],
      )) as Array<BatchProgress | undefined>;
      if (p && typeof p.target === 'string' && typeof p.done === 'number') out.push(p);
    }
    return out.sort((x, y) => x.target.localeCompare(y.target) || x.batch - y.batch);
  }

  private async describe(workflowId: string) {
    try {
      return await this.client.workflow.getHandle(workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }
}

function contentHash(a: Amendment): string {
  return createHash('sha256').update(canonicalJson(a)).digest('hex');
}

function emptyView(amendmentId: string, workflowId: string): AmendmentView {
  return {
    amendmentId,
    contractId: '',
    sequence: 0,
    workflowId,
    submittedBy: '',
    status: 'failed',
    changes: [],
    violations: [],
    operations: [],
    submittedAt: '',
  };
}
