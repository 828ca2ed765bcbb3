/**
 * Cloud IAM target (AWS IAM through the official SDK v3 client): one IAM user per account,
 * named exactly the subject and tagged `amendctl:subject`; IAM groups for joinGroup/leaveGroup
 * (created on first join, under the configured path); managed policy attachments for
 * grantRole/revokeRole, each role name mapped in configuration to a policy ARN or name.
 * Plan attributes (displayName, email, externalId) are user tags (IAM users have no such
 * fields); values IAM cannot hold in a tag are refused, never altered.
 *
 * Deactivation is reversible by construction, so reactivation and compensation restore the
 * account exactly:
 *   - every Active access key is set Inactive (their ids are kept in the tag
 *     `amendctl:deactivatedKeys`, so reactivation re-enables those keys and no others);
 *   - an inline policy `amendctl-deactivated` denying every action is put on the user: it
 *     stops the console session and any credential we did not see (the login profile is
 *     kept: deleting it would destroy a password nobody can restore);
 *   - the tag `amendctl:active=false`.
 * Reactivation is the mirror image (`amendctl:active=true`).
 *
 * The API (credentials, requests, paging, failure classification) is the client's
 * (./clients/iam.ts); this is what operations mean on users, groups and policies.
 * Compensation is the operation's inverse (./compensation.ts) with the prior state recorded
 * here: a created user deleted, a snapshot of everything an update or (de)activation touched
 * put back, a group we created deleted once empty, a policy re-attached or detached.
 */
import {
  AddUserToGroupCommand,
  AttachUserPolicyCommand,
  CreateGroupCommand,
  CreateUserCommand,
  DeleteGroupCommand,
  DeleteUserCommand,
  DeleteUserPolicyCommand,
  DetachUserPolicyCommand,
  GetGroupCommand,
  GetUserCommand,
  PutUserPolicyCommand,
  RemoveUserFromGroupCommand,
  TagUserCommand,
  UntagUserCommand,
  UpdateAccessKeyCommand,
  type Tag,
  type User,
} from '@aws-sdk/client-iam';
import { z } from 'zod';
import type { JsonValue } from '../domain/json';
import { IamClient, isAlreadyExists, isNoSuchEntity } from './clients/iam';
import { compensateWith, priorMismatch, type PriorFacts, type CompensationAction } from './compensation';
import { RateLimitSchema } from './rate-limit';
import { type SecretSource, secretSource, SecretRefSchema } from './secrets';
import {
  type AccountState,
  type ApplyResult,
  type CompensateResult,
  type CompensationSpec,
  type Connector,
  type OperationSpec,
  PermanentTargetError,
  TransientTargetError,
  nameParam,
  mappedAttributes,
} from './types';

export { classifyIamError } from './clients/iam';

const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;
const USER_NAME = /^[A-Za-z0-9_+=,.@-]{1,64}$/;
const GROUP_NAME = /^[A-Za-z0-9_+=,.@-]{1,128}$/;

export const iamConfigSchema = z
  .object({
    type: z.literal('iam'),
    region: z.string().min(1).default('us-east-1'),
    /** Another endpoint for the IAM API (a local emulator); default the SDK's. */
    endpoint: z.string().url().optional(),
    /** Static credentials named in the worker's environment or files; without them the SDK's default chain. */
    accessKeyId: SecretRefSchema.optional(),
    secretAccessKey: SecretRefSchema.optional(),
    sessionToken: SecretRefSchema.optional(),
    /** IAM path for the users and groups this target creates. */
    path: z
      .string()
      .regex(/^\/(?:[\x21-\x7e]+\/)?$/, 'an IAM path: "/" or "/a/b/"')
      .default('/amendctl/'),
    /** grantRole/revokeRole role name -> managed policy ARN (or policy name, looked up). Roles not listed are refused. */
    roles: z.record(z.string().min(1), z.string().min(1)).default({}),
    /** Plan attribute -> user tag key. */
    attributeTags: z
      .record(z.string(), z.string().regex(TAG_KEY, 'an IAM tag key'))
      .default({ displayName: 'amendctl:displayName', email: 'amendctl:email', externalId: 'amendctl:externalId' }),
    timeoutMs: z.number().int().positive().default(10_000),
    /** SDK-level attempts per request (1: leave retries to the activity). */
    maxAttempts: z.number().int().min(1).max(10).default(1),
    rateLimit: RateLimitSchema.optional(),
  })
  .strict()
  .refine((c) => (c.accessKeyId === undefined) === (c.secretAccessKey === undefined), {
    message: 'accessKeyId and secretAccessKey go together',
  });
