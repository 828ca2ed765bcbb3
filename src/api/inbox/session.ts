/**
 * Inbox sessions, stateless: the signed-in person is a JWT encrypted and authenticated with
 * AES-256-GCM (jose, `dir`), kept in an HttpOnly, SameSite=Lax cookie (Secure and `__Host-` under
 * https). Every API instance given the same keys reads every other's sessions, so several behind a
 * load balancer need nothing shared but the key file. Keys: base64 32-byte keys separated by spaces,
 * commas or lines; the first seals, all open (rotation). The same sealer keeps a sign-in's short
 * flow state (OIDC state, nonce and PKCE verifier; the login form's CSRF token) in a second cookie.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EncryptJWT, jwtDecrypt } from 'jose';
import { z } from 'zod';
import { UsageError } from '../../cli/io';

export const SESSION_KEY_BYTES = 32;

export function newSessionKey(): string {
  return randomBytes(SESSION_KEY_BYTES).toString('base64url');
}

/** Keys from their text (a key file or AMENDCTL_INBOX_SESSION_KEYS); a UsageError naming the bad one. */
export function parseSessionKeys(text: string, where: string): Uint8Array[] {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (parts.length === 0)
    throw new UsageError(
      `${where}: no session key (a base64 key of ${SESSION_KEY_BYTES} random bytes; amendctl users key makes one)`,
    );
  return parts.map((p, i) => {
    const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(p) ? Buffer.from(p, 'base64') : Buffer.alloc(0);
    if (bytes.length !== SESSION_KEY_BYTES)
      throw new UsageError(`${where}: key ${i + 1} is not ${SESSION_KEY_BYTES} bytes in base64`);
    return new Uint8Array(bytes);
  });
}

export function loadSessionKeys(file: string): Uint8Array[] {
  return parseSessionKeys(readFileSync(file, 'utf8'), file);
}

const kidOf = (key: Uint8Array): string => createHash('sha256').update(key).digest('base64url').slice(0, 12);

export const SessionSchema = z.strictObject({
  /** The approver id: a local user's id, or the OIDC claim the configuration names. */
  sub: z.string().min(1).max(256),
  via: z.enum(['password', 'oidc']),
  name: z.string().max(200).optional(),
  /** The per-session CSRF token every POST carries (form field `_csrf` or header `x-csrf-token`). */
  csrf: z.string().min(20),
  /** When the person signed in (epoch seconds): a session is renewed while used, never beyond MAX_SESSION_SECONDS from here. */
  auth: z.number().int(),
});
export type Session = z.output<typeof SessionSchema>;

export const FlowSchema = z.strictObject({
  csrf: z.string().min(20),
  /** OIDC: the checks of the authorization code flow and where to go after. */
  state: z.string().optional(),
  nonce: z.string().optional(),
  verifier: z.string().optional(),
  next: z.string().optional(),
});
export type Flow = z.output<typeof FlowSchema>;

type Purpose = 'amendctl-inbox-session' | 'amendctl-inbox-flow';

export class Sealer {
  private readonly byKid: Map<string, Uint8Array>;
  private readonly current: { kid: string; key: Uint8Array };

  constructor(keys: Uint8Array[]) {
    if (keys.length === 0) throw new Error('no session key');
    this.byKid = new Map(keys.map((k) => [kidOf(k), k]));
    this.current = { kid: kidOf(keys[0]!), key: keys[0]! };
  }

  seal(claims: Record<string, unknown>, purpose: Purpose, ttlSeconds: number): Promise<string> {
    return new EncryptJWT(claims)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: this.current.kid })
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .setAudience(purpose)
      .encrypt(this.current.key);
  }

  /** The claims, or undefined for anything that is not a live token of ours for this purpose. */
  async open<S extends z.ZodType>(
    token: string | undefined,
    purpose: Purpose,
    schema: S,
  ): Promise<(z.output<S> & { exp: number; iat: number }) | undefined> {
    if (!token || token.length > 8192) return undefined;
    try {
      const { payload } = await jwtDecrypt(
        token,
        (header) => {
          const key = header.kid ? this.byKid.get(header.kid) : undefined;
          if (!key) throw new Error('unknown key');
          return key;
        },
        {
          audience: purpose,
          keyManagementAlgorithms: ['dir'],
          contentEncryptionAlgorithms: ['A256GCM'],
          requiredClaims: ['exp', 'iat'],
        },
      );
      const { exp, iat, aud: _aud, ...rest } = payload;
      const r = schema.safeParse(rest);
      return r.success
        ? (Object.assign(r.data as object, { exp: exp!, iat: iat! }) as z.output<S> & { exp: number; iat: number })
        : undefined;
    } catch {
      return undefined;
    }
  }
}

// ---- cookies ------------------------------------------------------------------------------

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface CookieOptions {
  secure: boolean;
  maxAgeSeconds: number;
}

/** `__Host-` under https (the browser then holds it to Secure, Path=/ and this host only). */
export const cookieName = (base: 'session' | 'flow', secure: boolean): string =>
  `${secure ? '__Host-' : ''}amendctl-inbox-${base}`;

export function setCookie(name: string, value: string, o: CookieOptions): string {
  return [
    `${name}=${value}`,
    'Path=/',
    `Max-Age=${Math.max(0, Math.floor(o.maxAgeSeconds))}`,
    'HttpOnly',
    'SameSite=Lax',
    ...(o.secure ? ['Secure'] : []),
  ].join('; ');
}

export const clearCookie = (name: string, secure: boolean): string => setCookie(name, '', { secure, maxAgeSeconds: 0 });

export const newToken = (): string => randomBytes(24).toString('base64url');

export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
