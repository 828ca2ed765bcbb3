/**
 * `${VAR}` and `${VAR:-default}` in a policy file (the targets file, the webhook sources file,
 * the notifications file), replaced from the environment after the file is parsed, in string
 * values only: keys are never substituted, and what a variable holds (`: `, `#`, a line break,
 * quotes, `{a: 1}`, a leading `*` or `&`) is that string's text, so it cannot change the
 * document's structure. A value that is exactly one placeholder stays a string ("5432"); where
 * a schema wants a number or a boolean there, `parseEnvTyped` reads the variable's text as one.
 *
 * An unset (or empty) variable without a default is an error naming the file, the path of the
 * value and the variable; so is a value that is not clean text (control characters other than
 * line breaks, bidirectional controls...: what a value written in the file may not hold either).
 * src/worker/env.ts fileEnvNeeds finds the same placeholders, to say what a deployment must set.
 */
import type { z } from 'zod';
import { parseStructuredText } from '../domain/document';
import { formatPath, InputError, type InputIssue, zodIssues } from '../domain/errors';
import { unsafeText } from '../domain/text';
import { ENV_PLACEHOLDER } from '../worker/env';

type Path = Array<string | number>;

/** A value that is exactly one placeholder, nothing around it. */
const SOLE_PLACEHOLDER = new RegExp(`^${ENV_PLACEHOLDER.source}$`);

export interface EnvSubstituted {
  /** The parsed value with every placeholder in a string value replaced. */
  value: unknown;
  /** The values that were exactly one placeholder: their path (as `formatPath` writes it) to the variable's name. */
  sole: Map<string, string>;
}

/** Replace `${VAR}` / `${VAR:-default}` in every string value of a parsed document (never in keys). */
export function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  file: string,
  what = 'targets file',
): EnvSubstituted {
  const missing: InputIssue[] = [];
  const unsafe: InputIssue[] = [];
  const sole = new Map<string, string>();
  const inString = (s: string, path: Path): string => {
    if (!s.includes('${')) return s;
    const only = SOLE_PLACEHOLDER.exec(s);
    if (only) sole.set(formatPath(path), only[1]!);
    return s.replace(ENV_PLACEHOLDER, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') {
        const why = unsafeText(v, true);
        if (why) unsafe.push({ file, path: formatPath(path), message: `\${${name}} ${why}` });
        return v;
      }
      if (def !== undefined) return def;
      missing.push({ file, path: formatPath(path), message: `\${${name}} is not set` });
      return '';
    });
  };
  // Documents are at most 64 levels deep (parseStructuredText), so recursion is bounded.
  const walk = (v: unknown, path: Path): unknown => {
    if (typeof v === 'string') return inString(v, path);
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, k])]));
    return v;
  };
  const out = walk(value, []);
  if (missing.length > 0) throw new InputError(`${what} names unset environment variables`, missing);
  if (unsafe.length > 0) throw new InputError(`${what} names environment variables that are not clean text`, unsafe);
  return { value: out, sole };
}

/** A policy file's text, parsed (YAML or JSON), then with its placeholders replaced from `env`. */
export function parseWithEnv(
  text: string,
  env: NodeJS.ProcessEnv,
  file: string,
  what = 'targets file',
): EnvSubstituted {
  return substituteEnv(parseWithHint(text, file), env, file, what);
}

const FLOW_HINT = ' (a ${VAR} inside { } or [ ] is written in quotes: "${VAR}")';

/**
 * In YAML's flow collections `{` and `,` are syntax, so an unquoted `${VAR}` there is a
 * syntax error (before, the text was replaced first): a syntax error on a line with a
 * placeholder says to quote it.
 */
function parseWithHint(text: string, file: string): unknown {
  try {
    return parseStructuredText(text, file);
  } catch (err) {
    if (!(err instanceof InputError) || !err.message.startsWith('not valid YAML')) throw err;
    const lines = text.split('\n');
    const placeholder = new RegExp(ENV_PLACEHOLDER.source);
    let hinted = false;
    const issues = err.issues.map((i) => {
      const n = /^line (\d+),/.exec(i.path);
      if (hinted || !n || !placeholder.test(lines[Number(n[1]) - 1] ?? '')) return i;
      hinted = true;
      return { ...i, message: `${i.message}${FLOW_HINT}` };
    });
    throw hinted ? new InputError('not valid YAML', issues) : err;
  }
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const fromText = (text: string, expected: 'number' | 'boolean'): number | boolean | undefined => {
  if (expected === 'boolean') return text === 'true' ? true : text === 'false' ? false : undefined;
  return NUMBER.test(text) ? Number(text) : undefined;
};

function getAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, p)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function setAt(root: unknown, path: ReadonlyArray<PropertyKey>, value: unknown): void {
  const parent = getAt(root, path.slice(0, -1)) as Record<PropertyKey, unknown>;
  parent[path[path.length - 1]!] = value;
}

export type EnvTypedResult<T> = { success: true; data: T } | { success: false; issues: InputIssue[] };

/**
 * `schema.safeParse(input)`, where a value that was exactly one placeholder (`sole`, found at
 * `at` + its path in `input`) is read as a number or a boolean where the schema wants one:
 * `${PORT}` = "5432" is 5432, `${SSL}` = "true" is true. Text that is no number ("abc") or no
 * boolean (only `true` and `false` are) is an issue naming the variable and what it holds.
 * Issue paths are relative to `input`, as `zodIssues` writes them.
 */
export function parseEnvTyped<S extends z.ZodType>(
  schema: S,
  input: unknown,
  sole: ReadonlyMap<string, string>,
  file: string,
  at: Path = [],
): EnvTypedResult<z.output<S>> {
  let r = schema.safeParse(input);
  if (r.success) return { success: true, data: r.data };
  if (sole.size === 0) return { success: false, issues: zodIssues(r.error, file) };
  const notes = new Map<string, string>();
  let copy: unknown;
  for (const issue of r.error.issues) {
    if (issue.code !== 'invalid_type') continue;
    const expected: 'number' | 'boolean' | undefined =
      issue.expected === 'number' ? 'number' : issue.expected === 'boolean' ? 'boolean' : undefined;
    if (!expected) continue;
    const name = sole.get(formatPath([...at, ...issue.path]));
    const text = getAt(input, issue.path);
    if (name === undefined || typeof text !== 'string') continue;
    const typed = fromText(text, expected);
    if (typed === undefined) {
      notes.set(
        formatPath(issue.path),
        `\${${name}} is ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}, not a ${expected}${expected === 'boolean' ? ' (true or false)' : ''}`,
      );
      continue;
    }
    copy ??= structuredClone(input);
    setAt(copy, issue.path, typed);
  }
  if (copy !== undefined) {
    r = schema.safeParse(copy);
    if (r.success && notes.size === 0) return { success: true, data: r.data };
  }
  const issues = r.success ? [] : zodIssues(r.error, file);
  for (const [path, message] of notes) {
    const i = issues.findIndex((x) => x.path === path);
    if (i >= 0) issues[i] = { ...issues[i]!, message };
    else issues.push({ file, path, message });
  }
  return { success: false, issues };
}

/** `parseWith` for a policy file whose placeholders are replaced (`parseWithEnv`): an InputError naming the file and paths. */
export function parseWithEnvTyped<S extends z.ZodType>(
  schema: S,
  doc: EnvSubstituted,
  what: string,
  file: string,
): z.output<S> {
  const r = parseEnvTyped(schema, doc.value, doc.sole, file);
  if (!r.success) throw new InputError(what, r.issues);
  return r.data;
}