export type IamConfig = z.infer<typeof iamConfigSchema>;

export const SUBJECT_TAG = 'amendctl:subject';
export const ACTIVE_TAG = 'amendctl:active';
export const DEACTIVATED_KEYS_TAG = 'amendctl:deactivatedKeys';
export const DENY_POLICY_NAME = 'amendctl-deactivated';
const DENY_ALL = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Sid: 'AmendctlDeactivated', Effect: 'Deny', Action: '*', Resource: '*' }],
});

function tagMap(tags: Tag[] | undefined): Record<string, string> {
  const m: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key !== undefined) m[t.Key] = t.Value ?? '';
  return m;
}

/** What a user looks like for restoring: tags (null = absent), deny policy present, access key statuses. */
interface UserSnapshot {
  tags: Record<string, string | null>;
  denyPolicy?: boolean;
  keys?: Record<string, 'Active' | 'Inactive'>;
}

type Prior =
  | { kind: 'none' }
  | { kind: 'created'; user: string }
  | { kind: 'user'; user: string; before: UserSnapshot }
  | { kind: 'group'; user: string; group: string; created: boolean; member: boolean }
  | { kind: 'policy'; user: string; arn: string; attached: boolean };

export class IamConnector implements Connector {
  readonly type = 'iam';
  private readonly policyArns = new Map<string, string>();

  constructor(
    readonly target: string,
    private readonly config: IamConfig,
    private readonly client: IamClient,
  ) {}

  async close(): Promise<void> {
    this.client.close();
  }

  // ---- names --------------------------------------------------------------------------

  private userName(subject: string): string {
    if (!USER_NAME.test(subject)) {
      throw new PermanentTargetError(
        'InvalidIdentifier',
        `target ${this.target}: ${JSON.stringify(subject)} cannot be an IAM user name (1-64 of A-Z a-z 0-9 _+=,.@-)`,
      );
    }
    return subject;
  }

  private groupName(name: string): string {
    if (!GROUP_NAME.test(name)) {
      throw new PermanentTargetError(
        'InvalidIdentifier',
        `target ${this.target}: ${JSON.stringify(name)} cannot be an IAM group name (1-128 of A-Z a-z 0-9 _+=,.@-)`,
      );
    }
    return name;
  }

  private async policyArn(role: string): Promise<string> {
    const ref = this.config.roles[role];
    if (ref === undefined)
      throw new PermanentTargetError(
        'TargetMisconfigured',
        `target ${this.target}: role ${JSON.stringify(role)} is not mapped to a policy (roles: ${Object.keys(this.config.roles).join(', ') || 'none'})`,
      );
    if (ref.startsWith('arn:')) return ref;
    const cached = this.policyArns.get(ref);
    if (cached) return cached;
    for (const scope of ['Local', 'AWS'] as const) {
      const policies = await this.client.policies(scope);
      const hit = policies.find((p) => p.PolicyName === ref);
      if (hit?.Arn) {
        this.policyArns.set(ref, hit.Arn);
        return hit.Arn;
      }
    }
    throw new PermanentTargetError(
      'TargetMisconfigured',
      `target ${this.target}: role ${JSON.stringify(role)}: no managed policy named ${JSON.stringify(ref)}`,
    );
  }

  /** Every configured role that maps to this policy (two names may share one policy). */
  private rolesOfArn(arn: string): string[] {
    return Object.entries(this.config.roles)
      .filter(([, ref]) => ref === arn || this.policyArns.get(ref) === arn)
      .map(([role]) => role);
  }

  // ---- lookups --------------------------------------------------------------------------

  /**
   * The IAM user for a subject, or null. IAM names are unique case-insensitively, so a
   * user whose stored name differs from the subject (or that another subject tagged) is
   * a conflict, never taken for it.
   */
  private async findUser(subject: string, strict = true): Promise<{ user: User; tags: Record<string, string> } | null> {
    const name = this.userName(subject);
    let user: User | undefined;
    try {
      user = (await this.client.send<{ User?: User }>(`get user ${name}`, new GetUserCommand({ UserName: name }))).User;
    } catch (err) {
      if (isNoSuchEntity(err)) return null;
      throw err;
    }
    if (!user?.UserName) return null;
    const tags = tagMap(user.Tags);
    const tagged = tags[SUBJECT_TAG];
    if (user.UserName !== name || (tagged !== undefined && tagged !== subject)) {
      if (!strict) return null;
      throw new PermanentTargetError(
        'TargetConflict',
        `target ${this.target}: IAM user ${JSON.stringify(user.UserName)} (subject tag ${JSON.stringify(tagged ?? null)}) answers to ${JSON.stringify(subject)}`,
      );
    }
    return { user, tags };
  }

