/** `amendctl serve`: the HTTP API (src/api); `amendctl serve key new`: an API key for it. */
import { existsSync } from 'node:fs';
import { BusinessIdSchema } from '../../domain/amendment';
import { type ApiKey, type JwtConfig, loadApiKeys, newApiKey, SCOPES, ScopeSchema } from '../../api/auth';
import { ApprovalDesk } from '../../api/approvals';
import { Intake } from '../../api/intake';
import { type InboxOptions, loadOidcConfig, loadSessionKeys, LocalUsers, parseSessionKeys } from '../../api/inbox';
import { jsonLines } from '../../api/log';
import { loadSigningKey } from '../../approvals/token';
import { buildApiServer, DEFAULT_LIMITS } from '../../api/server';
import { loadWebhookSources, type WebhookSource } from '../../api/webhooks';
import { connect, connectionOptions, parse, strings } from '../common';
import { type CliIO, type Command, UsageError } from '../io';
import { tracingFromEnv } from '../../observability/tracing';
import { help } from './amendments';
import { portArg, untilSignal } from './runtime';

const USAGE =
  'amendctl serve [--port 8080] [--host 127.0.0.1] [--keys FILE] [--sources FILE] [--public-url URL] [--max-body BYTES] [--jwks URL --issuer ISS --audience AUD] [--approval-key FILE] [--users FILE] [--oidc FILE] [--session-keys FILE] [--address HOST:PORT] | amendctl serve key new --id ID --scopes read,submit [--name TEXT] [--person APPROVER]';

const WHAT = [
  'Serves API v1 (GET /openapi.json for all of it): POST /v1/amendments, GET /v1/amendments/{id}, GET /v1/contracts/{id}, POST /v1/amendments/{id}/cancel, /approve, /reject, POST /v1/webhooks/{source}, GET /healthz, /readyz, /metrics.',
  "Approvals: a person (an API key with `person`, or a token's subject) approves or rejects; the server signs the decision with its approval key (--approval-key FILE or AMENDCTL_APPROVAL_SIGNING_KEY, from `amendctl approval-key new`), which the workers trust (AMENDCTL_APPROVAL_KEYS).",
  'Callers send Authorization: Bearer <API key> (--keys FILE or AMENDCTL_API_KEYS: { keys: [{ id, sha256, scopes, name }] }) or an access token (a JWT: --jwks, --issuer, --audience or AMENDCTL_API_JWKS_URL, AMENDCTL_API_ISSUER, AMENDCTL_API_AUDIENCE).',
  `Scopes: ${SCOPES.join(', ')}. Webhooks are authenticated by their signature (--sources FILE or AMENDCTL_API_SOURCES); --public-url is the base URL senders sign.`,
  'The webhook intake (with sources; --intake off or AMENDCTL_INTAKE=off to go without): a delivery is acknowledged once its amendments are kept in the amendctl database (AMENDCTL_AUDIT_DATABASE_URL or AMENDCTL_AUDIT_HOST/PORT/USER/PASSWORD, as the worker) and their workflows start right after, from any instance; without it, once started.',
  'The approvals inbox (/inbox, for people; needs the approval key): sign-in with local users (--users FILE or AMENDCTL_INBOX_USERS; amendctl users add) and/or an OpenID provider (--oidc FILE or AMENDCTL_INBOX_OIDC: { issuer, clientId, clientSecret: { env: NAME } | { file: PATH }, redirectUrl, approverClaim: sub | preferred_username | email }); sessions sealed with --session-keys FILE or AMENDCTL_INBOX_SESSION_KEYS (amendctl users key makes one; every instance behind a load balancer gets the same).',
  'The access log is JSON lines on stdout. key new: prints a new key once and the entry for the keys file.',
].join('\n');

