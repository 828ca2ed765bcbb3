/** The chaos run's closing summary: the counts, then what went wrong (at most a few of each). */
import type { ChaosReport } from './run';

const SHOWN = 5;

export function summary(r: ChaosReport): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const checked = Object.entries(r.accountsChecked)
    .map(([t, n]) => `${n} in ${t}`)
    .join(', ');
  const others = Object.entries(r.statuses)
    .filter(([k]) => k !== 'completed')
    .map(([k, n]) => `${n} ${k}`);
  const lines = [
    `chaos: seed ${r.seed}, ${r.contracts} contracts x ${r.amendmentsPerContract} amendments`,
    `  submitted ${r.submitted}, completed ${r.completed}${others.length ? ` (also final: ${others.join(', ')})` : ''}, lost ${r.lost}`,
    `  wrong accounts ${r.wrongAccounts} (of ${checked}), duplicates ${r.duplicates}`,
    `  kills ${r.kills} (SIGKILL; ${r.workers} workers on one task queue, ${r.workerStarts} starts, ${r.workerExits.length} ended by themselves), server restarts ${r.serverRestarts} (down ${s(r.serverDownMs)}), ${r.outage.target} outage ${s(r.outage.ms)}`,
    `  wall time ${s(r.wallMs)}: ${r.ok ? 'OK' : 'FAILED'}`,
  ];
  if (r.faultsMissed.length > 0)
    lines.push(`  faults not injected (the run ended first): ${r.faultsMissed.join('; ')}`);
  const list = <T>(title: string, items: T[], total: number, line: (x: T) => string): void => {
    if (total === 0) return;
    lines.push(`  ${title} (${total}${total > SHOWN ? `, first ${SHOWN}` : ''}):`);
    for (const x of items.slice(0, SHOWN)) lines.push(`    ${line(x)}`);
  };
  list('lost', r.lostAmendments, r.lost, (x) => `${x.amendmentId}: ${x.state}`);
  list('not completed', r.notCompleted, r.notCompleted.length, (x) => `${x.amendmentId}: ${x.status} ${x.reason}`);
  list(
    'wrong accounts',
    r.wrong,
    r.wrongAccounts,
    (x) => `${x.target} ${x.account}: expected ${JSON.stringify(x.expected)}, found ${JSON.stringify(x.actual)}`,
  );
  list(
    'duplicates',
    r.duplicateUsers,
    r.duplicates,
    (x) => `${x.userName} (externalId ${x.externalId ?? 'none'}): user ${x.id}`,
  );
  list(
    'workers that ended by themselves',
    r.workerExits,
    r.workerExits.length,
    (x) => `worker ${x.slot} at ${x.at}: code ${x.code}, signal ${x.signal}: ${x.message}`,
  );
  return lines.join('\n');
}
