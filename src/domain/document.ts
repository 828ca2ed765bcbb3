/**
 * Reading a document (JSON or YAML text: amendments, rules, targets, approvals, cases) into
 * a value, and an amendment document into a validated Amendment, with errors that name the
 * file and where in it: the line and column of a syntax error or a duplicate key, the path
 * of a value. Hostile input is refused whole, before any of it is used: documents over
 * MAX_DOCUMENT_BYTES, nesting deeper than MAX_DEPTH, duplicate keys (JSON would silently
 * keep the last), YAML alias bombs, control, bidirectional and invisible characters.
 * Pure: the caller reads the file.
 */
import { parseDocument } from 'yaml';
import { type Amendment, AmendmentDocumentSchema } from './amendment';
import { InputError, type InputIssue, formatPath, parseWith } from './errors';
import { MAX_DEPTH, MAX_DOCUMENT_BYTES, codePoint, documentIssues, utf8Length } from './text';

const MB = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MB`;

/** Parse JSON or YAML text (JSON is YAML; a leading `{` or `[` is read as strict JSON, with exact positions). */
export function parseStructuredText(text: string, file: string): unknown {
  const size = utf8Length(text);
  if (size > MAX_DOCUMENT_BYTES) {
    throw new InputError('document too large', [
      {
        file,
        path: '',
        message: `${size} bytes (${MB(size)}); a document is at most ${MAX_DOCUMENT_BYTES} bytes (${MB(MAX_DOCUMENT_BYTES)})`,
      },
    ]);
  }
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // a byte order mark is not content
  const trimmed = body.trimStart();
  if (trimmed === '' || /^(?:#[^\n]*\n?\s*)*$/.test(trimmed))
    throw new InputError('empty document', [
      { file, path: '', message: 'the document is empty (nothing but spaces or comments)' },
    ]);
  let value: unknown;
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const problem = scanJson(body);
    if (problem)
      throw new InputError(
        problem.duplicate ? 'duplicate key' : problem.deep ? 'document nested too deeply' : 'not valid JSON',
        [{ file, path: problem.where, message: problem.message }],
      );
    try {
      value = JSON.parse(body) as unknown;
    } catch (err) {
      throw new InputError('not valid JSON', [{ file, path: '', message: (err as Error).message }]);
    }
  } else {
    value = parseYaml(body, file);
  }
  const issues = documentIssues(value);
  if (issues.length > 0)
    throw new InputError(
      'unsafe document',
      issues.map((i) => ({ file, path: shortPath(i.path), message: i.message })),
    );
  return value;
}

/** A path for a message: a very deep one is cut after its first steps. */
export function shortPath(path: ReadonlyArray<string | number>): string {
  return path.length > 12 ? `${formatPath(path.slice(0, 12))}… (${path.length} levels)` : formatPath(path);
}

function parseYaml(text: string, file: string): unknown {
  const fail = (what: string, issues: Array<Omit<InputIssue, 'file'>>): never => {
    throw new InputError(
      what,
      issues.map((i) => ({ file, ...i })),
    );
  };
  let doc;
  try {
    doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    if (err instanceof RangeError)
      return fail('document nested too deeply', [
        { path: '', message: `nested deeper than the parser can follow (at most ${MAX_DEPTH} levels are allowed)` },
      ]);
    throw err;
  }
  if (doc.errors.length > 0) {
    const where = (e: (typeof doc.errors)[number]): string =>
      e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    const problem = (e: (typeof doc.errors)[number]): string => {
      if (e.code === 'DUPLICATE_KEY')
        return 'duplicate key: a key may appear once in a mapping (the second would silently replace the first)';
      const first = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
      return /Maximum call stack/.test(first)
        ? `nested deeper than the parser can follow (at most ${MAX_DEPTH} levels are allowed)`
        : first;
    };
    // The parser ran out of stack: where it did says nothing about the document, so no position.
    if (doc.errors.some((e) => /Maximum call stack/.test(e.message)))
      return fail('document nested too deeply', [
        { path: '', message: problem(doc.errors.find((e) => /Maximum call stack/.test(e.message))!) },
      ]);
    return fail(
      doc.errors.some((e) => e.code === 'DUPLICATE_KEY') ? 'duplicate key' : 'not valid YAML',
      doc.errors.slice(0, 10).map((e) => ({ path: where(e), message: problem(e) })),
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    if (err instanceof RangeError)
      return fail('document nested too deeply', [{ path: '', message: `nested deeper than ${MAX_DEPTH} levels` }]);
    // The yaml library refuses alias bombs ("billion laughs") and similar with a plain Error.
    return fail('not valid YAML', [{ path: '', message: (err as Error).message }]);
  }
}

export function parseAmendmentText(text: string, file: string): Amendment {
  return parseWith(AmendmentDocumentSchema, parseStructuredText(text, file), 'invalid amendment', file);
}

// ---- strict JSON, with positions ---------------------------------------------------------

interface JsonProblem {
  where: string;
  message: string;
  duplicate?: boolean;
  deep?: boolean;
}

const WS = /[ \t\n\r]*/y;
// eslint-disable-next-line no-control-regex -- JSON strings may not hold raw control characters
const STRING = /"(?:[^"\\\u0000-\u001F]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

type Frame = { kind: 'object'; keys: Set<string>; key?: string } | { kind: 'array'; index: number };

/**
 * Walks JSON text once, without recursion: the first syntax error (line and column, and what
 * was expected), a duplicate key in an object (its path), or nesting deeper than MAX_DEPTH.
 * Undefined when the text is valid JSON with none of these.
 */
export function scanJson(text: string): JsonProblem | undefined {
  const stack: Frame[] = [];
  let i = 0;
  let mode: 'value' | 'key' | 'after' = 'value';
  const at = (pos: number): string => {
    let line = 1;
    let col = 1;
    for (let k = 0; k < pos && k < text.length; k++) {
      if (text.charCodeAt(k) === 10) {
        line++;
        col = 1;
      } else col++;
    }
    return `line ${line}, column ${col}`;
  };
  const path = (extra?: string): string => {
    const steps: Array<string | number> = [];
    for (const f of stack) {
      if (f.kind === 'array') steps.push(f.index);
      else if (f.key !== undefined) steps.push(f.key);
    }
    if (extra !== undefined) steps.push(extra);
    return shortPath(steps);
  };
  const where = (pos: number, p = path()): string => (p ? `${p} (${at(pos)})` : at(pos));
  const found = (pos: number): string => {
    if (pos >= text.length) return 'the end of the document';
    const ch = String.fromCodePoint(text.codePointAt(pos)!);
    return /[\p{L}\p{N}\p{P}\p{S}]/u.test(ch) && ch !== '"' ? `"${ch}"` : codePoint(ch);
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(text);
    return m ? m[0] : undefined;
  };
  const ws = (): void => {
    i += match(WS)!.length;
  };
  const err = (message: string, pos = i): JsonProblem => ({ where: where(pos), message });

  for (;;) {
    ws();
    if (mode === 'value') {
      const c = text[i];
      if (c === '{' || c === '[') {
        if (stack.length >= MAX_DEPTH)
          return { where: where(i), message: `nested deeper than ${MAX_DEPTH} levels`, deep: true };
        stack.push(c === '{' ? { kind: 'object', keys: new Set() } : { kind: 'array', index: 0 });
        i++;
        ws();
        if (text[i] === (c === '{' ? '}' : ']')) {
          i++;
          stack.pop();
          mode = 'after';
        } else mode = c === '{' ? 'key' : 'value';
        continue;
      }
      if (c === '"') {
        const s = match(STRING);
        if (s === undefined) return err(stringProblem(text, i));
        i += s.length;
      } else if (text.startsWith('true', i)) i += 4;
      else if (text.startsWith('false', i)) i += 5;
      else if (text.startsWith('null', i)) i += 4;
      else {
        const n = match(NUMBER);
        if (!n)
          return err(`expected a value (an object, array, string, number, true, false or null), found ${found(i)}`);
        i += n.length;
      }
      mode = 'after';
      continue;
    }
    const top = stack[stack.length - 1];
    if (mode === 'key') {
      if (text[i] !== '"') return err(`expected a key in double quotes, found ${found(i)}`);
      const s = match(STRING);
      if (s === undefined) return err(stringProblem(text, i));
      const key = JSON.parse(s) as string;
      const obj = top as Extract<Frame, { kind: 'object' }>;
      if (obj.keys.has(key)) {
        obj.key = undefined;
        return {
          where: where(i, path(key)),
          message: `duplicate key "${key}": a key may appear once in an object (JSON would silently keep the last)`,
          duplicate: true,
        };
      }
      obj.keys.add(key);
      obj.key = key;
      i += s.length;
      ws();
      if (text[i] !== ':') return err(`expected ":" after the key "${key}", found ${found(i)}`);
      i++;
      mode = 'value';
      continue;
    }
    // after a value
    if (!top) {
      if (i >= text.length) return undefined;
      return err(`unexpected ${found(i)} after the end of the document`);
    }
    const c = text[i];
    if (c === ',') {
      i++;
      if (top.kind === 'array') {
        top.index++;
        mode = 'value';
      } else {
        top.key = undefined; // the next key is not known yet: errors until then are at the object
        mode = 'key';
      }
      continue;
    }
    if ((c === '}' && top.kind === 'object') || (c === ']' && top.kind === 'array')) {
      i++;
      stack.pop();
      continue;
    }
    return err(`expected "," or "${top.kind === 'object' ? '}' : ']'}", found ${found(i)}`);
  }
}

function stringProblem(text: string, start: number): string {
  for (let k = start + 1; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c === 0x22) break;
    if (c === 0x5c) {
      if (!/^\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/.test(text.slice(k, k + 6)))
        return `invalid escape "${text.slice(k, k + 2)}" in a string`;
      k++;
      continue;
    }
    if (c < 0x20)
      return `a string may not contain the control character ${codePoint(text[k]!)} (write it as an escape), or it is not closed`;
  }
  return 'a string that is not closed';
}
