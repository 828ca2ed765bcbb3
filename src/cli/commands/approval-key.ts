/** `amendctl approval-key new`: a key pair that signs approvals, and the entry the workers' trust file needs. */
import { existsSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { newSigningKey } from '../../approvals/token';
import { BusinessIdSchema } from '../../domain/amendment';
import { parse } from '../common';
import { type Command, UsageError } from '../io';
import { help } from './amendments';

const USAGE = 'amendctl approval-key new --id ID --out FILE [--approver USER]';
const WHAT = [
  "Makes an Ed25519 key pair that signs approvals and rejections (issue 12). The private key goes to FILE (mode 0600, never overwritten): with --approver it is that person's own key (amendctl approve --key FILE signs only as them); without, a service's key that may vouch for any approver it has proven (amendctl serve --approval-key FILE).",
  'Prints the entry to add under `keys:` in the trust file the workers read (AMENDCTL_APPROVAL_KEYS); only the public key is in it.',
].join('\n');

export const approvalKeyCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    { id: { type: 'string' }, out: { type: 'string' }, approver: { type: 'string' } },
    USAGE,
  );
  if (values.help) return help(io, USAGE, WHAT);
  if (positionals[0] !== 'new' || positionals.length !== 1)
    throw new UsageError(`expected: approval-key new\nusage: ${USAGE}`);
  if (!values.id || !values.out) throw new UsageError(`approval-key new needs --id ID and --out FILE\nusage: ${USAGE}`);
  if (!BusinessIdSchema.safeParse(values.id).success)
    throw new UsageError(`--id: an id of letters, digits, ".", "_", ":" and "-", got "${values.id}"`);
  if (values.approver !== undefined && !values.approver.trim()) throw new UsageError('--approver: an approver id');
  if (existsSync(values.out)) throw new UsageError(`${values.out} exists: approval-key new never overwrites a key`);
  const { file, trust } = newSigningKey(values.id, values.approver?.trim());
  writeFileSync(
    values.out,
    `# amendctl approval signing key ${file.id}: keep it secret (mode 0600)\n${stringify(file)}`,
    { mode: 0o600, flag: 'wx' },
  );
  io.err(
    `wrote ${values.out} (${values.approver ? `${values.approver}'s own key` : 'a service key that vouches for any approver'})`,
  );
  io.out(`# add under keys: in the workers' trust file (AMENDCTL_APPROVAL_KEYS)\n${stringify([trust]).trimEnd()}`);
  return 0;
};
