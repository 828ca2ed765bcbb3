/**
 * Proof of an approver's identity (issue 12): a signed approval token.
 *
 * Whoever proved who the approver is signs the decision: the API server after an OIDC sign-in,
 * a password or a person's API key (its key attests any approver, `approvers: ['*']`), or the
 * approver's own key with `amendctl approve --key` (a key bound to that person). The token says
 * what was decided and binds it to one amendment, one plan (its hash), the decision, the text
 * given with it (its SHA-256), the approver, how they proved themselves, and a lifetime; its id
 * (`jti`) makes it single-use within the amendment, which is the only place it can count.
 *
 *   amap1.<base64url(claims JSON)>.<base64url(Ed25519 signature over "amap1.<claims>")>
 *
 * The worker holds only public keys (the trust file, AMENDCTL_APPROVAL_KEYS) and verifies in an
 * activity; the token travels in the approve or reject signal and is no secret: it proves one
 * decision and nothing else.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
  verify,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BusinessIdSchema } from '../domain/amendment';
import { parseStructuredText } from '../domain/document';
import { parseWith } from '../domain/errors';
import { MAX_PROOF_LENGTH } from '../workflows/definitions';

export const TOKEN_PREFIX = 'amap1';
/** A token's longest text form (the signal field's limit). */
export const MAX_TOKEN_LENGTH = MAX_PROOF_LENGTH;
/** How long a token is valid unless the signer says less. */
export const DEFAULT_TOKEN_SECONDS = 600;
/** The trust file's default for the longest lifetime a token may claim. */
export const DEFAULT_MAX_LIFETIME_SECONDS = 3600;
/** Clocks of the signer and the worker may differ by this much. */
export const CLOCK_SKEW_SECONDS = 60;

export const DECISIONS = ['approve', 'reject'] as const;
export type DecisionKind = (typeof DECISIONS)[number];

/**
 * How the approver proved who they are to the signer: a sign-in (OIDC, a password of the local
 * users file), a credential bound to the person (API key, bearer JWT), their own key, or a
 * service that holds a key trusted to vouch for approvers (`approvers: ['*']`) and says so.
 */
export const PROOF_METHODS = ['oidc', 'password', 'api-key', 'jwt', 'personal-key', 'service'] as const;
export type ProofMethod = (typeof PROOF_METHODS)[number];

const ClaimsSchema = z.strictObject({
  /** The signing key's id (the trust file names it). */
  kid: z.string().min(1).max(128),
  /** The approver. */
  sub: z.string().min(1).max(256),
  /** How the approver proved who they are. */
  via: z.enum(PROOF_METHODS),
  amendmentId: z.string().min(1).max(128),
  planHash: z.string().min(1).max(128),
  decision: z.enum(DECISIONS),
  /** SHA-256 (hex) of the comment (approve) or reason (reject); of "" when there is none. */
  text: z.string().regex(/^[0-9a-f]{64}$/),
  iat: z.number().int().nonnegative(),
  exp: z.number().int().positive(),
  jti: z.string().min(8).max(64),
});
export type ApprovalClaims = z.infer<typeof ClaimsSchema>;

export const textHash = (text: string | undefined): string =>
  createHash('sha256')
    .update(text ?? '', 'utf8')
    .digest('hex');
const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

// ---- keys ---------------------------------------------------------------------------------

/** A signing key file: the key's id, whom it may sign for, and the Ed25519 private key (PKCS#8 PEM). */
export const SigningKeyFileSchema = z.strictObject({
  id: BusinessIdSchema,
  /** Set for a person's own key: the approver it signs as. Absent for an identity provider's key (the API server). */
  approver: z.string().min(1).max(256).optional(),
  privateKey: z.string().includes('PRIVATE KEY', { message: 'a PKCS#8 PEM private key' }),
});
export type SigningKeyFile = z.infer<typeof SigningKeyFileSchema>;

/** The trust file the worker reads: which public keys may sign approvals, and for whom. */
export const TrustFileSchema = z.strictObject({
  keys: z
    .array(
      z.strictObject({
        id: BusinessIdSchema,
        /** SPKI PEM, or its base64 DER on one line. */
        publicKey: z.string().min(40),
        /** Whom the key may sign for: approver ids, or `*` for an identity provider (the API server). */
        approvers: z.array(z.string().min(1).max(256)).min(1),
        /** How the approver must have proved themselves to this key's holder (default: any). */
        methods: z.array(z.enum(PROOF_METHODS)).min(1).optional(),
      }),
    )
    .superRefine((keys, ctx) => {
      const seen = new Set<string>();
      keys.forEach((k, i) => {
        if (seen.has(k.id))
          ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `key id "${k.id}" is listed twice` });
        seen.add(k.id);
      });
    }),
  /** The longest lifetime (exp - iat) a token may claim, in seconds. */
  maxLifetimeSeconds: z.number().int().min(10).max(86_400).default(DEFAULT_MAX_LIFETIME_SECONDS),
});
export type TrustFile = z.output<typeof TrustFileSchema>;

