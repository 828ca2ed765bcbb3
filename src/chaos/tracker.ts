/**
 * The amendments of a chaos run as Temporal sees them, through the typed client: submitted
 * (retried while the server restarts: a submission is idempotent by amendment id), then
 * followed until final. A running amendment is only described (its search attribute says
 * where it is, no worker needed); a closed one gives its view. An amendment submitted whose
 * workflow Temporal no longer knows is missing.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { type AmendctlClient, type AmendmentView, FINAL_STATUSES, SA } from '../client';
import type { Amendment } from '../domain/amendment';
import { retrying } from './clock';

export type Whereabouts =
  | { state: 'unsubmitted' }
  | { state: 'open'; status: string }
  | { state: 'missing' }
  | { state: 'final'; view: AmendmentView };

export class AmendmentTracker {
  private readonly where = new Map<string, Whereabouts>();

  constructor(
    private readonly client: AmendctlClient,
    amendments: readonly Amendment[],
  ) {
    for (const a of amendments) this.where.set(a.amendmentId, { state: 'unsubmitted' });
  }

  get total(): number {
    return this.where.size;
  }

  count(state: Whereabouts['state']): number {
    let n = 0;
    for (const w of this.where.values()) if (w.state === state) n++;
    return n;
  }

  get submitted(): number {
    return this.total - this.count('unsubmitted');
  }

  get final(): number {
    return this.count('final');
  }

  allFinal(): boolean {
    return this.final === this.total;
  }

  async submit(a: Amendment, deadline: number): Promise<void> {
    await retrying(() => this.client.submitAmendment(a), deadline);
    this.where.set(a.amendmentId, { state: 'open', status: 'queued' });
  }

  /** Look at every submitted amendment not yet final, `concurrency` at a time; errors (the server restarting) leave it as it was. */
  async poll(concurrency = 4): Promise<void> {
    const open = [...this.where].filter(([, w]) => w.state === 'open' || w.state === 'missing').map(([id]) => id);
    const next = (): string | undefined => open.shift();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let id = next(); id !== undefined; id = next()) {
          const w = await this.look(id).catch(() => undefined);
          if (w) this.where.set(id, w);
        }
      }),
    );
  }

  private async look(id: string): Promise<Whereabouts> {
    let d;
    try {
      d = await this.client.handle(id).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { state: 'missing' };
      throw err;
    }
    if (d.status.name === 'RUNNING')
      return { state: 'open', status: d.typedSearchAttributes.get(SA.AmendmentStatus) ?? 'queued' };
    const view = await this.client.getStatus(id);
    return FINAL_STATUSES.has(view.status) ? { state: 'final', view } : { state: 'open', status: view.status };
  }

  /** Final amendments by status. */
  statuses(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.where.values()) if (w.state === 'final') out[w.view.status] = (out[w.view.status] ?? 0) + 1;
    return out;
  }

  /** Those not final, with where they are. */
  notFinal(): Array<{ amendmentId: string; state: string }> {
    return [...this.where].flatMap(([amendmentId, w]) =>
      w.state === 'final' ? [] : [{ amendmentId, state: w.state === 'open' ? w.status : w.state }],
    );
  }

  /** Final but not completed, with the reason. */
  notCompleted(): Array<{ amendmentId: string; status: string; reason: string }> {
    return [...this.where].flatMap(([amendmentId, w]) =>
      w.state === 'final' && w.view.status !== 'completed'
        ? [{ amendmentId, status: w.view.status, reason: w.view.reason ?? '' }]
        : [],
    );
  }
}
