/**
 * Every error the API answers is an RFC 9457 problem (`application/problem+json`): a stable
 * `type` (urn:amendctl:problem:<slug>), a title, the status, a detail that says what exactly
 * was wrong (never a secret, a token or a body), and for input errors `errors: [{ path, message }]`
 * naming each field.
 */
import { AmendmentNotFoundError } from '../client';
import { type InputIssue, InputError } from '../domain/errors';

export const PROBLEM_MEDIA_TYPE = 'application/problem+json';
export const problemType = (slug: string): string => `urn:amendctl:problem:${slug}`;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: Array<{ path: string; message: string }>;
}

/** Thrown anywhere in a request: the error handler answers it as it is. */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail?: string,
    readonly extra: { errors?: InputIssue[]; headers?: Record<string, string> } = {},
  ) {
    super(detail ?? title);
  }

  get problem(): Problem {
    return {
      type: problemType(this.slug),
      title: this.title,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
      ...(this.extra.errors ? { errors: this.extra.errors.map(({ path, message }) => ({ path, message })) } : {}),
    };
  }
}

/** A document that validates but says what it may not (another submitter, a field's value): 422 naming each field. */
export function invalid(err: InputError): ProblemError {
  return new ProblemError(
    422,
    'validation-failed',
    'The request does not validate',
    err.message.split('\n')[0]?.replace(/:$/, ''),
    { errors: err.issues },
  );
}

/** A body that is not JSON or YAML at all. */
export function malformed(err: InputError): ProblemError {
  return new ProblemError(
    400,
    'malformed-body',
    'The body is not valid JSON or YAML',
    err.issues.map((i) => i.message).join('; '),
    { errors: err.issues },
  );
}

/** Fastify's own request errors (FST_ERR_*), by their status: a stable slug and title each. */
const FRAMEWORK: Record<number, [string, string]> = {
  400: ['bad-request', 'Bad request'],
  413: ['body-too-large', 'The body is larger than this server accepts'],
  415: ['unsupported-media-type', 'Unsupported media type'],
};

/** Any error thrown while answering a request, as a problem. Unknown errors are 500 and say nothing of their cause. */
export function problemFrom(err: unknown, limits: { bodyBytes: number }): ProblemError {
  if (err instanceof ProblemError) return err;
  if (err instanceof InputError) return invalid(err);
  if (err instanceof AmendmentNotFoundError)
    return new ProblemError(404, 'amendment-not-found', 'No such amendment', err.message);
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const [slug, title] = FRAMEWORK[status] ?? ['bad-request', 'Bad request'];
    const detail =
      status === 413
        ? `at most ${limits.bodyBytes} bytes`
        : status === 415
          ? 'send application/json or application/yaml (text/yaml, application/x-yaml)'
          : (err as Error).message;
    return new ProblemError(status, slug, title, detail);
  }
  return new ProblemError(500, 'internal', 'Internal server error');
}
