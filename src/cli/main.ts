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

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  dev: {
    summary: 'run the embedded stack: Temporal dev server (SQLite, Web UI) and a worker',
    load: async () => (await import('./commands/runtime')).devCommand,
  },
  serve: {
    summary: 'serve the HTTP API v1 (amendments, contracts, signed webhooks, /openapi.json); serve key new: an API key',
    load: async () => (await import('./commands/serve')).serveCommand,
  },
  users: {
    summary:
      'users add ID --file FILE: a local user of the approvals inbox (password on stdin); users key: a session key',
    load: async () => (await import('./commands/users')).usersCommand,
  },
  'codec-server': {
    summary: 'run the payload codec server (decode/encode for the Web UI and the temporal CLI)',
    load: async () => (await import('./commands/runtime')).codecServerCommand,
  },
  worker: {
    summary: 'run a worker against any Temporal (address, namespace, TLS/API key from the environment or a profile)',
    load: async () => (await import('./commands/runtime')).workerCommand,
  },
  submit: {
    summary: 'submit an amendment (JSON or YAML); --wait follows it to the end',
    load: async () => (await import('./commands/amendments')).submitCommand,
  },
  status: {
    summary: 'show an amendment: status, plan, approvals, operations',
    load: async () => (await import('./commands/amendments')).statusCommand,
  },
  approve: {
    summary: 'approve an amendment pending approval',
    load: async () => (await import('./commands/amendments')).approveCommand,
  },
  reject: {
    summary: 'reject an amendment pending approval',
    load: async () => (await import('./commands/amendments')).rejectCommand,
  },
  'approval-key': {
    summary: "approval-key new: a key that signs approvals (a person's own, or a service's) and its trust-file entry",
    load: async () => (await import('./commands/approval-key')).approvalKeyCommand,
  },
  cancel: {
    summary: 'cancel a scheduled or queued amendment before it takes effect',
    load: async () => (await import('./commands/amendments')).cancelCommand,
  },
  reverse: {
    summary: 'reverse a completed amendment: a new amendment that restores the contract before it (needs approval)',
    load: async () => (await import('./commands/amendments')).reverseCommand,
  },
  rollback: {
    summary: 'the former name of reverse (an alias)',
    load: async () => (await import('./commands/amendments')).reverseCommand,
  },
  contract: {
    summary:
      "contract ID: its line (applied, holder since when, waiting, scheduled); contract release ID: free an ended holder's turn",
    load: async () => (await import('./commands/contract')).contractCommand,
  },
  audit: {
    summary:
      'audit AMENDMENT_ID | --contract ID [--format json|csv|md]; audit verify: the audit record and the durable log check',
    load: async () => (await import('./commands/audit')).auditCommand,
  },
  replay: {
    summary: 'replay captured workflow histories against this build (before deploying a workflow change)',
    load: async () => (await import('./commands/replay')).replayCommand,
  },
  plan: {
    summary: 'dry run: the plan an amendment would get (no Temporal); --json for data',
    load: async () => (await import('./commands/plan')).planCommand,
  },
  drift: {
    summary:
      'drift [CONTRACT_ID]: what the targets hold against the applied contract and the rules (read-only); --json for data',
    load: async () => (await import('./commands/drift')).driftCommand,
  },
  reconcile: {
    summary:
      'reconcile run|schedule|unschedule|approve|reject: check for drift and report or repair it, by hand or on a Temporal Schedule',
    load: async () => (await import('./commands/drift')).reconcileCommand,
  },
  rules: {
    summary: 'rules validate RULES | rules test RULES CASES: check and test a policy',
    load: async () => (await import('./commands/rules')).rulesCommand,
  },
};

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
