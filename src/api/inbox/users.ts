/**
 * The inbox's local users (the embedded default, or a deployment without an OpenID provider): a
 * YAML or JSON file `users: [{ id, name?, passwordHash }]`, each password kept only as its bcrypt
 * hash. `amendctl users add ID --file FILE` writes it (src/cli/commands/users.ts). The file is read
 * again when it changes, so a user added or removed counts without a restart, and a removed user's
 * session stops at its next request.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { BusinessIdSchema } from '../../domain/amendment';
import { parseStructuredText } from '../../domain/document';
import { InputError, parseWith } from '../../domain/errors';
import { cleanText, utf8Length } from '../../domain/text';

/** New hashes: cost 12 (about a quarter of a second in bcryptjs); any cost from 10 verifies. */
export const BCRYPT_COST = 12;
/** bcrypt reads at most 72 bytes: a longer password would be accepted by its first 72 bytes alone, so it is refused. */
export const MAX_PASSWORD_BYTES = 72;
export const MIN_PASSWORD_LENGTH = 12;

const BcryptHash = z
  .string()
  .regex(
    /^\$2[aby]\$(1[0-9]|2[0-9]|3[01])\$[./A-Za-z0-9]{53}$/,
    'a bcrypt hash ($2b$12$...), cost 10 to 31: written by `amendctl users add`',
  );

export const UsersFileSchema = z
  .strictObject({
    users: z.array(
      z.strictObject({
        /** The approver id the workflows compare with the approval policy (`approvers: [dana]`). */
        id: BusinessIdSchema,
        name: cleanText(200, { min: 1, what: 'a name' }).optional(),
        passwordHash: BcryptHash,
      }),
    ),
  })
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    f.users.forEach((u, i) => {
      if (seen.has(u.id))
        ctx.addIssue({ code: 'custom', path: ['users', i, 'id'], message: `user "${u.id}" is listed twice` });
      seen.add(u.id);
    });
  });
export type LocalUser = z.output<typeof UsersFileSchema>['users'][number];

export function readUsersFile(file: string): LocalUser[] {
  return parseWith(UsersFileSchema, parseStructuredText(readFileSync(file, 'utf8'), file), 'invalid users file', file)
    .users;
}

/** Why a new password may not be used, or undefined. */
export function passwordProblem(password: string): string | undefined {
  if ([...password].length < MIN_PASSWORD_LENGTH) return `a password has at least ${MIN_PASSWORD_LENGTH} characters`;
  if (utf8Length(password) > MAX_PASSWORD_BYTES)
    return `a password has at most ${MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest)`;
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(password))
    return 'a password has no control characters (a line break pasted with it?)';
  return undefined;
}

export async function hashPassword(password: string, cost = BCRYPT_COST): Promise<string> {
  const nfc = password.normalize('NFC');
  const why = passwordProblem(nfc);
  if (why) throw new InputError('invalid password', [{ path: 'password', message: why }]);
  return bcrypt.hash(nfc, cost);
}

/**
 * Adds a user or replaces its password (and name) in the users file, creating the file (mode 0600)
 * when there is none. Written whole to a temporary file and renamed, so a reader never sees half.
 */
export async function addUser(
  file: string,
  user: { id: string; name?: string; password: string },
  cost = BCRYPT_COST,
): Promise<{ replaced: boolean }> {
  parseWith(BusinessIdSchema, user.id, 'invalid user id');
  const users = existsSync(file) ? readUsersFile(file) : [];
  const passwordHash = await hashPassword(user.password, cost);
  const entry: LocalUser = { id: user.id, ...(user.name ? { name: user.name } : {}), passwordHash };
  const at = users.findIndex((u) => u.id === user.id);
  if (at >= 0) users[at] = entry;
  else users.push(entry);
  parseWith(UsersFileSchema, { users }, 'invalid users file', file);
  const text = `# amendctl inbox users (amendctl users add ID --file FILE): passwords only as bcrypt hashes.\n${toYaml({ users })}`;
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
  return { replaced: at >= 0 };
}

/** A hash no password matches, compared against for an unknown id so that it takes as long as a known one. */
const UNKNOWN_USER_HASH = bcrypt.hashSync('no user has this password, it is only compared against', 10);

/** The users file, read again when its modification time or size changes. */
export class LocalUsers {
  private users = new Map<string, LocalUser>();
  private stamp = '';

  constructor(readonly file: string) {
    this.reload();
  }

  private reload(): void {
    const s = statSync(this.file);
    const stamp = `${s.mtimeMs}:${s.size}`;
    if (stamp === this.stamp) return;
    this.users = new Map(readUsersFile(this.file).map((u) => [u.id, u]));
    this.stamp = stamp;
  }

  /** The user, if the file still lists it (a file that became invalid keeps the last good list). */
  get(id: string): LocalUser | undefined {
    try {
      this.reload();
    } catch {
      // keep serving the last valid list; `amendctl serve` refused to start on an invalid one
    }
    return this.users.get(id);
  }

  /** The user when the password is its own; the same work is done for an unknown id. */
  async verify(id: string, password: string): Promise<LocalUser | undefined> {
    const user = this.get(id);
    const nfc = password.normalize('NFC');
    const tooLong = utf8Length(nfc) > MAX_PASSWORD_BYTES;
    const ok = await bcrypt.compare(tooLong ? '' : nfc, user?.passwordHash ?? UNKNOWN_USER_HASH);
    return ok && user && !tooLong ? user : undefined;
  }
}
