/**
 * Issue 15: one declared set of failure types (FAILURE_TYPES in src/connectors/types.ts) shared by
 * every connector. Pure: reads the sources, starts nothing. Lists each failure type with the
 * connectors that raise it, and fails on a type a source raises that is not declared, on a raise
 * whose type it cannot tell, and on a declared type nothing raises or uses.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FAILURE_TYPES } from '../../src/connectors/types';

const ROOT = join(__dirname, '..', '..');
const CONNECTORS_DIR = join(ROOT, 'src', 'connectors');

interface Source {
  file: string;
  text: string;
}
interface Raise {
  file: string;
  line: number;
  /** The failure types it may raise (several for a lookup table); empty: cannot tell. */
  types: string[];
  /** The top-level function or const it is in. */
  within: string | undefined;
}

const lineOf = (text: string, index: number) => text.slice(0, index).split('\n').length;

/** The first argument of the call whose '(' is at `open` (up to the first comma or ')' at depth 0). */
function firstArgument(text: string, open: number): string {
  let depth = 0;
  for (let i = open + 1; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') {
      if (depth === 0) return text.slice(open + 1, i).trim();
      depth--;
    } else if (ch === ',' && depth === 0) return text.slice(open + 1, i).trim();
  }
  return text.slice(open + 1).trim();
}

/** The string values of `const NAME ... = { ... };` in `text` (a table of failure types), or undefined. */
function tableValues(text: string, name: string): string[] | undefined {
  const m = new RegExp(`const ${name}\\b[^=]*=\\s*\\{([\\s\\S]*?)\\n\\};`).exec(text);
  if (!m) return undefined;
  return [...m[1]!.matchAll(/:\s*'(\w+)'/g)].map((v) => v[1]!);
}

function enclosing(text: string, index: number): string | undefined {
  let name: string | undefined;
  for (const m of text
    .slice(0, index)
    .matchAll(/^(?:export )?(?:async )?(?:function\*? (\w+)|const (\w+)|class (\w+))/gm))
    name = m[1] ?? m[2] ?? m[3];
  return name;
}

