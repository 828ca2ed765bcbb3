/**
 * Service authentication: `Authorization: Bearer <credential>`, either an API key (kept only
 * as its SHA-256 in the keys file) or an OAuth2 access token (a JWT verified against the
 * issuer's JWKS with jose: signature, issuer, audience, expiry; scopes from its `scope` claim).
 * The credential alone says who calls: its key id or the token's subject is the identity the
 * server records (submittedBy, a cancel's by). Webhooks prove themselves by their signature
 * instead (src/api/routes/webhooks.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { BusinessIdSchema } from '../domain/amendment';
import { parseStructuredText } from '../domain/document';
import { parseWith } from '../domain/errors';
import { ProblemError } from './problem';

/** submit: POST amendments; read: GET; cancel: cancel an amendment; approve: approve or reject as the credential's person. */
export const SCOPES = ['submit', 'read', 'cancel', 'approve'] as const;
export const ScopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof ScopeSchema>;

export const ApiKeysFileSchema = z
  .strictObject({
    keys: z.array(
      z.strictObject({
        /** Recorded as submittedBy and in the access log: a service's name, not a person's email. */
        id: BusinessIdSchema,
        sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the SHA-256 of the key, 64 lower-case hex digits'),
        scopes: z.array(ScopeSchema).min(1),
        name: z.string().min(1).optional(),
        /** The person this key belongs to (an approver id): only a person's key may approve or reject. */
        person: z.string().trim().min(1).max(256).optional(),
      }),
    ),
  })
  .superRefine((f, ctx) => {
    const ids = new Set<string>();
    const hashes = new Set<string>();
    f.keys.forEach((k, i) => {
      if (ids.has(k.id))
        ctx.addIssue({ code: 'custom', path: ['keys', i, 'id'], message: `key id "${k.id}" is listed twice` });
      if (hashes.has(k.sha256))
        ctx.addIssue({ code: 'custom', path: ['keys', i, 'sha256'], message: 'this key is listed twice' });
      ids.add(k.id);
      hashes.add(k.sha256);
    });
  });
export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export type ApiKey = z.output<typeof ApiKeysFileSchema>['keys'][number];

export function loadApiKeys(file: string): ApiKey[] {
  return parseWith(ApiKeysFileSchema, parseStructuredText(readFileSync(file, 'utf8'), file), 'invalid keys file', file)
    .keys;
}

/** A new API key and the entry for the keys file (the key itself is shown once and stored nowhere). */
export function newApiKey(entry: Omit<ApiKey, 'sha256'>): { key: string; entry: ApiKey } {
  const key = `amk_${randomBytes(32).toString('base64url')}`;
  return { key, entry: { ...entry, sha256: sha256(key) } };
}

export interface JwtConfig {
  jwksUrl: string;
  issuer: string;
  audience: string;
}

export interface AuthConfig {
  keys: ApiKey[];
  jwt?: JwtConfig;
}

/** Who proved what. `id` is the identity recorded; `log` is what the access log may show (no personal data). */
export interface Principal {
  via: 'api-key' | 'jwt' | 'webhook';
  id: string;
  scopes: ReadonlySet<Scope>;
  log: string;
  /** The person the credential proves (an API key's `person`, a token's subject); none for a service's key. */
  person?: string;
}

const REALM = 'Bearer realm="amendctl"';

function unauthorized(detail: string, slug = 'credential-invalid', error = 'invalid_token'): ProblemError {
  return new ProblemError(401, slug, 'Not authenticated', detail, {
    headers: { 'www-authenticate': `${REALM}, error="${error}", error_description="${detail.replace(/"/g, "'")}"` },
  });
}

export class Authenticator {
  private readonly byHash: Map<string, ApiKey>;
  private readonly jwks?: JWTVerifyGetKey;

  constructor(private readonly config: AuthConfig) {
    this.byHash = new Map(config.keys.map((k) => [k.sha256, k]));
    if (config.jwt)
      this.jwks = createRemoteJWKSet(new URL(config.jwt.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 });
  }

  /** The caller, proven and allowed `scope`; a 401 or 403 problem otherwise. */
  async authenticate(authorization: string | undefined, scope: Scope): Promise<Principal> {
    if (!authorization)
      throw new ProblemError(
        401,
        'credential-missing',
        'Not authenticated',
        'send Authorization: Bearer <API key or access token>',
        { headers: { 'www-authenticate': REALM } },
      );
    const m = /^Bearer[ ]+(\S+)$/i.exec(authorization.trim());
    if (!m)
      throw unauthorized(
        'the Authorization header must be "Bearer <API key or access token>"',
        'credential-invalid',
        'invalid_request',
      );
    const credential = m[1]!;
    const principal =
      this.jwks && credential.split('.').length === 3
        ? await this.verifyJwt(credential, this.jwks, this.config.jwt!)
        : this.verifyKey(credential);
    if (!principal.scopes.has(scope)) {
      throw new ProblemError(403, 'scope-missing', 'Not allowed', `this credential lacks the scope "${scope}"`, {
        headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="${scope}"` },
      });
    }
    return principal;
  }

  private verifyKey(credential: string): Principal {
    const key = this.byHash.get(sha256(credential));
    if (!key) throw unauthorized('unknown API key');
    return {
      via: 'api-key',
      id: key.id,
      scopes: new Set(key.scopes),
      log: `key:${key.id}`,
      ...(key.person ? { person: key.person } : {}),
    };
  }

  private async verifyJwt(token: string, jwks: JWTVerifyGetKey, cfg: JwtConfig): Promise<Principal> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        clockTolerance: 5,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (err) {
      throw jwtProblem(err);
    }
    const sub = payload.sub!;
    const scopes =
      typeof payload.scope === 'string'
        ? payload.scope.split(' ').filter((s): s is Scope => (SCOPES as readonly string[]).includes(s))
        : [];
    // A subject may be an email: the log shows a digest of it, never the subject itself.
    return {
      via: 'jwt',
      id: sub,
      scopes: new Set(scopes),
      log: `jwt:${sha256(`${cfg.issuer} ${sub}`).slice(0, 16)}`,
      person: sub,
    };
  }
}

function jwtProblem(err: unknown): ProblemError {
  if (err instanceof joseErrors.JWTExpired) return unauthorized('the access token has expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return unauthorized(`the access token's "${err.claim}" claim is not accepted (${err.reason})`);
  if (err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError)) {
    return new ProblemError(
      503,
      'jwks-unavailable',
      'Cannot verify access tokens now',
      "the issuer's key set could not be fetched; try again",
      { headers: { 'retry-after': '10' } },
    );
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey)
    return unauthorized("the access token is not signed by a key of the issuer's key set");
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return unauthorized("the access token's signature does not verify");
  return unauthorized(`the access token is not valid (${err.code})`);
}
