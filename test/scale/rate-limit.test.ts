/**
 * A target's rate limit holds across workers (issue 9): every worker draws from one token
 * bucket per target in the amendctl database. Three "workers" (each its own connection pool
 * and limiter, as separate processes have) ask for far more than the limit at once; what all
 * of them got together stays within the bucket's burst plus its rate over the time taken.
 */
import { Pool } from 'pg';
import { SharedRateLimiter } from '../../src/connectors/rate-limit';
import { SharedRateBuckets } from '../../src/store/rate';
import { need } from '../harness/env';

function pool(): Pool {
  return new Pool({
    host: need('AMENDCTL_TEST_PG_HOST'),
    port: Number(need('AMENDCTL_TEST_PG_PORT')),
    database: 'amendctl_audit',
    user: 'amendctl',
    password: need('AMENDCTL_TEST_PG_PASSWORD'),
    max: 4,
  });
}

test('three workers share one bucket: together they never pass the limit', async () => {
  const bucket = { perSecond: 20, burst: 20 };
  const key = `test-rate-${process.pid}-${Date.now()}`;
  const pools = [pool(), pool(), pool()];
  try {
    const grants: number[] = [];
    const t0 = Date.now();
    const runFor = 2500;
    await Promise.all(
      pools.map(async (p) => {
        const buckets = new SharedRateBuckets(p);
        const limiter = new SharedRateLimiter(
          { take: (n) => buckets.take(key, bucket, n), pause: (ms) => buckets.pause(key, bucket, ms) },
          bucket.perSecond,
        );
        // Each worker keeps 10 requests waiting at all times until the time is up.
        await Promise.all(
          Array.from({ length: 10 }, async () => {
            while (Date.now() - t0 < runFor) {
              await limiter.acquire();
              grants.push(Date.now() - t0);
            }
          }),
        );
      }),
    );
    const elapsed = (Date.now() - t0) / 1000;
    const allowed = bucket.burst + bucket.perSecond * elapsed;
    // A per-process limit would have let each of the three take that much.
    expect(grants.length).toBeLessThanOrEqual(Math.ceil(allowed));
    // And the limit is used, not starved: well over the burst alone.
    expect(grants.length).toBeGreaterThan(bucket.burst + bucket.perSecond);
    // No one-second window exceeds burst + rate.
    for (let s = 0; s + 1000 <= runFor; s += 250) {
      expect(grants.filter((g) => g >= s && g < s + 1000).length).toBeLessThanOrEqual(bucket.burst + bucket.perSecond);
    }
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
}, 60_000);

test('a Retry-After pause from one worker holds the others back', async () => {
  const bucket = { perSecond: 50, burst: 5 };
  const key = `test-pause-${process.pid}-${Date.now()}`;
  const [a, b] = [pool(), pool()];
  try {
    const ba = new SharedRateBuckets(a);
    const bb = new SharedRateBuckets(b);
    await ba.take(key, bucket, 1);
    await ba.pause(key, bucket, 1500);
    const t0 = Date.now();
    const other = new SharedRateLimiter(
      { take: (n) => bb.take(key, bucket, n), pause: (ms) => bb.pause(key, bucket, ms) },
      bucket.perSecond,
    );
    await other.acquire();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1200);
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
}, 30_000);