  private async needUser(subject: string, why: string) {
    const u = await this.findUser(subject);
    if (!u)
      throw new PermanentTargetError(
        'AccountMissing',
        `target ${this.target}: no IAM user ${JSON.stringify(subject)} to ${why}`,
      );
    return u;
  }

  private async hasDenyPolicy(user: string): Promise<boolean> {
    return (await this.client.inlinePolicies(user)).includes(DENY_POLICY_NAME);
  }

  // ---- Connector ------------------------------------------------------------------------

  async readAccount(subject: string): Promise<AccountState | null> {
    const u = await this.findUser(subject, false);
    if (!u) return null;
    const name = u.user.UserName!;
    const roles: string[] = [];
    if (Object.keys(this.config.roles).length > 0) {
      await Promise.all(Object.keys(this.config.roles).map((r) => this.policyArn(r).catch(() => undefined)));
      for (const arn of await this.client.attachedArns(name)) roles.push(...this.rolesOfArn(arn));
    }
    const attributes: Record<string, string> = {};
    for (const [attr, key] of Object.entries(this.config.attributeTags))
      if (u.tags[key] !== undefined) attributes[attr] = u.tags[key];
    return {
      subject,
      id: name,
      active: u.tags[ACTIVE_TAG] !== 'false',
      groups: [...new Set([...(await this.client.groupsOf(name)), ...roles])].sort(),
      attributes,
    };
  }

  async apply(op: OperationSpec): Promise<ApplyResult> {
    switch (op.action) {
      case 'ensureAccount':
        return this.ensureAccount(op.subject, this.attributeTags(op));
      case 'updateAttributes': {
        const u = await this.needUser(op.subject, 'update');
        return this.reconcile(u.user.UserName!, u.tags, this.attributeTags(op), false, 'attributes already so');
      }
      case 'deactivateAccount':
        return this.deactivate(op.subject);
      case 'reactivateAccount': {
        const u = await this.needUser(op.subject, 'reactivate');
        return this.reconcile(u.user.UserName!, u.tags, {}, true, 'already active');
      }
      case 'joinGroup':
      case 'leaveGroup':
        return this.membership(op.subject, this.groupName(nameParam(op, 'group')), op.action === 'joinGroup');
      case 'grantRole':
      case 'revokeRole':
        return this.attachment(op.subject, nameParam(op, 'role'), op.action === 'grantRole');
      default:
        throw new PermanentTargetError(
          'UnsupportedAction',
          `target ${this.target}: unsupported action ${String(op.action)}`,
        );
    }
  }

  /** Plan attributes as tags; a value IAM cannot store in a tag is refused, not altered. */
  private attributeTags(op: OperationSpec): Record<string, string> {
    const mapped = mappedAttributes(op, {
      target: this.target,
      map: this.config.attributeTags,
      mapName: 'attributeTags',
      valid: (v) => TAG_VALUE.test(v),
      refusal: (v) =>
        `${JSON.stringify(v)} cannot be an IAM tag value (up to 256 letters, digits, spaces and _.:/=+-@)`,
    });
    const out: Record<string, string> = {};
    for (const [, key, v] of mapped) out[key] = v;
    return out;
  }

  private async ensureAccount(subject: string, tags: Record<string, string>): Promise<ApplyResult> {
    const name = this.userName(subject);
    for (let attempt = 0; attempt < 3; attempt++) {
      const u = await this.findUser(subject);
      if (u) return this.reconcile(name, u.tags, { [SUBJECT_TAG]: subject, ...tags }, true, 'user exists');
      try {
        await this.client.send(
          `create user ${name}`,
          new CreateUserCommand({
            UserName: name,
            Path: this.config.path,
            Tags: Object.entries({ [SUBJECT_TAG]: subject, ...tags }).map(([Key, Value]) => ({ Key, Value })),
          }),
        );
      } catch (err) {
        if (isAlreadyExists(err)) continue; // created meanwhile (or a case variant): look again
        throw err;
      }
      return { outcome: 'applied', prior: { kind: 'created', user: name }, detail: `created IAM user ${name}` };
    }
    throw new TransientTargetError(`target ${this.target}: IAM user ${name} keeps changing under us`);
  }

