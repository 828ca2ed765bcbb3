/**
 * Input errors that say what is wrong and where. Pure: workflow-safe.
 */
import type { z } from 'zod';

export interface InputIssue {
  /** `amendment.json` or `rules.yaml`, when known. */
  file?: string;
  /** JSON path inside the document: `namedUsers[2].email`. */
  path: string;
  message: string;
}

export class InputError extends Error {
  readonly issues: InputIssue[];
  constructor(what: string, issues: InputIssue[]) {
    super(`${what}:\n${issues.map((i) => `  ${i.file ? `${i.file}: ` : ''}${i.path || '(root)'}: ${i.message}`).join('\n')}`);
    this.name = 'InputError';
    this.issues = issues;
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

export function zodIssues(error: z.ZodError, file?: string): InputIssue[] {
  return error.issues.map((i) => ({ ...(file ? { file } : {}), path: formatPath(i.path), message: i.message }));
}

/** Parse with a schema or throw an InputError naming the file and paths. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string, file?: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new InputError(what, zodIssues(r.error, file));
  return r.data;
}