/** Every place a source raises a failure type, and which types. */
function raisesIn(src: Source): Raise[] {
  const out: Raise[] = [];
  const at = (index: number, types: string[]) =>
    out.push({ file: src.file, line: lineOf(src.text, index), types, within: enclosing(src.text, index) });
  for (const m of src.text.matchAll(/new (PermanentTargetError|TransientTargetError)\s*\(/g)) {
    if (m[1] === 'TransientTargetError') {
      at(m.index, ['TargetUnavailable']); // its one type (TransientTargetError.type)
      continue;
    }
    const arg = firstArgument(src.text, m.index + m[0].length - 1);
    const literal = /^'(\w+)'$/.exec(arg);
    if (literal) {
      at(m.index, [literal[1]!]);
      continue;
    }
    // A lookup: `TABLE[key]`, `TABLE[key] ?? 'Fallback'`.
    const types = [...arg.matchAll(/'(\w+)'/g)].map((v) => v[1]!);
    let resolved = true;
    for (const id of arg.replace(/'[^']*'/g, '').match(/\b[A-Z][A-Z0-9_]+\b/g) ?? []) {
      const values = tableValues(src.text, id);
      if (values) types.push(...values);
      else resolved = false;
    }
    at(m.index, resolved ? [...new Set(types)] : []);
  }
  for (const m of src.text.matchAll(
    /ApplicationFailure\.(?:nonRetryable|retryable)\([^;]*?,\s*'(\w+)'|ApplicationFailure\.create\(\{[^}]*?type:\s*'(\w+)'/g,
  ))
    at(m.index, [m[1] ?? m[2]!]);
  return out;
}

/** The top-level functions and classes of a source, with their text. */
function declarations(text: string): Array<{ name: string; body: string }> {
  return [...text.matchAll(/^(?:export )?(?:async )?(?:function\*? |class )(\w+)[\s\S]*?^\}/gm)].map((m) => ({
    name: m[1]!,
    body: m[0],
  }));
}

/**
 * failure type → the connectors that raise it. A shared module's raise (a protocol client's,
 * http-util's...) counts for each connector that reaches it: through the functions and classes
 * of shared modules that call one another (a client calling http-util), to the connectors that
 * name one of them.
 */
function failureTable(sources: Source[]): { table: Map<string, Set<string>>; raises: Raise[] } {
  const isConnector = (s: Source) => /\bimplements Connector\b/.test(s.text);
  const connectors = sources.filter(isConnector);
  const shared = sources.filter((s) => !isConnector(s)).flatMap((s) => declarations(s.text));
  const table = new Map<string, Set<string>>();
  const add = (type: string, who: string) => table.set(type, (table.get(type) ?? new Set()).add(who));
  const raises = sources.flatMap(raisesIn);
  for (const r of raises) {
    const src = sources.find((s) => s.file === r.file)!;
    if (isConnector(src)) {
      for (const t of r.types) add(t, src.file.replace(/\.ts$/, ''));
      continue;
    }
    // Shared: the shared functions and classes that reach the raise, then the connectors naming one of them.
    const reach = new Set(r.within ? [r.within] : []);
    const names = (text: string) => [...reach].some((n) => new RegExp(`\\b${n}\\b`).test(text));
    for (let grew = true; grew;) {
      grew = false;
      for (const d of shared) {
        if (!reach.has(d.name) && names(d.body)) {
          reach.add(d.name);
          grew = true;
        }
      }
    }
    for (const c of connectors) if (names(c.text)) for (const t of r.types) add(t, c.file.replace(/\.ts$/, ''));
  }
  return { table, raises };
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const declared = Object.keys(FAILURE_TYPES);

/** What is wrong with `sources` against FAILURE_TYPES; `usedElsewhere`: the declared types some other source names. */
function problems(sources: Source[], usedElsewhere: Set<string>): string[] {
  const { table, raises } = failureTable(sources);
  const out: string[] = [];
  for (const r of raises) {
    if (r.types.length === 0)
      out.push(
        `src/connectors/${r.file}:${r.line}: cannot tell which failure type this raises (use a literal or a table typed PermanentFailureType)`,
      );
    for (const t of r.types)
      if (!declared.includes(t))
        out.push(`src/connectors/${r.file}:${r.line}: raises "${t}", which FAILURE_TYPES does not declare`);
  }
  for (const t of declared)
    if (!table.has(t) && !usedElsewhere.has(t))
      out.push(`"${t}" is declared in FAILURE_TYPES but no connector raises it and no source uses it`);
  return out;
}

describe('failure types (issue 15)', () => {
  // The connectors and what they share, protocol clients (src/connectors/clients/) included.
  const sources: Source[] = tsFiles(CONNECTORS_DIR)
    .map((p) => relative(CONNECTORS_DIR, p))
    .sort()
    .map((file) => ({ file, text: readFileSync(join(CONNECTORS_DIR, file), 'utf8') }));
  const others = tsFiles(join(ROOT, 'src'))
    .filter((p) => !p.startsWith(CONNECTORS_DIR))
    .map((p) => readFileSync(p, 'utf8'))
    .join('\n');
  const usedElsewhere = new Set(declared.filter((t) => others.includes(`'${t}'`)));

  test('each failure type a connector raises is declared once, and each declared one is raised or used', () => {
    const { table } = failureTable(sources);
    const width = Math.max(...declared.map((t) => t.length), ...[...table.keys()].map((t) => t.length));
    const rows = [...new Set([...declared, ...table.keys()])].map((t) => {
      const who = [...(table.get(t) ?? [])].sort().join(', ');
      const kind = (FAILURE_TYPES as Record<string, { kind: string }>)[t]?.kind ?? 'UNDECLARED';
      return `${t.padEnd(width)}  ${kind.padEnd(10)} ${who || (usedElsewhere.has(t) ? '(activities)' : '-')}`;
    });
    console.log(`failure type → connectors that raise it\n${rows.join('\n')}`);
    expect(problems(sources, usedElsewhere)).toEqual([]);
  });

  test('every connector is in the table (the scan finds their raises)', () => {
    const { table } = failureTable(sources);
    const raising = new Set([...table.values()].flatMap((s) => [...s]));
    expect([...raising].sort()).toEqual(['http', 'iam', 'ldap', 'postgres', 'scim']);
  });

  test('the check fails on an undeclared type, an untyped lookup and an unused declared type', () => {
    const bogus: Source = {
      file: 'bogus.ts',
      text: [
        'const CODES: Record<number, string> = {',
        "  1: 'TargetRejected',",
        "  2: 'NoSuchThing',",
        '};',
        'export class Bogus implements Connector {',
        "  a() { throw new PermanentTargetError('TargetGone', 'x'); }",
        "  b(e: { code: number }) { throw new PermanentTargetError(CODES[e.code] ?? 'TargetRejected', 'x'); }",
        "  c(t: string) { throw new PermanentTargetError(t as never, 'x'); }",
        '}',
      ].join('\n'),
    };
    const found = problems([bogus], new Set());
    expect(found).toEqual(
      expect.arrayContaining([
        'src/connectors/bogus.ts:6: raises "TargetGone", which FAILURE_TYPES does not declare',
        'src/connectors/bogus.ts:7: raises "NoSuchThing", which FAILURE_TYPES does not declare',
        expect.stringContaining('src/connectors/bogus.ts:8: cannot tell'),
        '"AccountMissing" is declared in FAILURE_TYPES but no connector raises it and no source uses it',
      ]),
    );
    expect(found.filter((p) => p.includes('"TargetRejected"'))).toEqual([]);
  });
});