export const serveCommand: Command = async (argv, io) => {
  const { values, positionals } = parse(
    argv,
    {
      ...connectionOptions,
      ...strings(
        'port',
        'host',
        'keys',
        'sources',
        'public-url',
        'max-body',
        'jwks',
        'issuer',
        'audience',
        'id',
        'scopes',
        'name',
        'person',
        'approval-key',
        'users',
        'oidc',
        'session-keys',
        'intake',
      ),
    },
    USAGE,
  );
  if (values.help) return help(io, USAGE, WHAT);
  if (positionals[0] === 'key') {
    if (positionals[1] !== 'new' || positionals.length !== 2)
      throw new UsageError(`expected: serve key new --id ID --scopes LIST\nusage: ${USAGE}`);
    return keyNew(io, values);
  }
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}\nusage: ${USAGE}`);

  const env = process.env;
  const keysFile = values.keys ?? env.AMENDCTL_API_KEYS;
  const sourcesFile = values.sources ?? env.AMENDCTL_API_SOURCES;
  const jwt = jwtConfig(
    values.jwks ?? env.AMENDCTL_API_JWKS_URL,
    values.issuer ?? env.AMENDCTL_API_ISSUER,
    values.audience ?? env.AMENDCTL_API_AUDIENCE,
  );
  const bodyBytes = values['max-body'] !== undefined ? Number(values['max-body']) : DEFAULT_LIMITS.bodyBytes;
  if (!Number.isInteger(bodyBytes) || bodyBytes < 1) throw new UsageError('--max-body takes a number of bytes');
  const keys = keysFile ? loadApiKeys(keysFile) : [];
  const sources = sourcesFile ? loadWebhookSources(sourcesFile, env) : new Map<string, WebhookSource>();
  const inbox = inboxOptions(values, env);
  if (inbox && !(values['approval-key'] ?? env.AMENDCTL_APPROVAL_SIGNING_KEY))
    throw new UsageError(
      'the inbox signs the decisions it sends: give it --approval-key FILE (or AMENDCTL_APPROVAL_SIGNING_KEY) too',
    );
  const host = values.host ?? '127.0.0.1';
  const port = portArg(values.port, 8080, '--port');

  tracingFromEnv('amendctl-api', env); // before the client, whose interceptor carries each request's trace into the workflow
  const client = await connect(values);
  const intakeSetting = values.intake ?? env.AMENDCTL_INTAKE ?? 'on';
  if (intakeSetting !== 'on' && intakeSetting !== 'off')
    throw new UsageError(`--intake takes on or off, got "${intakeSetting}"`);
  const intake = sources.size > 0 && intakeSetting === 'on' ? Intake.fromEnv(client, env) : undefined;
  const signingKey = values['approval-key'] ?? env.AMENDCTL_APPROVAL_SIGNING_KEY;
  const desk = signingKey ? new ApprovalDesk({ client, signer: loadSigningKey(signingKey) }) : undefined;
  const app = buildApiServer({
    client,
    ...(desk ? { desk } : {}),
    ...(inbox ? { inbox } : {}),
    ...(intake ? { intake } : {}),
    sources,
    auth: { keys, ...(jwt ? { jwt } : {}) },
    limits: { ...DEFAULT_LIMITS, bodyBytes },
    logger: jsonLines(),
    ...(values['public-url'] ? { publicUrl: values['public-url'] } : {}),
  });
  try {
    const url = await app.listen({ port, host });
    if (!desk) io.err('amendctl serve: no approval key (--approval-key): approve and reject answer 501');
    if (keys.length === 0 && !jwt)
      io.err(
        'amendctl serve: warning: no API keys (--keys) and no token issuer (--jwks): only webhooks, /healthz and /openapi.json will answer',
      );
    io.err(
      `amendctl serve: ${url} (API v1, ${url}/openapi.json); ${keys.length} API key(s)${jwt ? `, tokens from ${jwt.issuer}` : ''}, ${sources.size} webhook source(s)${sources.size ? ` (${[...sources.keys()].join(', ')}${intake ? '; acknowledged once kept by the intake' : '; acknowledged once started, no intake'})` : ''}${inbox ? `; approvals inbox ${url}/inbox (${[inbox.users ? 'local users' : '', inbox.oidc ? `OpenID provider ${inbox.oidc.issuer}` : ''].filter(Boolean).join(', ')})` : ''}. Ctrl-C stops it.`,
    );
    const why = await untilSignal();
    io.err(`${why}: stopping the API server ...`);
  } finally {
    await app.close();
    await client.close();
  }
  return 0;
};

/** The inbox when it has a way to sign in (a users file, an OpenID provider); it then needs session keys. */
function inboxOptions(
  values: { users?: string; oidc?: string; 'session-keys'?: string },
  env: NodeJS.ProcessEnv,
): InboxOptions | undefined {
  const usersFile = values.users ?? env.AMENDCTL_INBOX_USERS;
  const oidcFile = values.oidc ?? env.AMENDCTL_INBOX_OIDC;
  if (!usersFile && !oidcFile) {
    if (values['session-keys'])
      throw new UsageError('--session-keys is for the inbox: give it --users FILE and/or --oidc FILE too');
    return undefined;
  }
  if (oidcFile && !existsSync(oidcFile)) throw new UsageError(`--oidc: no file ${oidcFile}`);
  if (usersFile && !existsSync(usersFile))
    throw new UsageError(`--users: no file ${usersFile} (amendctl users add ID --file ${usersFile} makes it)`);
  const keysFile = values['session-keys'] ?? env.AMENDCTL_INBOX_SESSION_KEYS_FILE;
  if (keysFile && !existsSync(keysFile))
    throw new UsageError(`--session-keys: no file ${keysFile} (amendctl users key > ${keysFile} makes one)`);
  const keys = keysFile
    ? loadSessionKeys(keysFile)
    : env.AMENDCTL_INBOX_SESSION_KEYS
      ? parseSessionKeys(env.AMENDCTL_INBOX_SESSION_KEYS, 'AMENDCTL_INBOX_SESSION_KEYS')
      : undefined;
  if (!keys)
    throw new UsageError(
      'the inbox needs its session keys: --session-keys FILE or AMENDCTL_INBOX_SESSION_KEYS (amendctl users key makes one; every instance gets the same)',
    );
  return {
    sessionKeys: keys,
    ...(usersFile ? { users: new LocalUsers(usersFile) } : {}),
    ...(oidcFile ? { oidc: loadOidcConfig(oidcFile) } : {}),
    env,
  };
}

function jwtConfig(
  jwksUrl: string | undefined,
  issuer: string | undefined,
  audience: string | undefined,
): JwtConfig | undefined {
  if (!jwksUrl && !issuer && !audience) return undefined;
  if (!jwksUrl || !issuer || !audience)
    throw new UsageError('access tokens need all of --jwks URL, --issuer ISS and --audience AUD');
  if (!URL.canParse(jwksUrl)) throw new UsageError(`--jwks takes a URL, got "${jwksUrl}"`);
  return { jwksUrl, issuer, audience };
}

function keyNew(io: CliIO, values: { id?: string; scopes?: string; name?: string; person?: string }): number {
  if (!values.id || !values.scopes)
    throw new UsageError(`key new needs --id ID and --scopes LIST (of ${SCOPES.join(', ')})\nusage: ${USAGE}`);
  if (!BusinessIdSchema.safeParse(values.id).success)
    throw new UsageError(`--id: an id of letters, digits, ".", "_", ":" and "-", got "${values.id}"`);
  const scopes = values.scopes
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = scopes.filter((s) => !ScopeSchema.safeParse(s).success);
  if (scopes.length === 0 || bad.length > 0)
    throw new UsageError(
      `--scopes: a comma-separated list of ${SCOPES.join(', ')}${bad.length ? `; not a scope: ${bad.join(', ')}` : ''}`,
    );
  const { key, entry } = newApiKey({
    id: values.id,
    scopes: [...new Set(scopes)] as ApiKey['scopes'],
    ...(values.name ? { name: values.name } : {}),
    ...(values.person ? { person: values.person } : {}),
  });
  io.out(
    `API key (shown once; give it to the caller as a secret, amendctl keeps only its SHA-256):\n${key}\n\nadd to the keys file, under keys:\n${keysFileLine(entry)}`,
  );
  return 0;
}

/** The keys-file entry, as a YAML flow mapping (strings quoted as JSON, which YAML reads alike). */
export function keysFileLine(k: ApiKey): string {
  return `  - { id: ${JSON.stringify(k.id)}, ${k.name ? `name: ${JSON.stringify(k.name)}, ` : ''}${k.person ? `person: ${JSON.stringify(k.person)}, ` : ''}scopes: [${k.scopes.join(', ')}], sha256: ${JSON.stringify(k.sha256)} }`;
}
