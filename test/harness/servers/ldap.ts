/**
 * OpenLDAP slapd (from apt) with a configuration generated for this run: a slapd.conf in a
 * temporary directory converted to cn=config by slaptest, an mdb database seeded offline
 * by slapadd, the ppolicy overlay with a default policy that honours administrative
 * locks (pwdLockout TRUE), and a root DN whose password is generated per run.
 * Listens on a free loopback port only.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestServer } from '../server';
import { freePort, portOpen, startProcess, waitFor } from '../proc';

const SUFFIX = 'dc=amendctl,dc=test';
const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIR = '/usr/lib/ldap';

function bin(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name} not found: run \`bash scripts/setup.sh ldap\``);
}

/** {SSHA} as slapd understands it, so the config file never holds the password in clear. */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

export const ldapServer: TestServer = {
  name: 'ldap',
  async start() {
    const slapd = bin('slapd');
    const dir = mkdtempSync(join(tmpdir(), 'amendctl-slapd-'));
    const configDir = join(dir, 'slapd.d');
    const dbDir = join(dir, 'db');
    mkdirSync(configDir);
    mkdirSync(dbDir);
    const rootDn = `cn=admin,${SUFFIX}`;
    const password = randomBytes(18).toString('base64url');
    const policyDn = `cn=default,ou=policies,${SUFFIX}`;
    const conf = [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include ${join(SCHEMA_DIR, `${s}.schema`)}`),
      `modulepath ${MODULE_DIR}`,
      'moduleload back_mdb',
      'moduleload ppolicy',
      `pidfile ${join(dir, 'slapd.pid')}`,
      `argsfile ${join(dir, 'slapd.args')}`,
      'database mdb',
      'maxsize 268435456',
      `suffix "${SUFFIX}"`,
      `rootdn "${rootDn}"`,
      `rootpw ${ssha(password)}`,
      `directory ${dbDir}`,
      'index objectClass eq',
      'index uid,cn eq',
      'index member eq',
      'overlay ppolicy',
      `ppolicy_default "${policyDn}"`,
      // Accounts may authenticate and read; only the root DN (which bypasses ACLs) writes.
      'access to attrs=userPassword by anonymous auth by * none',
      'access to * by users read by * none',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'slapd.conf'), conf, { mode: 0o600 });
    const seed = [
      `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: amendctl\no: amendctl test`,
      `dn: ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: people`,
      `dn: ou=groups,${SUFFIX}\nobjectClass: organizationalUnit\nou: groups`,
      `dn: ou=policies,${SUFFIX}\nobjectClass: organizationalUnit\nou: policies`,
      `dn: ${policyDn}\nobjectClass: device\nobjectClass: pwdPolicy\ncn: default\npwdAttribute: userPassword\npwdLockout: TRUE`,
    ].join('\n\n');
    writeFileSync(join(dir, 'seed.ldif'), `${seed}\n`);
    // Seed offline first (slaptest opens the database read-only, which needs it to exist),
    // then convert the generated slapd.conf into a cn=config directory for slapd -F.
    run(bin('slapadd'), ['-f', join(dir, 'slapd.conf'), '-b', SUFFIX, '-l', join(dir, 'seed.ldif')]);
    run(bin('slaptest'), ['-f', join(dir, 'slapd.conf'), '-F', configDir]);

    const port = await freePort();
    const url = `ldap://127.0.0.1:${port}`;
    // -d keeps slapd in the foreground, so the child is the server and TERM stops it.
    const proc = startProcess('ldap', slapd, ['-F', configDir, '-h', `${url}/`, '-d', '0']);
    try {
      await waitFor('slapd', () => portOpen(port), 30_000, proc.child);
    } catch (e) {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return {
      env: {
        AMENDCTL_TEST_LDAP_URL: url,
        AMENDCTL_TEST_LDAP_PORT: String(port),
        AMENDCTL_TEST_LDAP_BIND_DN: rootDn,
        AMENDCTL_TEST_LDAP_PASSWORD: password,
        AMENDCTL_TEST_LDAP_BASE_DN: SUFFIX,
        AMENDCTL_TEST_LDAP_USERS_DN: `ou=people,${SUFFIX}`,
        AMENDCTL_TEST_LDAP_GROUPS_DN: `ou=groups,${SUFFIX}`,
      },
      async stop() {
        await proc.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