  /**
   * Bring tags to `want` and, when `activate`, take back a deactivation (deny policy removed,
   * the keys we deactivated re-enabled). Prior: a snapshot of everything touched.
   */
  private async reconcile(
    user: string,
    current: Record<string, string>,
    want: Record<string, string>,
    activate: boolean,
    unchangedNote: string,
  ): Promise<ApplyResult> {
    const before: UserSnapshot = { tags: {} };
    const setTags: Record<string, string> = {};
    const removeTags: string[] = [];
    for (const [k, v] of Object.entries(want)) {
      if (current[k] === v) continue;
      before.tags[k] = current[k] ?? null;
      setTags[k] = v;
    }
    let reenable: string[] = [];
    let dropPolicy = false;
    if (activate) {
      const deny = await this.hasDenyPolicy(user);
      const listed = (current[DEACTIVATED_KEYS_TAG] ?? '').split(' ').filter(Boolean);
      const keys = listed.length > 0 ? await this.client.accessKeys(user) : {};
      reenable = listed.filter((id) => keys[id] === 'Inactive');
      dropPolicy = deny;
      if (deny) before.denyPolicy = true;
      if (reenable.length > 0) before.keys = Object.fromEntries(reenable.map((id) => [id, 'Inactive' as const]));
      if (current[ACTIVE_TAG] === 'false') {
        before.tags[ACTIVE_TAG] = 'false';
        setTags[ACTIVE_TAG] = 'true';
      }
      if (current[DEACTIVATED_KEYS_TAG] !== undefined) {
        before.tags[DEACTIVATED_KEYS_TAG] = current[DEACTIVATED_KEYS_TAG];
        removeTags.push(DEACTIVATED_KEYS_TAG);
      }
    }
    const prior: Prior = { kind: 'user', user, before };
    if (Object.keys(setTags).length === 0 && removeTags.length === 0 && reenable.length === 0 && !dropPolicy) {
      return { outcome: 'unchanged', prior: prior as unknown as JsonValue, detail: unchangedNote };
    }
    for (const id of reenable)
      await this.client.send(
        `activate key of ${user}`,
        new UpdateAccessKeyCommand({ UserName: user, AccessKeyId: id, Status: 'Active' }),
      );
    if (dropPolicy) await this.deletePolicy(user);
    if (Object.keys(setTags).length > 0)
      await this.client.send(
        `tag ${user}`,
        new TagUserCommand({ UserName: user, Tags: Object.entries(setTags).map(([Key, Value]) => ({ Key, Value })) }),
      );
    if (removeTags.length > 0)
      await this.client.send(`untag ${user}`, new UntagUserCommand({ UserName: user, TagKeys: removeTags }));
    return {
      outcome: 'applied',
      prior: prior as unknown as JsonValue,
      detail: `updated IAM user ${user}${activate && (dropPolicy || reenable.length) ? ' (reactivated)' : ''}`,
    };
  }

  private async deletePolicy(user: string): Promise<void> {
    try {
      await this.client.send(
        `delete deny policy of ${user}`,
        new DeleteUserPolicyCommand({ UserName: user, PolicyName: DENY_POLICY_NAME }),
      );
    } catch (err) {
      if (!isNoSuchEntity(err)) throw err;
    }
  }

