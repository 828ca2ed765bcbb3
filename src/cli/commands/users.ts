/**
 * `amendctl users add ID --file FILE [--name TEXT]`: a local user of the approvals inbox (or a new
 * password for one), its password read from standard input (the first line) or asked twice at the
 * terminal without echo, never from the command line. `amendctl users key`: a new session key for
 * `amendctl serve --session-keys FILE`.
 */
import { addUser, passwordProblem } from '../../api/inbox/users';
import { newSessionKey } from '../../api/inbox/session';
import { BusinessIdSchema } from '../../domain/amendment';
import { parse } from '../common';
import { type Command, UsageError } from '../io';
import { help } from './amendments';

const USAGE =
  'amendctl users add ID --file FILE [--name TEXT] (the password on standard input, or asked at the terminal) | amendctl users key';
const WHAT = [
  'add: adds a local user of the approvals inbox (amendctl serve --users FILE), or sets a new password for one. The file keeps only bcrypt hashes; it is created (mode 0600) when missing.',
  'The password is the first line of standard input (printf %s "$PASSWORD" | amendctl users add dana --file users.yaml), or asked twice at a terminal; never an argument.',
  `The user id is the approver id the approval policy names (approvers: [dana]). key: prints a new session key for --session-keys FILE (one line; several keys, the first sealing, rotate them).`,
].join('\n');

export type ReadSecret = (prompt: string) => Promise<string>;

/** The command, with how it reads the password (tests give their own). */
export function usersCommandWith(readSecret: ReadSecret, interactive: () => boolean): Command {
  return async (argv, io) => {
    const { values, positionals } = parse(argv, { file: { type: 'string' }, name: { type: 'string' } }, USAGE);
    if (values.help) return help(io, USAGE, WHAT);
    const [verb, id, ...rest] = positionals;
    if (verb === 'key' && !id) {
      io.out(newSessionKey());
      return 0;
    }
    if (verb !== 'add' || !id || rest.length > 0) throw new UsageError(`usage: ${USAGE}`);
    if (!BusinessIdSchema.safeParse(id).success)
      throw new UsageError(`ID: an id of letters, digits, ".", "_", ":" and "-" (the approver id), got "${id}"`);
    if (!values.file)
      throw new UsageError(`add needs --file FILE (the users file amendctl serve --users reads)\nusage: ${USAGE}`);
    const password = await readSecret(`password for ${id}: `);
    const why = passwordProblem(password.normalize('NFC'));
    if (why) throw new UsageError(`the password is not accepted: ${why}`);
    if (interactive() && (await readSecret('again: ')) !== password)
      throw new UsageError('the two passwords differ; nothing was changed');
    const { replaced } = await addUser(values.file, { id, password, ...(values.name ? { name: values.name } : {}) });
    io.err(`${replaced ? 'new password for' : 'added'} ${id} in ${values.file}`);
    return 0;
  };
}

/** The first line of standard input, or typed at the terminal without echo. */
export const readSecretFromStdin: ReadSecret = async (prompt) => {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) {
      chunks.push(c as Buffer);
      if (Buffer.concat(chunks).includes(10) || Buffer.concat(chunks).length > 4096) break;
    }
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let typed = '';
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.resume();
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new UsageError('cancelled; nothing was changed'));
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
};

export const usersCommand: Command = usersCommandWith(readSecretFromStdin, () => process.stdin.isTTY === true);
