/** Waiting in a chaos run: plain sleeps, retries until a deadline, and waits that end with the run. */
import { InputError } from '../domain/errors';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Call `f` until it succeeds or the deadline passes (then its last error); bad input is not retried. */
export async function retrying<T>(f: () => Promise<T>, deadline: number): Promise<T> {
  for (let wait = 250; ; wait = Math.min(wait * 2, 3000)) {
    try {
      return await f();
    } catch (err) {
      if (err instanceof InputError || Date.now() + wait > deadline) throw err;
      await sleep(wait);
    }
  }
}

/** Waits that end at once when the run is over. */
export class RunClock {
  private ended = false;
  private readonly wakers = new Set<() => void>();

  get over(): boolean {
    return this.ended;
  }

  end(): void {
    this.ended = true;
    for (const wake of [...this.wakers]) wake();
  }

  /**
   * At least `ms` by Date.now() (what the run measures with), unless the run ends first: a Node
   * timer can fire a millisecond before Date.now() has moved on by its delay, so it is set again
   * for what is left.
   */
  nap(ms: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    const until = Date.now() + ms;
    return new Promise((res) => {
      let timer: NodeJS.Timeout;
      const wake = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        res();
      };
      const due = (): void => {
        const left = until - Date.now();
        if (left > 0) timer = setTimeout(due, left);
        else wake();
      };
      timer = setTimeout(due, ms);
      this.wakers.add(wake);
    });
  }
}