  private async deactivate(subject: string): Promise<ApplyResult> {
    const u = await this.findUser(subject);
    if (!u) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no IAM user to deactivate' };
    const user = u.user.UserName!;
    const keys = await this.client.accessKeys(user);
    const deny = await this.hasDenyPolicy(user);
    const active = Object.keys(keys).filter((id) => keys[id] === 'Active');
    const listed = (u.tags[DEACTIVATED_KEYS_TAG] ?? '').split(' ').filter(Boolean);
    const newListed = [...new Set([...listed, ...active])].sort().join(' ');
    const before: UserSnapshot = {
      tags: {},
      denyPolicy: deny,
      keys: Object.fromEntries(active.map((id) => [id, 'Active' as const])),
    };
    const setTags: Record<string, string> = {};
    if (u.tags[ACTIVE_TAG] !== 'false') {
      before.tags[ACTIVE_TAG] = u.tags[ACTIVE_TAG] ?? null;
      setTags[ACTIVE_TAG] = 'false';
    }
    if (active.length > 0) {
      before.tags[DEACTIVATED_KEYS_TAG] = u.tags[DEACTIVATED_KEYS_TAG] ?? null;
      setTags[DEACTIVATED_KEYS_TAG] = newListed;
    }
    const prior: Prior = { kind: 'user', user, before };
    if (deny && active.length === 0 && Object.keys(setTags).length === 0)
      return { outcome: 'unchanged', prior: prior as unknown as JsonValue, detail: 'already deactivated' };
    // Deny first: from this request on the user can do nothing, whatever happens next.
    if (!deny)
      await this.client.send(
        `put deny policy on ${user}`,
        new PutUserPolicyCommand({ UserName: user, PolicyName: DENY_POLICY_NAME, PolicyDocument: DENY_ALL }),
      );
    if (Object.keys(setTags).length > 0)
      await this.client.send(
        `tag ${user}`,
        new TagUserCommand({ UserName: user, Tags: Object.entries(setTags).map(([Key, Value]) => ({ Key, Value })) }),
      );
    for (const id of active)
      await this.client.send(
        `deactivate key of ${user}`,
        new UpdateAccessKeyCommand({ UserName: user, AccessKeyId: id, Status: 'Inactive' }),
      );
    return {
      outcome: 'applied',
      prior: prior as unknown as JsonValue,
      detail: `deactivated IAM user ${user} (${active.length} access key(s) set Inactive)`,
    };
  }

  private async groupMembersEmpty(group: string): Promise<boolean | null> {
    try {
      const g = await this.client.send<{ Users?: unknown[] }>(
        `get group ${group}`,
        new GetGroupCommand({ GroupName: group, MaxItems: 1 }),
      );
      return (g.Users ?? []).length === 0;
    } catch (err) {
      if (isNoSuchEntity(err)) return null;
      throw err;
    }
  }

  private async groupExists(group: string): Promise<boolean> {
    try {
      const g = await this.client.send<{ Group?: { GroupName?: string } }>(
        `get group ${group}`,
        new GetGroupCommand({ GroupName: group, MaxItems: 1 }),
      );
      if (g.Group?.GroupName !== undefined && g.Group.GroupName !== group) {
        throw new PermanentTargetError(
          'TargetConflict',
          `target ${this.target}: IAM group ${JSON.stringify(g.Group.GroupName)} answers to ${JSON.stringify(group)}`,
        );
      }
      return true;
    } catch (err) {
      if (isNoSuchEntity(err)) return false;
      throw err;
    }
  }

  private async membership(subject: string, group: string, join: boolean): Promise<ApplyResult> {
    const u = await this.findUser(subject);
    if (!u) {
      if (!join) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no IAM user' };
      throw new PermanentTargetError(
        'AccountMissing',
        `target ${this.target}: no IAM user ${JSON.stringify(subject)} to add to ${group}`,
      );
    }
    const user = u.user.UserName!;
    const member = (await this.client.groupsOf(user)).includes(group);
    if (member === join)
      return { outcome: 'unchanged', prior: { kind: 'none' }, detail: join ? 'already a member' : 'not a member' };
    if (!join) {
      try {
        await this.client.send(
          `remove ${user} from ${group}`,
          new RemoveUserFromGroupCommand({ GroupName: group, UserName: user }),
        );
      } catch (err) {
        if (!isNoSuchEntity(err)) throw err;
      }
      return {
        outcome: 'applied',
        prior: { kind: 'group', user, group, created: false, member: true },
        detail: `removed ${user} from ${group}`,
      };
    }
    let created = false;
    if (!(await this.groupExists(group))) {
      try {
        await this.client.send(
          `create group ${group}`,
          new CreateGroupCommand({ GroupName: group, Path: this.config.path }),
        );
        created = true;
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        await this.groupExists(group); // a case variant is a conflict
      }
    }
    await this.client.send(`add ${user} to ${group}`, new AddUserToGroupCommand({ GroupName: group, UserName: user }));
    return {
      outcome: 'applied',
      prior: { kind: 'group', user, group, created, member: false },
      detail: `${created ? 'created group and ' : ''}added ${user} to ${group}`,
    };
  }

