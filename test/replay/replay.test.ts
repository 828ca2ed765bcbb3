/**
 * Replays captured histories (test/replay/histories, see capture.histories.ts) against the
 * current workflow code, through `amendctl replay` (a process of its own, as an operator
 * runs it before a deploy): a change that would break a running workflow fails here, and
 * must go through `patched()`.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runDir } from '../harness/proc';
import { mkdirSync } from 'node:fs';

const DIR = join(__dirname, 'histories');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

function replay(paths: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', 'amendctl'), 'replay', ...paths], { maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('there are captured histories of every path', () => {
  expect(files).toEqual(expect.arrayContaining(['approved.json', 'cancelled.json', 'completed.json', 'contract.json', 'queued-then-applied.json', 'rejected.json', 'rolled-back.json', 'rollback.json', 'scheduled.json']));
});

test('every captured history replays against the current workflow code', async () => {
  const r = await replay(files.map((f) => join(DIR, f)));
  expect(r.stderr).toBe('');
  expect(r.stdout).toContain(`${files.length} replayed, 0 diverged`);
  expect(r.code).toBe(0);
}, 120_000);

test('a history the code does not produce is named as diverging', async () => {
  // The completed run with its first activity renamed: the code schedules another one.
  const h = JSON.parse(readFileSync(join(DIR, 'completed.json'), 'utf8')) as { events: Array<Record<string, { activityType?: { name: string } }>> };
  const scheduled = h.events.find((e) => e.activityTaskScheduledEventAttributes)!;
  scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'somethingElse';
  const dir = runDir('replay');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'tampered.json');
  writeFileSync(file, JSON.stringify(h));
  const r = await replay([file]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/tampered\.json/);
  expect(r.stdout).toContain('0 replayed, 1 diverged');
}, 120_000);
