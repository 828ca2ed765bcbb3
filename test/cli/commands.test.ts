/**
 * The command table (src/cli/main.ts): every command `amendctl --help` lists loads from its
 * module and answers its own --help (a command named with a wrong export fails here, not on a
 * user's first try).
 */
import { main } from '../../src/cli/main';
import type { CliIO } from '../../src/cli/io';

function captured(): CliIO & { text: () => string } {
  const out: string[] = [];
  return {
    out: (s: string) => void out.push(s),
    err: (s: string) => void out.push(s),
    text: () => out.join('\n'),
  } as CliIO & { text: () => string };
}

test('every listed command loads and answers --help', async () => {
  const io = captured();
  expect(await main(['--help'], io)).toBe(0);
  const names = io
    .text()
    .split('\n')
    .filter((l) => l.startsWith('  '))
    .map((l) => l.trim().split(/\s+/)[0]!);
  expect(names).toEqual(
    expect.arrayContaining([
      'dev',
      'worker',
      'serve',
      'submit',
      'status',
      'approve',
      'reverse',
      'rollback',
      'audit',
      'drift',
      'reconcile',
      'rules',
    ]),
  );
  expect(names).toHaveLength(20);
  for (const name of names) {
    const own = captured();
    expect([name, await main([name, '--help'], own)]).toEqual([name, 0]);
    expect(own.text()).toMatch(/usage: amendctl /);
  }
}, 60_000);