  private async attachment(subject: string, role: string, grant: boolean): Promise<ApplyResult> {
    const arn = await this.policyArn(role);
    const u = await this.findUser(subject);
    if (!u) {
      if (!grant) return { outcome: 'unchanged', prior: { kind: 'none' }, detail: 'no IAM user' };
      throw new PermanentTargetError(
        'AccountMissing',
        `target ${this.target}: no IAM user ${JSON.stringify(subject)} to grant ${role}`,
      );
    }
    const user = u.user.UserName!;
    const attached = (await this.client.attachedArns(user)).includes(arn);
    if (attached === grant)
      return { outcome: 'unchanged', prior: { kind: 'none' }, detail: grant ? 'already attached' : 'not attached' };
    await this.setAttached(user, arn, grant);
    return {
      outcome: 'applied',
      prior: { kind: 'policy', user, arn, attached },
      detail: `${grant ? 'attached' : 'detached'} ${arn} ${grant ? 'to' : 'from'} ${user}`,
    };
  }

  private async setAttached(user: string, arn: string, attach: boolean): Promise<void> {
    try {
      await this.client.send(
        `${attach ? 'attach' : 'detach'} ${arn}`,
        attach
          ? new AttachUserPolicyCommand({ UserName: user, PolicyArn: arn })
          : new DetachUserPolicyCommand({ UserName: user, PolicyArn: arn }),
      );
    } catch (err) {
      if (!(isNoSuchEntity(err) && !attach)) throw err;
    }
  }

  async compensate(op: CompensationSpec, result: ApplyResult): Promise<CompensateResult> {
    const prior = result.prior as unknown as Prior | null;
    return compensateWith(op, result, priorFacts(prior), (step) => this.performCompensation(prior!, step));
  }

  /** Perform a compensation step, with the exact values the prior state recorded. */
  private async performCompensation(prior: Prior, step: CompensationAction): Promise<CompensateResult> {
    const mismatch = () => priorMismatch(this.target, prior.kind, step);
    switch (step.action) {
      case 'removeAccount':
        if (prior.kind !== 'created') throw mismatch();
        try {
          await this.client.send(`delete user ${prior.user}`, new DeleteUserCommand({ UserName: prior.user }));
          return { outcome: 'compensated', detail: `deleted IAM user ${prior.user}` };
        } catch (err) {
          if (isNoSuchEntity(err)) return { outcome: 'unchanged', detail: `${prior.user} already gone` };
          throw err;
        }
      case 'restoreAccount':
      case 'reactivateAccount':
      case 'deactivateAccount':
        if (prior.kind !== 'user') throw mismatch();
        return this.restoreUser(prior.user, prior.before);
      case 'restoreAttributes': {
        if (prior.kind !== 'user') throw mismatch();
        const keys = new Set(step.attributes.map((a) => this.config.attributeTags[a]));
        return this.restoreUser(prior.user, {
          tags: Object.fromEntries(Object.entries(prior.before.tags).filter(([k]) => keys.has(k))),
        });
      }
      case 'joinGroup':
      case 'leaveGroup': {
        if (prior.kind !== 'group') throw mismatch();
        const join = step.action === 'joinGroup';
        const member = (
          await this.client
            .groupsOf(prior.user)
            .catch((err: unknown) => (isNoSuchEntity(err) ? ([] as string[]) : Promise.reject(err)))
        ).includes(prior.group);
        let changed = false;
        if (member !== join) {
          if (join)
            await this.client.send(
              `add ${prior.user} to ${prior.group}`,
              new AddUserToGroupCommand({ GroupName: prior.group, UserName: prior.user }),
            );
          else {
            try {
              await this.client.send(
                `remove ${prior.user} from ${prior.group}`,
                new RemoveUserFromGroupCommand({ GroupName: prior.group, UserName: prior.user }),
              );
            } catch (err) {
              if (!isNoSuchEntity(err)) throw err;
            }
          }
          changed = true;
        }
        if (step.action === 'leaveGroup' && step.created && (await this.groupMembersEmpty(prior.group)) === true) {
          try {
            await this.client.send(`delete group ${prior.group}`, new DeleteGroupCommand({ GroupName: prior.group }));
            changed = true;
          } catch (err) {
            if (!isNoSuchEntity(err)) throw err;
          }
        }
        return changed
          ? { outcome: 'compensated', detail: `restored ${prior.user} in ${prior.group}` }
          : { outcome: 'unchanged', detail: 'already as before' };
      }
      case 'grantRole':
      case 'revokeRole': {
        if (prior.kind !== 'policy') throw mismatch();
        const attach = step.action === 'grantRole';
        const attached = (await this.client.attachedArns(prior.user)).includes(prior.arn);
        if (attached === attach) return { outcome: 'unchanged', detail: 'already as before' };
        await this.setAttached(prior.user, prior.arn, attach);
        return { outcome: 'compensated', detail: `${attach ? 're-attached' : 'detached'} ${prior.arn}` };
      }
    }
  }

