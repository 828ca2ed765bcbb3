/**
 * `amendctl replay HISTORY.json...`: replays workflow histories (as `temporal workflow show
 * --output json` writes them, payloads decoded) against this build's workflow code. Run it
 * before deploying a workflow change: a history that no longer replays means the change
 * needs `patched()`.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { workflowSource } from '../../worker';
import { parse } from '../common';
import { type Command, UsageError } from '../io';
import { help } from './amendments';

const USAGE = 'amendctl replay HISTORY.json [HISTORY.json ...]';
export const replayCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help)
    return help(
      io,
      USAGE,
      'Replays captured workflow histories against this build of the workflow code and names any that diverge.',
    );
  if (positionals.length === 0) throw new UsageError(`expected at least one history file\nusage: ${USAGE}`);
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // installed already (in-process use)
  }
  let failed = 0;
  for (const file of positionals) {
    let history: unknown;
    try {
      history = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      io.err(`✗ ${file}: cannot read: ${(err as Error).message}`);
      failed++;
      continue;
    }
    try {
      await Worker.runReplayHistory(
        { ...workflowSource(), replayName: basename(file) },
        history,
        `replay-${basename(file)}`,
      );
      io.out(`✓ ${file}`);
    } catch (err) {
      failed++;
      io.err(`✗ ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  io.out(`${positionals.length - failed} replayed, ${failed} diverged`);
  return failed === 0 ? 0 : 1;
};
