/**
 * What a deployed process needs in its environment. Outside `amendctl dev` the local defaults
 * (Temporal and the databases on 127.0.0.1, the dev key file) are wrong, so each need below must be
 * met by one of its variables:
 * - WORKER_ENV and API_ENV: Temporal, the codec keys, the amendctl database (a worker only);
 * - fileEnvNeeds(targets file): what the targets file names: each credential (`{ env: NAME }`,
 *   `bearerTokenEnv: NAME`), each `${NAME}` without a default, and each `${NAME:-default}` whose
 *   default is this machine (127.0.0.1, localhost), as a target's address is.
 * `amendctl worker` checks them at start (it refuses to start without a credential its targets name,
 * and warns of the rest); test/deploy checks that every container of docker-compose.yml and of
 * deploy/kubernetes meets them.
 *
 * Secrets may come as files (Compose and Kubernetes secrets are mounted files): `NAME_FILE=/path`
 * sets NAME from the file, trailing newline removed, when NAME is unset (applyFileEnv), for each
 * need marked `secret` (and TEMPORAL_API_KEY). The codec keys have their own file form,
 * AMENDCTL_CODEC_KEY_FILE (src/codec).
 */
import { readFileSync } from 'node:fs';
import { parseStructuredText } from '../domain/document';

/** `${VAR}` or `${VAR:-default}` in a policy file's string values (src/connectors/interpolate.ts substituteEnv replaces them). */
export const ENV_PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export interface EnvNeed {
  /** Met when any one of these is set and not empty (a secret's NAME also by NAME_FILE). */
  anyOf: readonly string[];
  why: string;
  /** Without it the process cannot work at all (no default would do): `amendctl worker` refuses to start. */
  required: boolean;
  /** A secret: may be given as NAME_FILE. */
  secret?: boolean;
}

export const TEMPORAL_NEED: EnvNeed = {
  anyOf: ['TEMPORAL_ADDRESS', 'TEMPORAL_PROFILE', 'TEMPORAL_CONFIG_FILE'],
  why: 'where Temporal is (else localhost:7233)',
  required: false,
};
export const CODEC_NEED: EnvNeed = {
  anyOf: ['AMENDCTL_CODEC_KEYS', 'AMENDCTL_CODEC_KEY_FILE'],
  why: 'the payload encryption keys',
  required: true,
};
/** The amendctl database (operation store, audit log, shares, rate buckets): src/audit/store.ts auditDbConfig. */
export const AMENDCTL_DB_NEEDS: readonly EnvNeed[] = [
  {
    anyOf: ['AMENDCTL_AUDIT_DATABASE_URL', 'AMENDCTL_AUDIT_HOST', 'AMENDCTL_WAREHOUSE_HOST'],
    why: 'where the amendctl database is (else 127.0.0.1)',
    required: false,
  },
  {
    anyOf: ['AMENDCTL_AUDIT_DATABASE_URL', 'AMENDCTL_AUDIT_PASSWORD', 'AMENDCTL_WAREHOUSE_PASSWORD'],
    why: "the amendctl database's password",
    required: false,
    secret: true,
  },
];

/** The public keys whose signatures prove an approver (src/approvals/token.ts). */
export const APPROVAL_KEYS_NEED: EnvNeed = {
  anyOf: ['AMENDCTL_APPROVAL_KEYS'],
  why: 'the approval keys file (else no approval counts)',
  required: false,
};
/** The key the API signs people's decisions with. */
export const APPROVAL_SIGNING_NEED: EnvNeed = {
  anyOf: ['AMENDCTL_APPROVAL_SIGNING_KEY'],
  why: "the API's approval signing key (else approve and reject answer 501)",
  required: false,
};

/** `amendctl worker`, before the targets file's own needs. */
export const WORKER_ENV: readonly EnvNeed[] = [TEMPORAL_NEED, CODEC_NEED, ...AMENDCTL_DB_NEEDS, APPROVAL_KEYS_NEED];
/** `amendctl serve`: a Temporal client that encodes payloads, and the key that signs approvals. */
export const API_ENV: readonly EnvNeed[] = [TEMPORAL_NEED, CODEC_NEED, APPROVAL_SIGNING_NEED];

/** Secrets that may come as NAME_FILE in every command (TEMPORAL_API_KEY: Temporal Cloud). */
export const SECRET_ENV: readonly string[] = [
  'TEMPORAL_API_KEY',
  'AMENDCTL_CODEC_SERVER_TOKEN',
  ...secretNames(AMENDCTL_DB_NEEDS),
];

const LOOPBACK = /^(?:[a-z][a-z0-9+.-]*:\/\/)?(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])(?:[:/]|$)/i;

/** What a targets file (or a webhook sources file: the same references), as written, needs from the environment. */
export function fileEnvNeeds(text: string, file: string): EnvNeed[] {
  const needs = new Map<string, EnvNeed>();
  const add = (name: string, need: Omit<EnvNeed, 'anyOf'>) => {
    const had = needs.get(name);
    if (!had || (need.required && !had.required)) needs.set(name, { anyOf: [name], ...need });
  };
  // Placeholders count where they are replaced, in string values (not in keys or comments), before the credentials.
  const values: string[] = [];
  const credentials: Array<[string, Omit<EnvNeed, 'anyOf'>]> = [];
  const walk = (node: unknown, path: string): void => {
    if (typeof node === 'string') values.push(node);
    else if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${path}[${i}]`));
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && typeof o.env === 'string')
        credentials.push([o.env, { why: `the credential ${path} in ${file}`, required: true, secret: true }]);
      for (const [k, v] of Object.entries(o)) {
        if (k === 'bearerTokenEnv' && typeof v === 'string')
          credentials.push([v, { why: `the credential ${path}.${k} in ${file}`, required: true, secret: true }]);
        else walk(v, path ? `${path}.${k}` : k);
      }
    }
  };
  walk(parseStructuredText(text, file), '');
  for (const m of values.flatMap((v) => [...v.matchAll(ENV_PLACEHOLDER)])) {
    const [, name, def] = m as unknown as [string, string, string | undefined];
    if (def === undefined) add(name, { why: `\${${name}} in ${file} has no default`, required: true });
    else if (LOOPBACK.test(def.trim()))
      add(name, { why: `\${${name}} in ${file} defaults to ${def}, this machine`, required: false });
  }
  for (const [name, need] of credentials) add(name, need);
  return [...needs.values()];
}

export function secretNames(needs: readonly EnvNeed[]): string[] {
  return [...new Set(needs.filter((n) => n.secret).flatMap((n) => n.anyOf))];
}

const isSet = (env: NodeJS.ProcessEnv, name: string): boolean => env[name] !== undefined && env[name] !== '';

/** The needs none of whose variables is set (a secret's NAME_FILE counts). */
export function unmetEnv(needs: readonly EnvNeed[], env: NodeJS.ProcessEnv): EnvNeed[] {
  return needs.filter((n) => !n.anyOf.some((name) => isSet(env, name) || (n.secret && isSet(env, `${name}_FILE`))));
}

export function describeNeed(n: EnvNeed): string {
  const names = n.anyOf.flatMap((name) => (n.secret ? [name, `${name}_FILE`] : [name]));
  return `${names.join(' or ')}: ${n.why}`;
}

/** NAME_FILE -> NAME for each of `names` whose NAME is unset; an unreadable file is an error naming the variable. */
export function applyFileEnv(env: NodeJS.ProcessEnv, names: Iterable<string>): void {
  for (const name of names) {
    const file = env[`${name}_FILE`];
    if (isSet(env, name) || !file) continue;
    try {
      env[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new Error(
        `${name}_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
}