function publicKeyFrom(text: string): KeyObject {
  const t = text.trim();
  const key = t.includes('BEGIN')
    ? createPublicKey(t)
    : createPublicKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`an Ed25519 key, not ${key.asymmetricKeyType ?? 'an unknown type'}`);
  return key;
}

/** A new key pair: the signing key file's content and the trust file entry for its public key. */
export function newSigningKey(
  id: string,
  approver?: string,
): { file: SigningKeyFile; trust: TrustFile['keys'][number] } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    file: {
      id,
      ...(approver ? { approver } : {}),
      privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    },
    trust: {
      id,
      publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      approvers: [approver ?? '*'],
    },
  };
}

/** The trust file entry for a signing key (its public half). */
export function trustEntry(f: SigningKeyFile): TrustFile['keys'][number] {
  const publicKey = createPublicKey(createPrivateKey(f.privateKey))
    .export({ format: 'der', type: 'spki' })
    .toString('base64');
  return { id: f.id, publicKey, approvers: [f.approver ?? '*'] };
}

export function readSigningKeyFile(file: string): SigningKeyFile {
  return parseWith(
    SigningKeyFileSchema,
    parseStructuredText(readFileSync(file, 'utf8'), file),
    'invalid approval signing key file',
    file,
  );
}

export function loadSigningKey(file: string): ApprovalSigner {
  return new ApprovalSigner(readSigningKeyFile(file));
}

export function loadTrust(file: string): ApprovalVerifier {
  const t = parseWith(
    TrustFileSchema,
    parseStructuredText(readFileSync(file, 'utf8'), file),
    'invalid approval keys file',
    file,
  );
  return new ApprovalVerifier(t, file);
}

// ---- signing ------------------------------------------------------------------------------

export interface SignRequest {
  amendmentId: string;
  planHash: string;
  decision: DecisionKind;
  /** The approver; for a person's own key, it must be that person (the default). */
  by?: string;
  via: ProofMethod;
  /** The comment (approve) or reason (reject) the token binds. */
  text?: string;
  /** Lifetime in seconds (default 600). */
  seconds?: number;
  /** The signer's clock, for tests (default now). */
  nowMs?: number;
}

export class ApprovalSigner {
  private readonly key: KeyObject;
  constructor(private readonly file: SigningKeyFile) {
    this.key = createPrivateKey(file.privateKey);
    if (this.key.asymmetricKeyType !== 'ed25519')
      throw new Error(
        `approval signing key ${file.id}: an Ed25519 key is needed, not ${this.key.asymmetricKeyType ?? 'unknown'}`,
      );
  }
  get id(): string {
    return this.file.id;
  }
  /** The approver a personal key signs as; undefined for an identity provider's key. */
  get approver(): string | undefined {
    return this.file.approver;
  }

  sign(r: SignRequest): { token: string; claims: ApprovalClaims } {
    const by = r.by ?? this.file.approver;
    if (!by) throw new Error(`approval signing key ${this.file.id} is no person's: say whom it signs for`);
    if (this.file.approver && by !== this.file.approver)
      throw new Error(`approval signing key ${this.file.id} is ${this.file.approver}'s and cannot sign for ${by}`);
    const iat = Math.floor((r.nowMs ?? Date.now()) / 1000);
    const claims: ApprovalClaims = {
      kid: this.file.id,
      sub: by,
      via: r.via,
      amendmentId: r.amendmentId,
      planHash: r.planHash,
      decision: r.decision,
      text: textHash(r.text),
      iat,
      exp: iat + (r.seconds ?? DEFAULT_TOKEN_SECONDS),
      jti: randomUUID(),
    };
    const body = `${TOKEN_PREFIX}.${b64url(JSON.stringify(claims))}`;
    return { token: `${body}.${b64url(sign(null, Buffer.from(body), this.key))}`, claims };
  }
}

// ---- verifying ----------------------------------------------------------------------------

/** What the decision must be for, checked against the token. */
export interface Expected {
  amendmentId: string;
  planHash: string;
  decision: DecisionKind;
  /** The approver the signal names. */
  by: string;
  text?: string;
}

