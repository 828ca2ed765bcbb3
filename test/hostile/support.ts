/**
 * The hostile-input table (issue 10, point 6): each case is a row (id, boundary, input,
 * outcome, message excerpt) and a real assertion; each file prints its table once at the end.
 */
import { InputError, type InputIssue } from '../../src/domain/errors';

export interface Row {
  id: string;
  boundary: string;
  input: string;
  outcome: string;
  message: string;
}

/** One line, at most `n` characters, unsafe characters made visible (the table is read in a terminal). */
export function excerpt(text: string, n = 110): string {
  const line = text
    .replace(/\s+/g, ' ')
    .replace(
      // eslint-disable-next-line no-control-regex -- control characters are what is made visible
      /[\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF]/g,
      (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}>`,
    )
    .trim();
  return line.length > n ? `${line.slice(0, n - 1)}…` : line;
}

export class HostileTable {
  readonly rows: Row[] = [];
  constructor(readonly title: string) {}

  add(row: Row): void {
    if (this.rows.some((r) => r.id === row.id)) throw new Error(`duplicate case id ${row.id}`);
    this.rows.push({ ...row, input: excerpt(row.input, 60), message: excerpt(row.message) });
  }

  /** The table, compact: one line a row, columns padded to the widest of the first few. */
  print(): void {
    const w = (k: keyof Row, max: number) => Math.min(max, Math.max(k.length, ...this.rows.map((r) => r[k].length)));
    const cols: Array<[keyof Row, number]> = [
      ['id', w('id', 12)],
      ['boundary', w('boundary', 22)],
      ['input', w('input', 60)],
      ['outcome', w('outcome', 26)],
      ['message', 0],
    ];
    const line = (r: Row): string => cols.map(([k, n]) => (n ? r[k].padEnd(n) : r[k])).join(' | ');
    const head: Row = {
      id: 'case',
      boundary: 'boundary',
      input: 'input',
      outcome: 'outcome',
      message: 'message excerpt',
    };
    const out = [
      `\n  hostile input, ${this.title}: ${this.rows.length} cases`,
      `  ${line(head)}`,
      ...this.rows.map((r) => `  ${line(r)}`),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  }
}

/** The InputError `fn` throws; anything else (a crash, or nothing thrown) fails the case. */
export function inputErrorOf(fn: () => unknown): InputError {
  let result: unknown;
  try {
    result = fn();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw new Error(`expected an InputError, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
  }
  throw new Error(`expected an InputError, got a result: ${excerpt(JSON.stringify(result) ?? String(result), 200)}`);
}

/**
 * The issue at exactly `path` (and in `file`) whose message matches `what`; the error's text
 * names it as `file: path: message`. Fails listing the issues there were.
 */
export function issueAt(err: InputError, path: string, what: RegExp, file?: string): InputIssue {
  const issue = err.issues.find(
    (i) => i.path === path && what.test(i.message) && (file === undefined || i.file === file),
  );
  if (!issue)
    throw new Error(
      `no issue at "${path}"${file ? ` in ${file}` : ''} matching ${what}; the error was:\n${err.message}`,
    );
  if (!err.message.includes(`${file !== undefined ? `${file}: ` : ''}${path || '(root)'}: ${issue.message}`))
    throw new Error(`the error text does not name where: ${err.message}`);
  return issue;
}
