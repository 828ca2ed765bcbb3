/**
 * Input errors that say what is wrong and where. Pure: workflow-safe.
 */
import type { z } from 'zod';
import { shown } from './text';

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
    super(
      `${what}:\n${issues.map((i) => `  ${i.file ? `${shown(i.file, 300)}: ` : ''}${i.path || '(root)'}: ${i.message}`).join('\n')}`,
    );
    this.name = 'InputError';
    this.issues = issues;
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      // A key that is not a plain name is quoted (and so are keys that hold hostile text, escaped by JSON).
      const key = String(p);
      out += /^[A-Za-z_$][\w$-]*$/.test(key) ? (out ? `.${key}` : key) : `[${quoted(key)}]`;
    }
  }
  return out;
}

/** One issue per problem; an unknown key is named in the path (`contract.namdUsers: unknown clause ...`), not only in the message. */
/** A key as JSON writes it, with the characters that change how text reads escaped too (\u202e). */
function quoted(key: string): string {
  return JSON.stringify(key).replace(
    /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function zodIssues(error: z.ZodError, file?: string): InputIssue[] {
  return error.issues.flatMap((i) => {
    const at = file ? { file } : {};
    if (i.code === 'unrecognized_keys') {
      const message = i.message.startsWith('Unrecognized key') ? 'unknown field' : i.message;
      return i.keys.map((k) => ({ ...at, path: formatPath([...i.path, k]), message }));
    }
    // A record's key that its schema refuses: say why, not only "Invalid key in record".
    if (i.code === 'invalid_key' && i.issues[0])
      return [{ ...at, path: formatPath(i.path), message: `invalid name: ${i.issues[0].message}` }];
    return [{ ...at, path: formatPath(i.path), message: i.message }];
  });
}

/** Parse with a schema or throw an InputError naming the file and paths. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string, file?: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new InputError(what, zodIssues(r.error, file));
  return r.data;
}
