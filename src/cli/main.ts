/**
 * amendctl: the command line. Each command lives in ./commands and returns its exit code.
 * Exit codes: 0 ok/completed, 1 the amendment did not complete (invalid, rejected,
 * rolled_back, failed), 2 usage or input error, 3 cannot reach Temporal, 70 internal.
 */
import { InputError } from '../domain/errors';
import { safeLines, shown } from '../domain/text';
import { TemporalUnreachable } from './common';
import { type CliIO, type Command, processIO, UsageError } from './io';
import { applyFileEnv, SECRET_ENV } from '../worker/env';

/** `amendctl --help`: a command a line, its name and what it does. */
const SUMMARIES = `
dev           run the embedded stack: Temporal dev server (SQLite, Web UI) and a worker
codec-server  run the payload codec server (decode/encode for the Web UI and the temporal CLI)
worker        run a worker against any Temporal (address, namespace, TLS/API key from the environment or a profile)
serve         serve the HTTP API v1 (amendments, contracts, signed webhooks, /openapi.json); serve key new: an API key
users         users add ID --file FILE: a local user of the approvals inbox (password on stdin); users key: a session key
submit        submit an amendment (JSON or YAML); --wait follows it to the end
status        show an amendment: status, plan, approvals, operations
approve       approve an amendment pending approval
reject        reject an amendment pending approval
cancel        cancel a scheduled or queued amendment before it takes effect
reverse       reverse a completed amendment: a new amendment that restores the contract before it (needs approval)
rollback      the former name of reverse (an alias)
approval-key  approval-key new: a key that signs approvals (a person's own, or a service's) and its trust-file entry
contract      contract ID: its line (applied, holder since when, waiting, scheduled); contract release ID: free an ended holder's turn
audit         audit AMENDMENT_ID | --contract ID [--format json|csv|md]; audit verify: the audit record and the durable log check
replay        replay captured workflow histories against this build (before deploying a workflow change)
plan          dry run: the plan an amendment would get (no Temporal); --json for data
drift         drift [CONTRACT_ID]: what the targets hold against the applied contract and the rules (read-only); --json for data
reconcile     reconcile run|schedule|unschedule|approve|reject: check for drift and report or repair it, by hand or on a Temporal Schedule
rules         rules validate RULES | rules test RULES CASES: check and test a policy
`;

/** Each command's module in ./commands, loaded only when it runs (a command starts fast). */
const modules = {
  runtime: () => import('./commands/runtime'),
  serve: () => import('./commands/serve'),
  users: () => import('./commands/users'),
  amendments: () => import('./commands/amendments'),
  approval_key: () => import('./commands/approval-key'),
  contract: () => import('./commands/contract'),
  audit: () => import('./commands/audit'),
  replay: () => import('./commands/replay'),
  plan: () => import('./commands/plan'),
  drift: () => import('./commands/drift'),
  rules: () => import('./commands/rules'),
};

/** Each command: its module and its export there. */
const EXPORTS: Record<string, [keyof typeof modules, string]> = {
  dev: ['runtime', 'devCommand'],
  'codec-server': ['runtime', 'codecServerCommand'],
  worker: ['runtime', 'workerCommand'],
  serve: ['serve', 'serveCommand'],
  users: ['users', 'usersCommand'],
  submit: ['amendments', 'submitCommand'],
  status: ['amendments', 'statusCommand'],
  approve: ['amendments', 'approveCommand'],
  reject: ['amendments', 'rejectCommand'],
  cancel: ['amendments', 'cancelCommand'],
  reverse: ['amendments', 'reverseCommand'],
  rollback: ['amendments', 'reverseCommand'],
  'approval-key': ['approval_key', 'approvalKeyCommand'],
  contract: ['contract', 'contractCommand'],
  audit: ['audit', 'auditCommand'],
  replay: ['replay', 'replayCommand'],
  plan: ['plan', 'planCommand'],
  drift: ['drift', 'driftCommand'],
  reconcile: ['drift', 'reconcileCommand'],
  rules: ['rules', 'rulesCommand'],
};

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = Object.fromEntries(
  SUMMARIES.trim()
    .split('\n')
    .map((line) => {
      const [name, summary] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ')).trim()];
      const [module, exported] = EXPORTS[name]!;
      return [name, { summary, load: async () => (await modules[module]())[exported as never] as Command }];
    }),
);

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'amendctl: contract amendments turned into access changes, on Temporal',
    '',
    'usage: amendctl <command> [options]   (amendctl <command> --help for details)',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    io.err(`amendctl: unknown command '${shown(name, 60)}'\n\n${usage()}`);
    return 2;
  }
  try {
    // Secrets mounted as files (Compose, Kubernetes): NAME_FILE sets NAME (src/worker/env.ts).
    applyFileEnv(process.env, SECRET_ENV);
    return await (
      await cmd.load()
    )(rest, io);
  } catch (err) {
    // What the user typed comes back in these messages: written so it cannot forge lines or reorder text.
    if (err instanceof UsageError || err instanceof InputError) {
      io.err(`amendctl ${name}: ${safeLines(err.message)}`);
      return 2;
    }
    if (err instanceof TemporalUnreachable) {
      io.err(`amendctl ${name}: ${err.message}`);
      return 3;
    }
    throw err;
  }
}