/** A verified proof: who, how, which key, when issued and until when, its id. Safe for history (no secret). */
export interface VerifiedProof {
  by: string;
  via: ProofMethod;
  keyId: string;
  issuedAt: string;
  expiresAt: string;
  tokenId: string;
}
export type Verification = ({ ok: true } & VerifiedProof) | { ok: false; why: string };

const refuse = (why: string): Verification => ({ ok: false, why });

export class ApprovalVerifier {
  private readonly keys: Map<string, { key: KeyObject; approvers: Set<string>; methods?: Set<ProofMethod> }>;
  constructor(
    private readonly trust: TrustFile,
    file = 'approval keys file',
  ) {
    this.keys = new Map(
      trust.keys.map((k, i) => {
        let key: KeyObject;
        try {
          key = publicKeyFrom(k.publicKey);
        } catch (err) {
          throw new Error(`${file}: keys[${i}].publicKey (${k.id}): ${(err as Error).message}`);
        }
        return [k.id, { key, approvers: new Set(k.approvers), ...(k.methods ? { methods: new Set(k.methods) } : {}) }];
      }),
    );
  }
  get size(): number {
    return this.keys.size;
  }

  /** Whether this token proves this decision; else why not (one line, no secret). */
  /** `nowMs`: the verifier's clock (as for any bearer token, the verifier's clock decides expiry). */
  verify(token: unknown, x: Expected, nowMs: number = Date.now()): Verification {
    if (typeof token !== 'string' || token === '')
      return refuse(
        'no proof of identity: an approval counts only with a signed token (amendctl approve, the API or the inbox)',
      );
    if (token.length > MAX_TOKEN_LENGTH) return refuse(`the proof is longer than ${MAX_TOKEN_LENGTH} characters`);
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== TOKEN_PREFIX)
      return refuse(`the proof is not an ${TOKEN_PREFIX} approval token`);
    let claims: ApprovalClaims;
    try {
      const parsed = ClaimsSchema.safeParse(JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')));
      if (!parsed.success) return refuse("the proof's claims are malformed");
      claims = parsed.data;
    } catch {
      return refuse("the proof's claims are not JSON");
    }
    const trusted = this.keys.get(claims.kid);
    if (!trusted) return refuse(`the proof is signed with key "${claims.kid}", which this worker does not trust`);
    const signature = Buffer.from(parts[2]!, 'base64url');
    if (signature.length !== 64 || !verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), trusted.key, signature))
      return refuse(`the proof's signature does not verify with key "${claims.kid}"`);
    // Signed: from here the claims are the signer's word.
    if (claims.amendmentId !== x.amendmentId)
      return refuse(`the proof is for amendment ${claims.amendmentId}, not this one`);
    if (claims.planHash !== x.planHash)
      return refuse('the proof is for another plan of this amendment (its plan hash differs)');
    if (claims.decision !== x.decision)
      return refuse(
        `the proof is for ${claims.decision === 'approve' ? 'an approval' : 'a rejection'}, not ${x.decision === 'approve' ? 'an approval' : 'a rejection'}`,
      );
    if (claims.sub !== x.by) return refuse(`the proof is ${claims.sub}'s, not from ${x.by}`);
    if (!trusted.approvers.has('*') && !trusted.approvers.has(claims.sub))
      return refuse(`key "${claims.kid}" may not sign for ${claims.sub}`);
    if (trusted.methods && !trusted.methods.has(claims.via))
      return refuse(`key "${claims.kid}" may not sign approvals proven by ${claims.via}`);
    if (claims.text !== textHash(x.text))
      return refuse(`the ${x.decision === 'approve' ? 'comment' : 'reason'} is not the one the proof was signed for`);
    const now = Math.floor(nowMs / 1000);
    if (claims.exp <= claims.iat) return refuse('the proof expires before it was issued');
    if (claims.exp - claims.iat > this.trust.maxLifetimeSeconds)
      return refuse(`the proof claims a lifetime over ${this.trust.maxLifetimeSeconds} s`);
    if (claims.iat > now + CLOCK_SKEW_SECONDS) return refuse(`the proof is issued in the future (${iso(claims.iat)})`);
    if (claims.exp <= now) return refuse(`the proof expired at ${iso(claims.exp)}`);
    return {
      ok: true,
      by: claims.sub,
      via: claims.via,
      keyId: claims.kid,
      issuedAt: iso(claims.iat),
      expiresAt: iso(claims.exp),
      tokenId: claims.jti,
    };
  }
}

const iso = (s: number): string => new Date(s * 1000).toISOString();
