import { z } from 'zod';

/** `rateLimit` in a target's configuration. */
export const RateLimitSchema = z
  .object({ perSecond: z.number().positive(), burst: z.number().int().positive().optional() })
  .strict();
export type RateLimitConfig = z.infer<typeof RateLimitSchema>;

/** What a connector asks of its target's limiter. */
export interface RateLimiter {
  /** Resolves when the caller may send one request. */
  acquire(): Promise<void>;
  /** After a 429 with Retry-After: hold everyone back until then. */
  pause(ms: number): void;
}

/** A bucket every worker draws from (src/store/rate.ts), so a limit holds across workers. */
export interface SharedTokenSource {
  take(want: number): Promise<{ granted: number; waitMs: number }>;
  pause(ms: number): Promise<void>;
}

const limiters = new Map<string, RateLimiter>();
let sharedSource: ((target: string, limit: { perSecond: number; burst: number }) => SharedTokenSource) | undefined;

/**
 * Workers call this once: from then on each target's limit is one bucket shared by every
 * worker (the amendctl database), not one per process. Without it (a connector used on its
 * own, tests) the limit is per process.
 */
export function useSharedRateLimits(source: typeof sharedSource): void {
  sharedSource = source;
  limiters.clear();
}

/**
 * The one limiter of a target in this process, shared by every activity and every connector
 * instance of that target (the first configuration seen for a target wins). Undefined: no limit.
 */
export function targetRateLimiter(target: string, limit: RateLimitConfig | undefined): RateLimiter | undefined {
  if (!limit) return undefined;
  let l = limiters.get(target);
  if (!l) {
    const burst = limit.burst ?? Math.max(1, Math.ceil(limit.perSecond));
    l = sharedSource
      ? new SharedRateLimiter(sharedSource(target, { perSecond: limit.perSecond, burst }), limit.perSecond)
      : new LocalRateLimiter(limit.perSecond, burst);
    limiters.set(target, l);
  }
  return l;
}

/**
 * Tokens drawn from the shared bucket a chunk at a time (a tenth of a second's worth) and
 * handed out here; a token not used within RESERVE_MS is dropped, so a worker holds at most one
 * chunk for that long and the limit holds across workers. A failed draw (the database away) is
 * retried.
 */
export class SharedRateLimiter implements RateLimiter {
  private readonly waiters: Array<() => void> = [];
  private drawing = false;
  private readonly chunk: number;
  private reserve = 0;
  private reserveUntil = 0;

  constructor(
    private readonly source: SharedTokenSource,
    perSecond: number,
  ) {
    this.chunk = Math.max(1, Math.ceil(perSecond / 10));
  }

  acquire(): Promise<void> {
    if (this.takeReserved()) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      void this.draw();
    });
  }

  pause(ms: number): void {
    this.reserve = 0;
    this.source.pause(ms).catch(() => undefined);
  }

  private takeReserved(): boolean {
    if (this.reserve > 0 && Date.now() < this.reserveUntil) {
      this.reserve--;
      return true;
    }
    this.reserve = 0;
    return false;
  }

  private async draw(): Promise<void> {
    if (this.drawing) return;
    this.drawing = true;
    try {
      while (this.waiters.length > 0) {
        if (this.takeReserved()) {
          this.waiters.shift()!();
          continue;
        }
        let wait: number;
        try {
          const { granted, waitMs } = await this.source.take(Math.max(this.chunk, this.waiters.length));
          const served = Math.min(granted, this.waiters.length);
          for (let i = 0; i < served; i++) this.waiters.shift()!();
          this.reserve = granted - served;
          this.reserveUntil = Date.now() + RESERVE_MS;
          wait = granted > 0 ? 0 : waitMs;
        } catch {
          wait = 500;
        }
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } finally {
      this.drawing = false;
    }
  }
}

/** How long a worker may keep tokens it drew ahead. */
const RESERVE_MS = 100;

/**
 * A token bucket per target, shared by every activity of that target in this
 * process, so a burst of retries cannot burn a provider's shared rate limit.
 */
export class LocalRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;
  private queue: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number = Math.max(1, Math.ceil(perSecond)),
    private readonly now: () => number = () => Date.now(),
  ) {
    if (!(perSecond > 0)) throw new Error('rate limit must be > 0 per second');
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** Resolves when the caller may send one request. */
  acquire(): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(resolve);
      this.drain();
    });
  }

  /** After a 429 with Retry-After: hold everyone back until then. */
  pause(ms: number): void {
    this.tokens = Math.min(this.tokens, 0) - (ms / 1000) * this.perSecond;
    this.drain();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
  }

  private drain(): void {
    this.refill();
    while (this.queue.length > 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.queue.shift()!();
    }
    if (this.queue.length > 0 && !this.timer) {
      const wait = Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, wait);
      this.timer.unref?.();
    }
  }
}
