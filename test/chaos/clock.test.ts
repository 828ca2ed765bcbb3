/**
 * The chaos run's waits (src/chaos/clock.ts): a nap lasts at least its length by Date.now(),
 * which is what the run reports (the outage's length is asserted in chaos.test.ts), and the end
 * of the run wakes every nap at once.
 */
import { RunClock } from '../../src/chaos/clock';

test('a nap lasts at least its length by Date.now(), every time', async () => {
  const clock = new RunClock();
  const short: number[] = [];
  for (let i = 0; i < 200; i++) {
    const ms = 1 + (i % 7);
    const t0 = Date.now();
    await clock.nap(ms);
    if (Date.now() - t0 < ms) short.push(Date.now() - t0);
  }
  expect(short).toEqual([]);
});

test('the end of the run wakes a nap at once, and later naps do not wait', async () => {
  const clock = new RunClock();
  let woke = false;
  const nap = clock.nap(60_000).then(() => (woke = true));
  clock.end();
  await nap;
  expect(woke).toBe(true);
  expect(clock.over).toBe(true);
  await clock.nap(60_000); // resolves at once: jest's 5 s timeout would fail it otherwise
});
