import { z } from 'zod';

/** `rateLimit` in a target's configuration. */
export const RateLimitSchema = z.object({ perSecond: z.number().positive(), burst: z.number().int().positive().optional() }).strict();
export type RateLimitConfig = z.infer<typeof RateLimitSchema>;

const shared = new Map<string, RateLimiter>();

/**
 * The one limiter of a target in this process, shared by every activity and every connector
 * instance of that target (the first configuration seen for a target wins). Undefined: no limit.
 */
export function targetRateLimiter(target: string, limit: RateLimitConfig | undefined): RateLimiter | undefined {
  if (!limit) return undefined;
  let l = shared.get(target);
  if (!l) shared.set(target, (l = new RateLimiter(limit.perSecond, limit.burst)));
  return l;
}

/**
 * A token bucket per target, shared by every activity of that target in this worker
 * process, so a burst of retries cannot burn a provider's shared rate limit.
 */
export class RateLimiter {
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