  private async restoreUser(user: string, before: UserSnapshot): Promise<CompensateResult> {
    const u = await this.client.send<{ User?: User }>(`get user ${user}`, new GetUserCommand({ UserName: user }));
    const tags = tagMap(u.User?.Tags);
    const setTags = Object.entries(before.tags).filter(([k, v]) => v !== null && tags[k] !== v) as Array<
      [string, string]
    >;
    const removeTags = Object.entries(before.tags)
      .filter(([k, v]) => v === null && tags[k] !== undefined)
      .map(([k]) => k);
    const keys = before.keys && Object.keys(before.keys).length > 0 ? await this.client.accessKeys(user) : {};
    const keyChanges = Object.entries(before.keys ?? {}).filter(
      ([id, status]) => keys[id] !== undefined && keys[id] !== status,
    );
    const deny = before.denyPolicy === undefined ? undefined : await this.hasDenyPolicy(user);
    const policyChange = before.denyPolicy !== undefined && deny !== before.denyPolicy;
    if (setTags.length === 0 && removeTags.length === 0 && keyChanges.length === 0 && !policyChange)
      return { outcome: 'unchanged', detail: 'already as before' };
    // Lift the deny last when re-enabling, put it first when disabling again.
    if (policyChange && before.denyPolicy)
      await this.client.send(
        `put deny policy on ${user}`,
        new PutUserPolicyCommand({ UserName: user, PolicyName: DENY_POLICY_NAME, PolicyDocument: DENY_ALL }),
      );
    for (const [id, status] of keyChanges)
      await this.client.send(
        `restore key of ${user}`,
        new UpdateAccessKeyCommand({ UserName: user, AccessKeyId: id, Status: status }),
      );
    if (setTags.length > 0)
      await this.client.send(
        `tag ${user}`,
        new TagUserCommand({ UserName: user, Tags: setTags.map(([Key, Value]) => ({ Key, Value })) }),
      );
    if (removeTags.length > 0)
      await this.client.send(`untag ${user}`, new UntagUserCommand({ UserName: user, TagKeys: removeTags }));
    if (policyChange && !before.denyPolicy) await this.deletePolicy(user);
    return { outcome: 'compensated', detail: `restored IAM user ${user}` };
  }
}

/** What the recorded prior state says for the inverse (./compensation.ts). */
function priorFacts(prior: Prior | null): PriorFacts | null {
  if (!prior || typeof prior !== 'object') return null;
  switch (prior.kind) {
    case 'created':
      return { kind: 'account', existed: false };
    case 'user':
      return { kind: 'account', existed: true };
    case 'group':
      return { kind: 'membership', member: prior.member, created: prior.created };
    case 'policy':
      return { kind: 'membership', member: prior.attached };
    default:
      return null;
  }
}

export function createIamConnector(
  target: string,
  config: IamConfig,
  secrets: SecretSource = secretSource(),
): Connector {
  const c = iamConfigSchema.parse(config);
  const { accessKeyId, secretAccessKey, sessionToken } = c;
  const read = (ref: NonNullable<IamConfig['accessKeyId']>, what: string) =>
    secrets.reader(ref, `target ${target}: ${what}`);
  const keyId = accessKeyId && read(accessKeyId, 'accessKeyId');
  const secret = secretAccessKey && read(secretAccessKey, 'secretAccessKey');
  const token = sessionToken && read(sessionToken, 'sessionToken');
  const credentials =
    keyId && secret
      ? () => ({ accessKeyId: keyId(), secretAccessKey: secret(), ...(token ? { sessionToken: token() } : {}) })
      : undefined;
  const client = new IamClient(target, {
    region: c.region,
    ...(c.endpoint ? { endpoint: c.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    timeoutMs: c.timeoutMs,
    maxAttempts: c.maxAttempts,
    ...(c.rateLimit ? { rateLimit: c.rateLimit } : {}),
  });
  return new IamConnector(target, c, client);
}
