/**
 * The AWS IAM client (SDK v3) the IAM connector (../iam.ts) works through: the SDK client with
 * the worker's credentials, requests through the per-target rate limit, failure
 * classification, Marker paging, and the reads every IAM operation needs. It knows IAM's API,
 * not what an operation means.
 *
 * Credentials come from the reader the registry gives (named environment variables or files
 * in the configuration), read when the SDK client is first made; without one, the SDK's
 * default chain of the worker's environment. `endpoint` points the client at another
 * implementation of the API (moto in tests). The SDK's own retries are off by default: failures
 * are classified here and retried by the activity.
 */
import {
  IAMClient,
  ListAccessKeysCommand,
  ListAttachedUserPoliciesCommand,
  ListGroupsForUserCommand,
  ListPoliciesCommand,
  ListUserPoliciesCommand,
} from '@aws-sdk/client-iam';
import { type RateLimitConfig, type RateLimiter, targetRateLimiter } from '../rate-limit';
import { type PermanentFailureType, PermanentTargetError, TransientTargetError } from '../types';

const TRANSIENT_NAMES = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ServiceFailure',
  'ServiceFailureException',
  'InternalFailure',
  'ConcurrentModification',
  'ConcurrentModificationException',
  'EntityTemporarilyUnmodifiable',
  'EntityTemporarilyUnmodifiableException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'AbortError',
]);
const PERMANENT_TYPES: Record<string, PermanentFailureType> = {
  AccessDenied: 'TargetForbidden',
  AccessDeniedException: 'TargetForbidden',
  InvalidClientTokenId: 'TargetAuthentication',
  SignatureDoesNotMatch: 'TargetAuthentication',
  UnrecognizedClientException: 'TargetAuthentication',
  ExpiredToken: 'TargetAuthentication',
  CredentialsProviderError: 'TargetMisconfigured',
  ValidationError: 'InvalidIdentifier',
  InvalidInput: 'TargetRejected',
  InvalidInputException: 'TargetRejected',
  LimitExceeded: 'TargetRejected',
  LimitExceededException: 'TargetRejected',
  MalformedPolicyDocument: 'TargetRejected',
  MalformedPolicyDocumentException: 'TargetRejected',
  DeleteConflict: 'TargetConflict',
  DeleteConflictException: 'TargetConflict',
  EntityAlreadyExists: 'TargetConflict',
  EntityAlreadyExistsException: 'TargetConflict',
  NoSuchEntity: 'TargetNotFound',
  NoSuchEntityException: 'TargetNotFound',
  PolicyNotAttachable: 'TargetMisconfigured',
  PolicyNotAttachableException: 'TargetMisconfigured',
  UnmodifiableEntity: 'TargetForbidden',
  UnmodifiableEntityException: 'TargetForbidden',
};
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

interface AwsError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
}

export function errorName(err: unknown): string {
  const e = err as AwsError;
  return e?.Code ?? e?.name ?? '';
}

/** Map an AWS SDK (or network) error to Transient/Permanent. */
export function classifyIamError(err: unknown, what: string): Error {
  if (err instanceof TransientTargetError || err instanceof PermanentTargetError) return err;
  const e = (err ?? {}) as AwsError;
  const name = errorName(err);
  const status = e.$metadata?.httpStatusCode;
  const msg = `${what}: ${name || 'error'}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`;
  if (TRANSIENT_NAMES.has(name) || TRANSIENT_NAMES.has(e.name ?? ''))
    return new TransientTargetError(msg, undefined, err);
  if (PERMANENT_TYPES[name]) return new PermanentTargetError(PERMANENT_TYPES[name], msg, err);
  if (status !== undefined && (status === 429 || status >= 500)) return new TransientTargetError(msg, undefined, err);
  // A connection cut mid-answer: the SDK could not read the (partial) response.
  if (/\baborted\b|Deserialization error|premature close/i.test(`${e.name} ${e.message}`))
    return new TransientTargetError(msg, undefined, err);
  if (status === 403) return new PermanentTargetError('TargetForbidden', msg, err);
  if (status !== undefined && status >= 400) return new PermanentTargetError('TargetRejected', msg, err);
  // No HTTP answer at all: the network, a dropped keep-alive socket, a timeout.
  if (
    (e.code && NETWORK_CODES.has(e.code)) ||
    /socket|ECONN|timeout|timed out|network|EPIPE/i.test(`${e.name} ${e.message}`)
  ) {
    return new TransientTargetError(msg, undefined, err);
  }
  return new PermanentTargetError('TargetRejected', msg, err);
}

