/**
 * The webhook intake's starter, one per API instance: a delivery is acknowledged once the
 * intake has its amendments (src/store/intake.ts); this starts their workflows at once, up to
 * `concurrency` at a time, and every `sweepMs` takes the rows no instance is starting (one that
 * died, a start that failed and is due again). A start Temporal refuses for a while (down,
 * overloaded) is retried with backoff, forever: what was acknowledged is never dropped.
 */
import { type IntakeEntry, type IntakeItem, type IntakeReceipt, type IntakeStatus, IntakeStore } from '../store/intake';
import type { AmendctlClient } from '../client';
import { intakeStartSeconds, intakeWaiting } from '../observability/metrics';

export interface IntakeOptions {
  /** Starts in flight at once (default 16). */
  concurrency?: number;
  /** How often the rows nobody is starting are looked for (default 1 s). */
  sweepMs?: number;
  /** Rows started longer ago than this are removed (default 7 days; contract systems stop redelivering long before). */
  keepStartedDays?: number;
  /** Where a start that keeps failing is told (default: stderr, at most one line a minute). */
  warn?: (line: string) => void;
}

const MAX_BACKOFF_MS = 60_000;
/** Starts waiting in this process at most (a burst beyond it waits in the intake table, not in memory). */
const MAX_QUEUED = 1000;
/** One start's deadline, within the row's lease (src/store/intake.ts), so no other instance starts it meanwhile. */
const START_DEADLINE_MS = 8_000;

export class Intake {
  private readonly queue: IntakeItem[] = [];
  private readonly queued = new Set<string>();
  private inFlight = 0;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;
  private sweeping: Promise<void> | undefined;
  private readonly idle = new Set<() => void>();
  private lastWarn = 0;
  private lastPrune = 0;
  private readonly concurrency: number;
  private readonly keepStartedDays: number;
  private readonly warn: (line: string) => void;

  constructor(
    readonly store: IntakeStore,
    private readonly client: AmendctlClient,
    opts: IntakeOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 16;
    this.keepStartedDays = opts.keepStartedDays ?? 7;
    this.warn = opts.warn ?? ((line) => process.stderr.write(`${line}\n`));
    this.sweeper = setInterval(() => void this.sweep(), opts.sweepMs ?? 1000);
    this.sweeper.unref();
  }

  static fromEnv(client: AmendctlClient, env: NodeJS.ProcessEnv = process.env, opts: IntakeOptions = {}): Intake {
    return new Intake(IntakeStore.fromEnv(env), client, opts);
  }

  /** Keep a delivery's amendments (durable once this resolves), then start the new ones. */
  async receive(entries: IntakeEntry[]): Promise<IntakeReceipt[]> {
    const receipts = await this.store.receive(entries);
    receipts.forEach((r, i) => {
      // Beyond MAX_QUEUED waiting here, a row waits in the database instead: a sweep takes it once its lease ends.
      if (r.received && this.queue.length < MAX_QUEUED)
        this.enqueue({ amendmentId: r.amendmentId, submission: entries[i]!.submission, attempts: 0 });
    });
    return receipts;
  }

  status(amendmentId: string): Promise<IntakeStatus | undefined> {
    return this.store.status(amendmentId);
  }

  /** Stop taking rows; resolves when the starts in flight have ended (what is left, another instance or the next run starts). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await this.sweeping;
    if (this.inFlight > 0) await new Promise<void>((res) => this.idle.add(res));
    await this.store.close();
  }

  private enqueue(item: IntakeItem): void {
    if (this.closed || this.queued.has(item.amendmentId)) return;
    this.queued.add(item.amendmentId);
    this.queue.push(item);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.concurrency && this.queue.length > 0) {
      const item = this.queue.shift()!;
      this.inFlight++;
      void this.start(item).finally(() => {
        this.inFlight--;
        this.queued.delete(item.amendmentId);
        if (this.inFlight === 0) for (const res of this.idle) res();
        this.pump();
      });
    }
  }

  private async start(item: IntakeItem): Promise<void> {
    const t0 = performance.now();
    try {
      const r = await this.client.client.connection.withDeadline(Date.now() + START_DEADLINE_MS, () =>
        this.client.startSubmission(item.submission),
      );
      intakeStartSeconds.observe((performance.now() - t0) / 1000);
      await this.store.started(r).catch(() => undefined); // not recorded: a later sweep starts it again, which finds it started
    } catch (err) {
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(item.attempts, 10));
      const why = (err as Error)?.message ?? String(err);
      await this.store.retryLater(item.amendmentId, delay, why).catch(() => undefined); // not recorded: its lease ends and a sweep takes it
      if (Date.now() - this.lastWarn > 60_000) {
        this.lastWarn = Date.now();
        this.warn(
          `amendctl serve: intake: starting amendment ${item.amendmentId} failed (attempt ${item.attempts + 1}; again in ${Math.round(delay / 1000)} s): ${why}`,
        );
      }
    }
  }

  /** The rows nobody is starting, while there is room; and now and then the started ones past keeping. */
  private sweep(): Promise<void> {
    if (this.closed || this.sweeping) return this.sweeping ?? Promise.resolve();
    this.sweeping = (async () => {
      try {
        const room = this.concurrency * 2 - this.queue.length - this.inFlight;
        if (room > 0) for (const item of await this.store.claim(room)) this.enqueue(item);
        intakeWaiting.set(await this.store.waiting());
        if (Date.now() - this.lastPrune > 3600_000) {
          this.lastPrune = Date.now();
          await this.store.prune(this.keepStartedDays);
        }
      } catch {
        // The database away: the next sweep tries again; deliveries meanwhile answer 503.
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }
}
