/**
 * PostgreSQL target (database access): one LOGIN role per account, membership in
 * role-map roles, NOLOGIN on deactivation. Every identifier is a quoted identifier;
 * names longer than PostgreSQL's 63-byte limit are refused (PostgreSQL would silently
 * truncate them and alias two accounts).
 */
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { z } from 'zod';
import { compensateWith, type PriorFacts, type CompensationAction } from './compensation';
import { type Secret, type SecretSource, secretSource, SecretRefSchema } from './secrets';
import { RateLimitSchema, type RateLimiter, targetRateLimiter } from './rate-limit';
import {
  type AccountState,
  type ApplyResult,
  type CompensateResult,
  type CompensationSpec,
  type Connector,
  type OperationSpec,
  PermanentTargetError,
  type StateQuery,
  type TargetState,
  TransientTargetError,
} from './types';

export const postgresConfigSchema = z
  .object({
    type: z.literal('postgres'),
    host: z.string().min(1),
    port: z.coerce.number().int().min(1).max(65535).default(5432),
    database: z.string().min(1),
    user: z.string().min(1),
    password: SecretRefSchema.optional(),
    ssl: z.boolean().default(false),
    /** Roles the plan may grant or revoke: a plan naming any other role is refused. Empty: any existing role. */
    managedRolePrefix: z.string().default(''),
    /** Create a missing group role (NOLOGIN) on join/grant, and drop it again when that is compensated. Off: a missing role is a misconfiguration. */
    createMissingRoles: z.boolean().default(false),
    poolSize: z.number().int().min(1).max(50).default(4),
    rateLimit: RateLimitSchema.optional(),
    statementTimeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();
export type PostgresConfig = z.infer<typeof postgresConfigSchema>;

const MAX_IDENTIFIER_BYTES = 63;
/** Role names per query when reading state. */
const READ_CHUNK = 5000;

/** A quoted identifier: `"` doubled; refused when PostgreSQL could not store it exactly. */
export function quoteIdent(name: string): string {
  if (name.length === 0)
    throw new PermanentTargetError('InvalidIdentifier', 'an empty name cannot be a PostgreSQL role');
  if (name.includes('\u0000'))
    throw new PermanentTargetError('InvalidIdentifier', 'a PostgreSQL role name cannot contain a NUL byte');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_IDENTIFIER_BYTES) {
    throw new PermanentTargetError(
      'InvalidIdentifier',
      `"${name}" is ${bytes} bytes; PostgreSQL role names are at most ${MAX_IDENTIFIER_BYTES}`,
    );
  }
  return `"${name.replace(/"/g, '""')}"`;
}

const TRANSIENT_CODES = new Set([
  '40001',
  '40P01',
  '55P03',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '53200',
  '57014',
  'XX000',
]);
const TRANSIENT_NET = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

/** Map a pg error to Transient/Permanent so the activity layer can retry or stop. */
export function classifyPgError(err: unknown, what: string): Error {
  if (err instanceof TransientTargetError || err instanceof PermanentTargetError) return err;
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? '';
  const msg = `${what}: ${e?.message ?? String(err)}`;
  if (
    TRANSIENT_NET.has(code) ||
    code.startsWith('08') ||
    TRANSIENT_CODES.has(code) ||
    /Connection terminated|timeout|connect/i.test(e?.message ?? '')
  ) {
    return new TransientTargetError(msg, undefined, err);
  }
  if (code === '42704') return new PermanentTargetError('TargetMisconfigured', msg, err);
  if (code === '42501') return new PermanentTargetError('TargetForbidden', msg, err);
  if (code === '28P01' || code === '28000') return new PermanentTargetError('TargetAuthentication', msg, err);
  if (code === '3D000') return new PermanentTargetError('TargetMisconfigured', msg, err);
  return new PermanentTargetError('TargetRejected', msg, err);
}

/** What compensation needs (JSON): the account role as it was, or the membership as it was (and whether the group role was created). */
type Prior = { existed: boolean; login?: boolean } | { member: boolean; createdRole?: boolean } | null;

/** What the recorded prior state says for the inverse (./compensation.ts). */
function priorFacts(prior: Prior): PriorFacts | null {
  if (!prior || typeof prior !== 'object') return null;
  if ('member' in prior) return { kind: 'membership', member: prior.member, created: prior.createdRole === true };
  if ('existed' in prior)
    return {
      kind: 'account',
      existed: prior.existed,
      ...(typeof prior.login === 'boolean' ? { active: prior.login } : {}),
    };
  return null;
}

interface RoleRow {
  rolname: string;
  rolcanlogin: boolean;
}

export class PostgresConnector implements Connector {
  readonly type = 'postgres';
  private readonly pool: Pool;
  private readonly limiter: RateLimiter | undefined;

  /** `password`: the reader of the configured password (none: the server asks for none). */
  constructor(
    readonly target: string,
    private readonly config: PostgresConfig,
    password?: Secret,
  ) {
    const poolConfig: PoolConfig = {
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
      max: config.poolSize,
      ssl: config.ssl ? { rejectUnauthorized: true } : false,
      connectionTimeoutMillis: 5_000,
      statement_timeout: config.statementTimeoutMs,
      application_name: `amendctl:${target}`,
    };
    if (password) poolConfig.password = () => Promise.resolve(password());
    this.pool = new Pool(poolConfig);
    this.pool.on('error', () => undefined); // idle client errors surface on the next query
    this.limiter = targetRateLimiter(target, config.rateLimit);
  }

  async readAccount(subject: string): Promise<AccountState | null> {
    return this.withClient('read account', async (c) => {
      const role = await this.role(c, subject);
      if (!role) return null;
      return {
        subject,
        id: role.rolname,
        active: role.rolcanlogin,
        groups: await this.memberships(c, subject),
        attributes: {},
      };
    });
  }

  /** Drift: the asked roles and the members of the asked group roles, a few queries for any number (names as parameters, never in the SQL). */
  async readState(query: StateQuery): Promise<TargetState> {
    return this.withClient('read state', async (c) => {
      const accounts: TargetState['accounts'] = [];
      for (let i = 0; i < query.subjects.length; i += READ_CHUNK) {
        const r = await c.query<RoleRow>('SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1::text[])', [
          query.subjects.slice(i, i + READ_CHUNK),
        ]);
        for (const row of r.rows) accounts.push({ subject: row.rolname, active: row.rolcanlogin, attributes: {} });
      }
      const names = [...new Set(query.groups.map((g) => g.name))];
      const members: TargetState['members'] = {};
      if (names.length > 0) {
        const exist = await c.query<{ rolname: string }>(
          'SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])',
          [names],
        );
        for (const row of exist.rows) members[row.rolname] = [];
        const r = await c.query<{ grp: string; member: string }>(
          `SELECT r.rolname AS grp, u.rolname AS member FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
            WHERE r.rolname = ANY($1::text[])`,
          [names],
        );
        for (const row of r.rows) members[row.grp]!.push(row.member);
        for (const n of names) members[n] ??= null;
      }
      return { accounts, members, managedAttributes: [] };
    });
  }

  async apply(op: OperationSpec): Promise<ApplyResult> {
    const what = `${this.target}: ${op.action} ${op.subject}`;
    return this.withClient(what, async (c): Promise<ApplyResult> => {
      const subject = quoteIdent(op.subject);
      switch (op.action) {
        case 'ensureAccount':
        case 'reactivateAccount': {
          const role = await this.role(c, op.subject);
          if (!role) {
            if (op.action === 'reactivateAccount')
              throw new PermanentTargetError('AccountMissing', `${what}: no role ${subject} to reactivate`);
            try {
              await c.query(`CREATE ROLE ${subject} LOGIN`);
            } catch (err) {
              if ((err as { code?: string }).code === '42710')
                return { outcome: 'unchanged', prior: { existed: true, login: true }, detail: 'created concurrently' };
              throw err;
            }
            return { outcome: 'applied', prior: { existed: false }, detail: `created LOGIN role ${subject}` };
          }
          if (role.rolcanlogin)
            return { outcome: 'unchanged', prior: { existed: true, login: true }, detail: 'already LOGIN' };
          await c.query(`ALTER ROLE ${subject} LOGIN`);
          return { outcome: 'applied', prior: { existed: true, login: false }, detail: 'set LOGIN' };
        }
        case 'deactivateAccount': {
          const role = await this.role(c, op.subject);
          if (!role) return { outcome: 'unchanged', prior: { existed: false }, detail: 'no such role' };
          if (!role.rolcanlogin)
            return { outcome: 'unchanged', prior: { existed: true, login: false }, detail: 'already NOLOGIN' };
          await c.query(`ALTER ROLE ${subject} NOLOGIN`);
          return { outcome: 'applied', prior: { existed: true, login: true }, detail: 'set NOLOGIN' };
        }
        case 'grantRole':
        case 'joinGroup':
        case 'revokeRole':
        case 'leaveGroup': {
          const roleName = this.grantedRole(op);
          const granted = quoteIdent(roleName);
          const grant = op.action === 'grantRole' || op.action === 'joinGroup';
          if (!(await this.role(c, op.subject))) {
            if (!grant) return { outcome: 'unchanged', prior: { member: false }, detail: 'no such account' };
            throw new PermanentTargetError('AccountMissing', `${what}: no role ${subject} to grant ${granted} to`);
          }
          let createdRole = false;
          if (!(await this.role(c, roleName))) {
            if (!grant) return { outcome: 'unchanged', prior: { member: false }, detail: `no role ${granted}` };
            createdRole = await this.createRole(c, roleName, what);
          }
          const member = await this.isMember(c, op.subject, roleName);
          if (member === grant)
            return {
              outcome: 'unchanged',
              prior: { member },
              detail: grant ? `already a member of ${granted}` : `not a member of ${granted}`,
            };
          await c.query(grant ? `GRANT ${granted} TO ${subject}` : `REVOKE ${granted} FROM ${subject}`);
          return {
            outcome: 'applied',
            prior: { member, ...(createdRole ? { createdRole } : {}) },
            detail: `${grant ? 'granted' : 'revoked'} ${granted}${createdRole ? ' (role created)' : ''}`,
          };
        }
        case 'updateAttributes':
          // PostgreSQL roles carry no profile attributes the plan manages.
          return { outcome: 'unchanged', prior: null, detail: 'no attributes in PostgreSQL' };
        default:
          throw new PermanentTargetError(
            'UnsupportedAction',
            `${what}: the postgres connector does not support ${String(op.action)}`,
          );
      }
    });
  }

  /** Grants and revokes of one role go as one change (applyGroupChange); PostgreSQL treats joinGroup and leaveGroup the same. */
  readonly groupChangeActions = ['grantRole', 'revokeRole', 'joinGroup', 'leaveGroup'] as const;

  /**
   * Many grants (or revokes) of one role at once, in one connection and one statement for all
   * that need it (`GRANT r TO a, b, ...`): a baseline of thousands of users takes a few
   * statements, not a statement (and a rate-limit token) each. Each result is what `apply` would
   * give that operation; an account missing for a grant throws, and the runner applies them one by one.
   */
  async applyGroupChange(ops: OperationSpec[]): Promise<ApplyResult[]> {
    const first = ops[0];
    if (!first) return [];
    const roleName = this.grantedRole(first);
    const granted = quoteIdent(roleName);
    const grant = first.action === 'grantRole' || first.action === 'joinGroup';
    if (ops.some((o) => o.action !== first.action || this.grantedRole(o) !== roleName))
      throw new PermanentTargetError('InvalidParams', `${this.target}: a group change takes one action on one role`);
    const what = `${this.target}: ${first.action} ${granted} (${ops.length} accounts)`;
    return this.withClient(what, async (c) => {
      const subjects = [...new Set(ops.map((o) => o.subject))];
      const found = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [
        subjects,
      ]);
      const existing = new Set(found.rows.map((r) => r.rolname));
      const missing = subjects.filter((x) => !existing.has(x));
      if (grant && missing.length > 0)
        throw new PermanentTargetError(
          'AccountMissing',
          `${what}: no role ${quoteIdent(missing[0]!)} to grant ${granted} to`,
        );
      let createdRole = false;
      if (!(await this.role(c, roleName))) {
        if (!grant)
          return ops.map(() => ({ outcome: 'unchanged', prior: { member: false }, detail: `no role ${granted}` }));
        createdRole = await this.createRole(c, roleName, what);
      }
      const m = await c.query<{ rolname: string }>(
        `SELECT u.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
          WHERE r.rolname = $1 AND u.rolname = ANY($2)`,
        [roleName, subjects],
      );
      const members = new Set(m.rows.map((r) => r.rolname));
      const change = subjects.filter((x) => existing.has(x) && members.has(x) !== grant);
      if (change.length > 0)
        await c.query(
          grant
            ? `GRANT ${granted} TO ${change.map(quoteIdent).join(', ')}`
            : `REVOKE ${granted} FROM ${change.map(quoteIdent).join(', ')}`,
        );
      const changed = new Set(change);
      let creditCreate = createdRole;
      return ops.map((op): ApplyResult => {
        if (!existing.has(op.subject))
          return { outcome: 'unchanged', prior: { member: false }, detail: 'no such account' };
        const member = members.has(op.subject);
        if (!changed.delete(op.subject))
          return {
            outcome: 'unchanged',
            prior: { member },
            detail: grant ? `already a member of ${granted}` : `not a member of ${granted}`,
          };
        // The role this change created is compensated (dropped once memberless) by one operation: the first it applied.
        const created = creditCreate;
        creditCreate = false;
        return {
          outcome: 'applied',
          prior: { member, ...(created ? { createdRole: true } : {}) },
          detail: `${grant ? 'granted' : 'revoked'} ${granted}${created ? ' (role created)' : ''}`,
        };
      });
    });
  }

  async compensate(op: CompensationSpec, result: ApplyResult): Promise<CompensateResult> {
    const prior = (result.prior ?? null) as Prior;
    const what = `${this.target}: compensate ${op.action} ${op.subject}`;
    return compensateWith(op, result, priorFacts(prior), (step) =>
      this.withClient(what, (c) => this.performCompensation(c, op, prior!, step, what)),
    );
  }

  /** Perform a compensation step, from the role as it is now and the prior state recorded. */
  private async performCompensation(
    c: PoolClient,
    op: CompensationSpec,
    prior: NonNullable<Prior>,
    step: CompensationAction,
    what: string,
  ): Promise<CompensateResult> {
    const subject = quoteIdent(op.subject);
    const role = await this.role(c, op.subject);
    switch (step.action) {
      case 'removeAccount':
        if (!role) return { outcome: 'unchanged', detail: 'already gone' };
        await c.query(`DROP ROLE ${subject}`);
        return { outcome: 'compensated', detail: `dropped role ${subject}` };
      case 'restoreAttributes':
        // PostgreSQL roles carry no profile attributes the plan manages.
        return { outcome: 'unchanged', detail: 'no attributes in PostgreSQL' };
      case 'restoreAccount':
      case 'reactivateAccount':
      case 'deactivateAccount': {
        if (!role) throw new PermanentTargetError('CompensationImpossible', `${what}: role ${subject} disappeared`);
        const login =
          step.action === 'restoreAccount'
            ? 'login' in prior && prior.login === true
            : step.action === 'reactivateAccount';
        if (role.rolcanlogin === login) return { outcome: 'unchanged', detail: 'already as before' };
        await c.query(`ALTER ROLE ${subject} ${login ? 'LOGIN' : 'NOLOGIN'}`);
        return { outcome: 'compensated', detail: login ? 'restored LOGIN' : 'restored NOLOGIN' };
      }
      case 'joinGroup':
      case 'grantRole':
      case 'leaveGroup':
      case 'revokeRole': {
        const roleName = this.grantedRole(op);
        const granted = quoteIdent(roleName);
        if (!role) return { outcome: 'unchanged', detail: 'no such account' };
        const grant = step.action === 'joinGroup' || step.action === 'grantRole';
        const member = (await this.role(c, roleName)) ? await this.isMember(c, op.subject, roleName) : false;
        let detail = 'already as before';
        if (member !== grant) {
          await c.query(grant ? `GRANT ${granted} TO ${subject}` : `REVOKE ${granted} FROM ${subject}`);
          detail = grant ? `re-granted ${granted}` : `revoked ${granted}`;
        }
        if (
          'created' in step &&
          step.created &&
          (await this.role(c, roleName)) &&
          !(await this.hasMembers(c, roleName))
        ) {
          await c.query(`DROP ROLE ${granted}`);
          detail += `; dropped the role ${granted} it had created`;
        } else if (member === grant) {
          return { outcome: 'unchanged', detail };
        }
        return { outcome: 'compensated', detail };
      }
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private grantedRole(op: OperationSpec): string {
    const name = op.params.role ?? op.params.group;
    if (typeof name !== 'string' || name === '')
      throw new PermanentTargetError('InvalidParams', `${this.target}: ${op.action} needs a role`);
    if (this.config.managedRolePrefix && !name.startsWith(this.config.managedRolePrefix)) {
      throw new PermanentTargetError(
        'TargetForbidden',
        `${this.target}: role "${name}" is outside the managed prefix "${this.config.managedRolePrefix}"`,
      );
    }
    return name;
  }

  /** A missing role to grant, created where the configuration allows; true when this call created it (false: created concurrently). */
  private async createRole(c: PoolClient, roleName: string, what: string): Promise<boolean> {
    const granted = quoteIdent(roleName);
    if (!this.config.createMissingRoles)
      throw new PermanentTargetError(
        'TargetMisconfigured',
        `${what}: role ${granted} does not exist in ${this.config.database}`,
      );
    try {
      await c.query(`CREATE ROLE ${granted} NOLOGIN`);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code !== '42710') throw err; // created concurrently: use it
      return false;
    }
  }

  private async role(c: PoolClient, name: string): Promise<RoleRow | undefined> {
    const r = await c.query<RoleRow>('SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = $1', [name]);
    return r.rows[0];
  }

  private async isMember(c: PoolClient, member: string, role: string): Promise<boolean> {
    const r = await c.query(
      `SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE r.rolname = $1 AND u.rolname = $2`,
      [role, member],
    );
    return (r.rowCount ?? 0) > 0;
  }

  private async hasMembers(c: PoolClient, role: string): Promise<boolean> {
    const r = await c.query(
      'SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = $1 LIMIT 1',
      [role],
    );
    return (r.rowCount ?? 0) > 0;
  }

  private async memberships(c: PoolClient, member: string): Promise<string[]> {
    const r = await c.query<{ rolname: string }>(
      `SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE u.rolname = $1 ORDER BY r.rolname`,
      [member],
    );
    return r.rows.map((row) => row.rolname);
  }

  private async withClient<T>(what: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
    await this.limiter?.acquire();
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw classifyPgError(err, what);
    }
    // A connection dropped while checked out emits 'error' on the client: the query fails with it anyway.
    const onError = (): void => undefined;
    client.on('error', onError);
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      const classified = classifyPgError(err, what);
      if (classified instanceof TransientTargetError) broken = classified; // do not reuse a connection that failed
      throw classified;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }
}

export function createPostgresConnector(
  target: string,
  config: PostgresConfig,
  secrets: SecretSource = secretSource(),
): Connector {
  return new PostgresConnector(
    target,
    config,
    config.password ? secrets.reader(config.password, `${target}.password`) : undefined,
  );
}