export function isNoSuchEntity(err: unknown): boolean {
  const n = errorName((err as { cause?: unknown }).cause ?? err);
  return n === 'NoSuchEntity' || n === 'NoSuchEntityException';
}
export function isAlreadyExists(err: unknown): boolean {
  const n = errorName((err as { cause?: unknown }).cause ?? err);
  return n === 'EntityAlreadyExists' || n === 'EntityAlreadyExistsException';
}

/** Static credentials, read on use (none: the SDK's default chain). */
export type IamCredentials = () => { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** What the client is configured with. */
export interface IamClientConfig {
  region: string;
  endpoint?: string;
  credentials?: IamCredentials;
  timeoutMs: number;
  maxAttempts: number;
  rateLimit?: RateLimitConfig;
}

export class IamClient {
  private client: IAMClient | undefined;
  private readonly limiter: RateLimiter | undefined;

  constructor(
    readonly target: string,
    private readonly config: IamClientConfig,
  ) {
    this.limiter = targetRateLimiter(target, config.rateLimit);
  }

  private iam(): IAMClient {
    if (this.client) return this.client;
    const c = this.config;
    const credentials = c.credentials?.();
    this.client = new IAMClient({
      region: c.region,
      ...(c.endpoint ? { endpoint: c.endpoint } : {}),
      ...(credentials ? { credentials } : {}),
      maxAttempts: c.maxAttempts,
      requestHandler: { connectionTimeout: c.timeoutMs, requestTimeout: c.timeoutMs, throwOnRequestTimeout: true },
    });
    return this.client;
  }

  /** One IAM request through the rate limit, its failure classified. */
  async send<T = unknown>(what: string, command: { readonly input: object }): Promise<T> {
    await this.limiter?.acquire();
    try {
      return (await this.iam().send(command as never)) as T;
    } catch (err) {
      const classified = classifyIamError(err, `target ${this.target}: ${what}`);
      if (classified instanceof TransientTargetError && /Throttl|RequestLimit|TooManyRequests/.test(errorName(err)))
        this.limiter?.pause(1000);
      throw classified;
    }
  }

  close(): void {
    this.client?.destroy();
    this.client = undefined;
  }

  /** Every item of a Marker-paginated IAM list, one rate-limited request per page. */
  async listAll<P, T>(
    what: string,
    command: (marker: string | undefined) => { readonly input: object },
    items: (page: P) => T[],
  ): Promise<T[]> {
    const out: T[] = [];
    let marker: string | undefined;
    do {
      const page = await this.send<P & { IsTruncated?: boolean; Marker?: string }>(what, command(marker));
      out.push(...items(page));
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
    return out;
  }

  groupsOf(user: string): Promise<string[]> {
    return this.listAll(
      `list groups of ${user}`,
      (Marker) => new ListGroupsForUserCommand({ UserName: user, Marker }),
      (p: { Groups?: Array<{ GroupName?: string }> }) =>
        (p.Groups ?? []).flatMap((g) => (g.GroupName ? [g.GroupName] : [])),
    );
  }

  attachedArns(user: string): Promise<string[]> {
    return this.listAll(
      `list policies of ${user}`,
      (Marker) => new ListAttachedUserPoliciesCommand({ UserName: user, Marker }),
      (p: { AttachedPolicies?: Array<{ PolicyArn?: string }> }) =>
        (p.AttachedPolicies ?? []).flatMap((a) => (a.PolicyArn ? [a.PolicyArn] : [])),
    );
  }

  /** The names of a user's inline policies. */
  inlinePolicies(user: string): Promise<string[]> {
    return this.listAll(
      `list inline policies of ${user}`,
      (Marker) => new ListUserPoliciesCommand({ UserName: user, Marker }),
      (p: { PolicyNames?: string[] }) => p.PolicyNames ?? [],
    );
  }

  async accessKeys(user: string): Promise<Record<string, 'Active' | 'Inactive'>> {
    const page = await this.send<{ AccessKeyMetadata?: Array<{ AccessKeyId?: string; Status?: string }> }>(
      `list access keys of ${user}`,
      new ListAccessKeysCommand({ UserName: user }),
    );
    const keys: Record<string, 'Active' | 'Inactive'> = {};
    for (const k of page.AccessKeyMetadata ?? [])
      if (k.AccessKeyId) keys[k.AccessKeyId] = k.Status === 'Active' ? 'Active' : 'Inactive';
    return keys;
  }

  /** The managed policies of a scope (Local: the account's own, AWS: AWS managed). */
  policies(scope: 'Local' | 'AWS'): Promise<Array<{ PolicyName?: string; Arn?: string }>> {
    return this.listAll(
      `list ${scope} policies`,
      (Marker) => new ListPoliciesCommand({ Scope: scope, Marker, MaxItems: 1000 }),
      (p: { Policies?: Array<{ PolicyName?: string; Arn?: string }> }) => p.Policies ?? [],
    );
  }
}
