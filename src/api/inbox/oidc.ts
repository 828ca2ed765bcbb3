/**
 * Sign-in through an OpenID provider (openid-client): the authorization code flow with PKCE (S256),
 * state and nonce, the ID token verified by openid-client (signature from the issuer's JWKS, issuer,
 * audience, expiry, nonce). Who the person is comes only from the verified claims: the configured
 * `approverClaim` (`sub` by default, or `preferred_username`, or `email` when the provider says it is
 * verified), read from the ID token, else from the userinfo endpoint with the same subject.
 */
import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { z } from 'zod';
import { secretFrom, SecretRefSchema } from '../../connectors/secrets';
import { parseStructuredText } from '../../domain/document';
import { parseWith } from '../../domain/errors';
import { unsafeText } from '../../domain/text';

export const OidcConfigSchema = z.strictObject({
  issuer: z.url({ protocol: /^https?$/ }),
  clientId: z.string().min(1).max(256),
  /** A confidential client's secret, by reference only; absent: a public client (PKCE alone). */
  clientSecret: SecretRefSchema.optional(),
  /** The callback URL registered with the provider; default: the public URL (or the request's origin) + /inbox/oidc/callback. */
  redirectUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Which verified claim is the approver id the approval policy names. */
  approverClaim: z.enum(['sub', 'preferred_username', 'email']).default('sub'),
  /** What the sign-in button says. */
  label: z.string().min(1).max(80).default('Sign in with your organisation'),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).default(['openid', 'profile', 'email']),
});
export type OidcConfig = z.output<typeof OidcConfigSchema>;

export function loadOidcConfig(file: string): OidcConfig {
  return parseWith(
    OidcConfigSchema,
    parseStructuredText(readFileSync(file, 'utf8'), file),
    'invalid OIDC configuration',
    file,
  );
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** A sign-in refused: shown to the person as it is (it never carries a token or a claim's value). */
export class SignInError extends Error {
  override readonly name = 'SignInError';
}

export interface Begun {
  url: string;
  state: string;
  nonce: string;
  verifier: string;
}

export class OidcLogin {
  private discovered?: Promise<oidc.Configuration>;

  constructor(
    readonly config: OidcConfig,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Discovery once, on first use (the provider may start after amendctl); a failure is tried again next time. */
  private configuration(): Promise<oidc.Configuration> {
    if (!this.discovered) {
      const c = this.config;
      const issuer = new URL(c.issuer);
      const secret = c.clientSecret ? secretFrom(c.clientSecret, 'inbox OIDC client secret', this.env) : undefined;
      // Plain http only to a provider on this machine (tests, a local provider); anywhere else https.
      const insecure = issuer.protocol === 'http:' && LOOPBACK.has(issuer.hostname);
      if (issuer.protocol === 'http:' && !insecure)
        return Promise.reject(new SignInError(`the OpenID provider ${issuer.origin} must be https`));
      this.discovered = oidc
        .discovery(issuer, c.clientId, undefined, secret !== undefined ? oidc.ClientSecretBasic(secret) : oidc.None(), {
          timeout: 10,
          ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
        })
        .catch((err: unknown) => {
          this.discovered = undefined;
          throw new SignInError(
            `the OpenID provider ${issuer.origin} could not be reached or described (${(err as Error).message})`,
          );
        });
    }
    return this.discovered;
  }

  async begin(redirectUrl: string): Promise<Begun> {
    const config = await this.configuration();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUrl,
      scope: this.config.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state, nonce, verifier };
  }

  /** The approver id and a display name from the provider's answer at the callback URL; SignInError when refused. */
  async finish(
    callbackUrl: URL,
    checks: { state: string; nonce: string; verifier: string },
  ): Promise<{ id: string; name?: string }> {
    const config = await this.configuration();
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: checks.verifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      const e = err as { error?: string; error_description?: string; code?: string; message?: string };
      throw new SignInError(
        `the sign-in was not accepted (${e.error ? `${e.error}${e.error_description ? `: ${e.error_description}` : ''}` : (e.code ?? e.message ?? 'unknown error')})`,
      );
    }
    const claims = tokens.claims();
    if (!claims) throw new SignInError('the provider sent no ID token');
    const want = this.config.approverClaim;
    let source: Record<string, unknown> = claims;
    if (claims[want] === undefined || (want === 'email' && claims.email_verified === undefined)) {
      source = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub).catch((err: unknown) => {
        throw new SignInError(`the provider's userinfo could not be read (${(err as Error).message})`);
      });
    }
    const id = source[want];
    if (typeof id !== 'string' || id.trim() === '' || id.length > 256)
      throw new SignInError(`the provider did not say who you are: no "${want}" claim`);
    if (unsafeText(id) || id !== id.trim())
      throw new SignInError(
        `the provider's "${want}" claim is not a name an approval can be recorded under (one line of plain text)`,
      );
    if (want === 'email' && source.email_verified !== true)
      throw new SignInError('the provider has not verified your email address, so it cannot name you here');
    const name = typeof source.name === 'string' ? source.name.slice(0, 200) : undefined;
    return { id: want === 'email' ? id.trim().toLowerCase() : id, ...(name ? { name } : {}) };
  }
}
