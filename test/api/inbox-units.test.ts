/**
 * The approvals inbox's parts that need no server (issue 12, point 2): the users file (real
 * bcrypt, written by `amendctl users add` with the password on standard input, never argv), the
 * sealed session cookie (jose, AES-256-GCM: tampered, expired, other-key and other-purpose tokens
 * refused; key rotation), and the HTML escaping of the pages.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { z } from 'zod';
import { detailPage, esc, html } from '../../src/api/inbox/pages';
import {
  clearCookie,
  cookieName,
  newSessionKey,
  parseSessionKeys,
  readCookie,
  sameToken,
  Sealer,
  SessionSchema,
  setCookie,
} from '../../src/api/inbox/session';
import { addUser, LocalUsers, readUsersFile } from '../../src/api/inbox/users';
import { serveCommand } from '../../src/cli/commands/serve';
import { readSecretFromStdin, usersCommandWith } from '../../src/cli/commands/users';
import type { CliIO } from '../../src/cli/io';
import type { AmendmentView } from '../../src/client';
import { InputError } from '../../src/domain/errors';

const dir = mkdtempSync(join(tmpdir(), 'amendctl-inbox-units-'));
const PASSWORD = 'correct horse battery staple';

function io(): CliIO & { text: string[] } {
  const text: string[] = [];
  return { text, out: (t) => text.push(t), err: (t) => text.push(t) };
}

describe('the users file', () => {
  test('users add writes a bcrypt hash (mode 0600), never the password; the password is read, not an argument', async () => {
    const file = join(dir, 'users.yaml');
    const asked: string[] = [];
    const cmd = usersCommandWith(
      async (prompt) => (asked.push(prompt), PASSWORD),
      () => false,
    );
    const out = io();
    expect(await cmd(['add', 'dana', '--file', file, '--name', 'Dana Scully'], out)).toBe(0);
    expect(asked).toEqual(['password for dana: ']);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(PASSWORD);
    expect(text).toMatch(/passwordHash: \$2b\$12\$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const [dana] = readUsersFile(file);
    expect(dana).toMatchObject({ id: 'dana', name: 'Dana Scully' });

    const users = new LocalUsers(file);
    expect((await users.verify('dana', PASSWORD))?.id).toBe('dana');
    expect(await users.verify('dana', 'correct horse battery stapl')).toBeUndefined();
    expect(await users.verify('nobody', PASSWORD)).toBeUndefined();
  });

  test('a new password replaces the old one, and a running server sees it (the file is read again when it changes)', async () => {
    const file = join(dir, 'replace.yaml');
    await addUser(file, { id: 'erin', password: PASSWORD }, 10);
    const users = new LocalUsers(file);
    expect((await users.verify('erin', PASSWORD))?.id).toBe('erin');
    expect(await addUser(file, { id: 'erin', password: 'a different long password' }, 10)).toEqual({ replaced: true });
    await addUser(file, { id: 'frank', password: 'franks long password' }, 10);
    expect(await users.verify('erin', PASSWORD)).toBeUndefined();
    expect((await users.verify('erin', 'a different long password'))?.id).toBe('erin');
    expect(readUsersFile(file).map((u) => u.id)).toEqual(['erin', 'frank']);
  });

  test('passwords bcrypt would cut (over 72 bytes), short ones and ones with control characters are refused', async () => {
    const file = join(dir, 'refused.yaml');
    await expect(addUser(file, { id: 'ann', password: 'short' })).rejects.toThrow(InputError);
    await expect(addUser(file, { id: 'ann', password: 'é'.repeat(40) })).rejects.toThrow(/at most 72 bytes/);
    await expect(addUser(file, { id: 'ann', password: 'a long password\nwith a break' })).rejects.toThrow(
      /control characters/,
    );
    const cmd = usersCommandWith(
      async () => 'short',
      () => false,
    );
    await expect(cmd(['add', 'ann', '--file', file], io())).rejects.toThrow(/at least 12 characters/);
    // 72 bytes verify; a 73-byte password sharing those 72 bytes does not (bcrypt alone would accept it).
    const long = 'x'.repeat(72);
    await addUser(file, { id: 'ann', password: long }, 10);
    const users = new LocalUsers(file);
    expect((await users.verify('ann', long))?.id).toBe('ann');
    expect(await users.verify('ann', `${long}y`)).toBeUndefined();
  });

  test('an interactive user types the password twice; two different ones change nothing', async () => {
    const file = join(dir, 'twice.yaml');
    const answers = [PASSWORD, 'something else entirely'];
    await expect(
      usersCommandWith(
        async () => answers.shift()!,
        () => true,
      )(['add', 'gil', '--file', file], io()),
    ).rejects.toThrow(/differ/);
    expect(() => statSync(file)).toThrow();
  });

  test('the file is validated: a bad hash, a duplicate id, an unknown field are refused naming where', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'users:\n  - { id: dana, passwordHash: "plaintext" }\n  - { id: dana, passwordHash: "$2b$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE" }\n  - { id: x, passwordHash: "$2b$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE", admin: true }\n',
    );
    let err: InputError | undefined;
    try {
      readUsersFile(bad);
    } catch (e) {
      err = e as InputError;
    }
    expect(err).toBeInstanceOf(InputError);
    const paths = err!.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['users[0].passwordHash', 'users[1].id']));
    expect(err!.issues.some((i) => /admin/.test(i.message) || /admin/.test(i.path))).toBe(true);
  });

  test('the password is the first line of standard input when it is not a terminal', async () => {
    const real = Object.getOwnPropertyDescriptor(process, 'stdin')!;
    Object.defineProperty(process, 'stdin', {
      value: Readable.from([Buffer.from(`${PASSWORD}\r\n`), Buffer.from('the rest is not read\n')]),
      configurable: true,
    });
    try {
      expect(await readSecretFromStdin('password: ')).toBe(PASSWORD);
    } finally {
      Object.defineProperty(process, 'stdin', real);
    }
  });

  test('users key prints a session key the server accepts', async () => {
    const out = io();
    expect(
      await usersCommandWith(
        async () => '',
        () => false,
      )(['key'], out),
    ).toBe(0);
    expect(parseSessionKeys(out.text[0]!, 'out')).toHaveLength(1);
  });
});

describe('the session cookie', () => {
  const claims = { sub: 'dana', via: 'password' as const, csrf: 'x'.repeat(32), auth: Math.floor(Date.now() / 1000) };
  const key = parseSessionKeys(newSessionKey(), 'test');

  test('sealed: opaque (the id is not readable in it), and opened only by a key that sealed it, for its purpose', async () => {
    const sealer = new Sealer(key);
    const token = await sealer.seal(claims, 'amendctl-inbox-session', 60);
    expect(token.split('.')).toHaveLength(5); // a JWE
    expect(Buffer.from(token.split('.')[3]!, 'base64url').toString('latin1')).not.toContain('dana');
    expect(await sealer.open(token, 'amendctl-inbox-session', SessionSchema)).toMatchObject(claims);
    expect(await sealer.open(token, 'amendctl-inbox-flow', SessionSchema)).toBeUndefined();
    expect(
      await new Sealer(parseSessionKeys(newSessionKey(), 'other')).open(token, 'amendctl-inbox-session', SessionSchema),
    ).toBeUndefined();
    // One character changed anywhere: refused (GCM authenticates the whole).
    const parts = token.split('.');
    const ct = parts[3]!;
    parts[3] = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1);
    expect(await sealer.open(parts.join('.'), 'amendctl-inbox-session', SessionSchema)).toBeUndefined();
    expect(await sealer.open('not-a-token', 'amendctl-inbox-session', SessionSchema)).toBeUndefined();
    expect(await sealer.open(undefined, 'amendctl-inbox-session', SessionSchema)).toBeUndefined();
  });

  test('expired tokens and claims of the wrong shape are refused', async () => {
    const sealer = new Sealer(key);
    expect(
      await sealer.open(
        await sealer.seal(claims, 'amendctl-inbox-session', -10),
        'amendctl-inbox-session',
        SessionSchema,
      ),
    ).toBeUndefined();
    expect(
      await sealer.open(
        await sealer.seal({ ...claims, via: 'root' }, 'amendctl-inbox-session', 60),
        'amendctl-inbox-session',
        SessionSchema,
      ),
    ).toBeUndefined();
    expect(
      await sealer.open(
        await sealer.seal({ sub: 'dana' }, 'amendctl-inbox-session', 60),
        'amendctl-inbox-session',
        z.strictObject({ sub: z.string(), csrf: z.string() }),
      ),
    ).toBeUndefined();
  });

  test('rotation: a new first key seals, the old one still opens what it sealed', async () => {
    const [oldKey] = key;
    const newKey = parseSessionKeys(newSessionKey(), 'new')[0]!;
    const before = await new Sealer([oldKey!]).seal(claims, 'amendctl-inbox-session', 60);
    const rotated = new Sealer([newKey, oldKey!]);
    expect(await rotated.open(before, 'amendctl-inbox-session', SessionSchema)).toMatchObject({ sub: 'dana' });
    const after = await rotated.seal(claims, 'amendctl-inbox-session', 60);
    expect(await new Sealer([oldKey!]).open(after, 'amendctl-inbox-session', SessionSchema)).toBeUndefined();
    expect(await new Sealer([newKey]).open(after, 'amendctl-inbox-session', SessionSchema)).toMatchObject({
      sub: 'dana',
    });
  });

  test('keys: 32 bytes of base64, several separated by commas, spaces or lines; anything else is refused', () => {
    expect(parseSessionKeys(`${newSessionKey()},${newSessionKey()}\n${newSessionKey()}`, 'k')).toHaveLength(3);
    expect(() => parseSessionKeys('', 'k')).toThrow(/no session key/);
    expect(() => parseSessionKeys('c2hvcnQ=', 'k')).toThrow(/not 32 bytes/);
    expect(() => parseSessionKeys('not base64!', 'k')).toThrow(/not 32 bytes/);
  });

  test('the cookie: HttpOnly, SameSite=Lax, Secure and __Host- under https; read back by name', () => {
    expect(setCookie(cookieName('session', true), 'v', { secure: true, maxAgeSeconds: 1800 })).toBe(
      '__Host-amendctl-inbox-session=v; Path=/; Max-Age=1800; HttpOnly; SameSite=Lax; Secure',
    );
    expect(setCookie(cookieName('session', false), 'v', { secure: false, maxAgeSeconds: 60 })).toBe(
      'amendctl-inbox-session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax',
    );
    expect(clearCookie('n', false)).toMatch(/^n=; Path=\/; Max-Age=0;/);
    expect(readCookie('a=1; amendctl-inbox-session=tok.en; b=2', 'amendctl-inbox-session')).toBe('tok.en');
    expect(readCookie('xamendctl-inbox-session=1', 'amendctl-inbox-session')).toBeUndefined();
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abc', 'abd')).toBe(false);
    expect(sameToken(undefined, 'abc')).toBe(false);
  });
});

describe('the pages escape what they show', () => {
  test('esc and html', () => {
    expect(esc(`<script>alert("x")</script>&'`)).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
    expect(html`<p>${'<b>'}</p>${html`<i>ok</i>`}`.text).toBe('<p>&lt;b&gt;</p><i>ok</i>');
  });

  test('an amendment whose fields carry markup shows it as text', () => {
    const evil = '<img src=x onerror=alert(1)>';
    const view: AmendmentView = {
      amendmentId: 'a-1',
      contractId: 'c-1',
      sequence: 1,
      workflowId: 'amendment-a-1',
      submittedBy: evil,
      status: 'pending_approval',
      customerId: evil,
      changes: [],
      violations: [],
      operations: [
        {
          id: 'o1',
          target: 'idp',
          action: 'joinGroup',
          subject: `${evil}@x.test`,
          description: evil,
          ruleIds: [],
          outcome: 'pending',
        } as AmendmentView['operations'][number],
      ],
      approval: {
        required: true,
        reasons: [{ ruleId: 'r', message: evil }],
        stage: 'primary',
        needed: 1,
        stillNeeded: 1,
        approvals: [{ by: 'x', at: '2026-01-01T00:00:00Z', comment: evil }],
        ignored: [],
        eligible: ['*'],
        reminders: [],
      },
      submittedAt: '2026-01-01T00:00:00Z',
    };
    const out = detailPage({
      session: { sub: evil, via: 'password', csrf: 'c'.repeat(32), auth: 0 },
      view,
      comment: `</textarea>${evil}`,
    });
    expect(out).not.toContain('<img');
    expect(out).not.toContain('</textarea><');
    expect(out).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });
});

describe('amendctl serve: the inbox options', () => {
  test('a users file or an OpenID provider needs session keys; a bad key or OIDC file is refused before anything starts', async () => {
    const users = join(dir, 'serve-users.yaml');
    await addUser(users, { id: 'dana', password: PASSWORD }, 10);
    const saved = { ...process.env };
    try {
      delete process.env.AMENDCTL_INBOX_SESSION_KEYS;
      delete process.env.AMENDCTL_INBOX_SESSION_KEYS_FILE;
      await expect(serveCommand(['--users', users], io())).rejects.toThrow(/needs its session keys/);
      const keys = join(dir, 'bad-keys');
      writeFileSync(keys, 'c2hvcnQ=\n');
      await expect(serveCommand(['--users', users, '--session-keys', keys], io())).rejects.toThrow(/not 32 bytes/);
      await expect(serveCommand(['--session-keys', keys], io())).rejects.toThrow(/for the inbox/);
      const oidc = join(dir, 'oidc.yaml');
      writeFileSync(oidc, 'issuer: not a url\nclientId: x\napproverClaim: nickname\n');
      process.env.AMENDCTL_INBOX_SESSION_KEYS = newSessionKey();
      await expect(serveCommand(['--oidc', oidc], io())).rejects.toThrow(/invalid OIDC configuration/);
    } finally {
      process.env = saved;
    }
  });
});
