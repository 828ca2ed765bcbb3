/**
 * Target configuration and the Connector for each Target. The worker reads a targets
 * file (YAML) once; `${VAR}` and `${VAR:-default}` in its values are replaced from the
 * worker's environment after it is parsed (src/connectors/interpolate.ts: for addresses and
 * ports; credentials are named with `{ env }` or `{ file }` and read only when a connector
 * uses them).
 *
 * Each connector is a protocol client (src/connectors/clients/: transport, auth, paging,
 * quirks) under a thin connector of its target type; the registry creates them from the
 * configuration and hands them the one source of credentials (src/connectors/secrets.ts, over
 * the registry's environment): no client or connector reads the environment or a secret file
 * itself.
 */
import { z } from 'zod';
import { InputError } from '../domain/errors';
import { createHttpConnector, httpConfigSchema } from './http';
import { createIamConnector, iamConfigSchema } from './iam';
import { createLdapConnector, ldapConfigSchema } from './ldap';
import { createPostgresConnector, postgresConfigSchema } from './postgres';
import { createScimConnector, scimConfigSchema } from './scim';
import { parseEnvTyped, parseWithEnv } from './interpolate';
import { type SecretSource, secretSource } from './secrets';
import type { Connector } from './types';

/** One line per connector type: its config schema and its factory (the client and the connector on it, given the credentials' source). */
const connectorTypes = {
  postgres: { schema: postgresConfigSchema, create: createPostgresConnector },
  scim: { schema: scimConfigSchema, create: createScimConnector },
  ldap: { schema: ldapConfigSchema, create: createLdapConnector },
  http: { schema: httpConfigSchema, create: createHttpConnector },
  iam: { schema: iamConfigSchema, create: createIamConnector },
} as const satisfies Record<
  string,
  { schema: z.ZodType; create: (target: string, config: never, secrets: SecretSource) => Connector }
>;

export type ConnectorType = keyof typeof connectorTypes;

const TargetConfigSchema = z.looseObject({ type: z.string() });

export const TargetsFileSchema = z
  .object({
    targets: z.record(z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'a target name: a-z, 0-9, "-"'), TargetConfigSchema),
  })
  .strict();

/**
 * `provisioning` in any target's configuration: how amendments run on it. Operations go in
 * batches of `batchSize` (whole accounts), `concurrency` accounts at once inside a batch, and
 * up to `lanes` batches of one amendment at once (on any workers). `lookupBatch` accounts are
 * looked up with one request where the connector can (SCIM: a search for `userName eq ... or
 * externalId eq ...`): under a rate limit a new account then costs one request, not three. It is
 * 1 (each alone) unless set, since a provider that does not index such a search scans every
 * user for it (scim2-server does: at 10,000 users the searches cost more than they save).
 */
export const ProvisioningSchema = z
  .object({
    batchSize: z.number().int().min(1).max(5000).default(250),
    concurrency: z.number().int().min(1).max(64).default(8),
    lanes: z.number().int().min(1).max(32).default(1),
    lookupBatch: z.number().int().min(1).max(50).default(1),
  })
  .strict();
export type Provisioning = z.infer<typeof ProvisioningSchema>;
export const DEFAULT_PROVISIONING: Provisioning = ProvisioningSchema.parse({});

export interface TargetsConfig {
  /** Validated per-target configuration, by target name. */
  targets: Record<string, { type: ConnectorType; config: unknown; provisioning: Provisioning }>;
}

/** The task queue a target's batches run on: every worker of `taskQueue` polls it, and nothing else does. */
export const targetTaskQueue = (taskQueue: string, target: string): string => `${taskQueue}.target.${target}`;

export function parseTargets(text: string, file: string, env: NodeJS.ProcessEnv = process.env): TargetsConfig {
  const doc = parseWithEnv(text, env, file, 'targets file');
  const top = parseEnvTyped(TargetsFileSchema, doc.value, doc.sole, file);
  if (!top.success) throw new InputError('invalid targets file', top.issues);
  const targets: TargetsConfig['targets'] = {};
  const issues = [];
  for (const [name, cfg] of Object.entries(top.data.targets)) {
    const type = cfg.type as ConnectorType;
    const entry = connectorTypes[type];
    if (!entry) {
      issues.push({
        file,
        path: `targets.${name}.type`,
        message: `unknown connector type "${cfg.type}" (known: ${Object.keys(connectorTypes).join(', ')})`,
      });
      continue;
    }
    const { provisioning, ...connectorConfig } = cfg as Record<string, unknown>;
    const p = parseEnvTyped(ProvisioningSchema, provisioning ?? {}, doc.sole, file, ['targets', name, 'provisioning']);
    if (!p.success)
      issues.push(
        ...p.issues.map((i) => ({ ...i, path: `targets.${name}.provisioning${i.path ? `.${i.path}` : ''}` })),
      );
    const r = parseEnvTyped(entry.schema as z.ZodType, connectorConfig, doc.sole, file, ['targets', name]);
    if (!r.success)
      issues.push(...r.issues.map((i) => ({ ...i, path: `targets.${name}${i.path ? `.${i.path}` : ''}` })));
    else if (p.success) targets[name] = { type, config: r.data, provisioning: p.data };
  }
  if (issues.length > 0) throw new InputError('invalid targets file', issues);
  return { targets };
}

/** Connectors by target name, created on first use and shared by every activity in this worker. */
export class ConnectorRegistry {
  private readonly connectors = new Map<string, Connector>();
  private readonly secrets: SecretSource;
  /** `env`: where the targets' credentials named `{ env }` are read (the worker's environment). */
  constructor(
    readonly config: TargetsConfig,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.secrets = secretSource(env);
  }

  get(target: string): Connector | undefined {
    let c = this.connectors.get(target);
    if (c) return c;
    const t = this.config.targets[target];
    if (!t) return undefined;
    c = (connectorTypes[t.type].create as (target: string, config: unknown, secrets: SecretSource) => Connector)(
      target,
      t.config,
      this.secrets,
    );
    this.connectors.set(target, c);
    return c;
  }

  /** Whether the target is configured (without connecting to it). */
  has(target: string): boolean {
    return Object.hasOwn(this.config.targets, target);
  }

  names(): string[] {
    return Object.keys(this.config.targets);
  }

  provisioning(target: string): Provisioning {
    return this.config.targets[target]?.provisioning ?? DEFAULT_PROVISIONING;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.connectors.values()].map((c) => c.close()));
    this.connectors.clear();
  }
}
