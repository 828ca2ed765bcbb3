/** Reading a request's document (JSON or YAML, as `amendctl submit` reads a file) and holding its identity fields to the caller. */
import { parseStructuredText } from '../domain/document';
import { InputError } from '../domain/errors';
import type { Principal } from './auth';
import { malformed, ProblemError } from './problem';

/** The body parsed as JSON or YAML (an absent body is an empty document); a 400 problem when it is neither. */
export function readDocument(body: unknown): unknown {
  try {
    return parseStructuredText(typeof body === 'string' ? body : '', 'body');
  } catch (err) {
    throw err instanceof InputError ? malformed(err) : err;
  }
}

/**
 * Who submits is who the credential proves: the document's submittedBy becomes the caller's
 * identity. A different one the document named is returned as `claimedBy`, for the record only.
 */
export function asSubmitter(doc: unknown, caller: Principal): { doc: unknown; claimedBy?: string } {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return { doc };
  const claimed = (doc as Record<string, unknown>).submittedBy;
  return {
    doc: { ...doc, submittedBy: caller.id },
    ...(claimed !== undefined && claimed !== caller.id ? { claimedBy: String(claimed) } : {}),
  };
}

/** Who acts on an amendment (a cancel's `by`) is the caller; a body naming someone else is refused (403), never recorded as it claims. */
export function asCaller(doc: unknown, field: string, caller: Principal): unknown {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return doc;
  const claimed = (doc as Record<string, unknown>)[field];
  if (claimed !== undefined && claimed !== caller.id) {
    const proof = caller.via === 'jwt' ? 'its access token' : 'its API key';
    throw new ProblemError(
      403,
      'identity-mismatch',
      'Not allowed',
      `${field} must be the caller, "${caller.id}" (from ${proof}), or be left out`,
      {
        errors: [{ path: field, message: `names someone other than the caller "${caller.id}"` }],
      },
    );
  }
  return { ...doc, [field]: caller.id };
}
