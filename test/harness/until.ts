/**
 * Poll `fn` until it gives a value (undefined, or a throw, counts as not yet), or fail naming
 * `what` and the last error seen. The way a test waits for something: a condition with a
 * deadline, never a fixed sleep.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await fn().catch((err: unknown) => {
      last = err;
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(
        `${what}: not within ${timeoutMs} ms${last !== undefined ? ` (last error: ${String((last as Error)?.message ?? last)})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
