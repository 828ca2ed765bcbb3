/**
 * The expression language of rules: CEL (@marcbachmann/cel-js), plus `{expr}` templates.
 * Every variable a rule may use is declared, so a typo is caught when the ruleset loads.
 * Values cross into CEL with integers as BigInt (CEL `int`) and come back as numbers.
 * Pure: no I/O.
 */
import { Environment } from '@marcbachmann/cel-js';

/** The variables of every rule expression; loop variables (`as:`) are added per action. */
export const CEL_VARIABLES = [
  'change',
  'changes',
  'before',
  'after',
  'customer',
  'maps',
  'user',
  'userBefore',
  'module',
  'plan',
  'rule',
  'item',
] as const;

export type CelContext = Record<string, unknown>;
export type CompiledExpression = (ctx: CelContext) => unknown;

/** An expression that does not compile: `message` says why, in one line. */
export class CelCompileError extends Error {
  override readonly name = 'CelCompileError';
}

/** An expression that failed while evaluating (a missing key, a type mismatch). */
export class CelEvalError extends Error {
  override readonly name = 'CelEvalError';
  constructor(
    readonly expression: string,
    message: string,
  ) {
    super(message);
  }
}

const firstLine = (e: unknown): string =>
  String((e as Error)?.message ?? e)
    .split('\n')[0]!
    .trim();

let baseEnv: Environment | undefined;
const envs = new Map<string, Environment>();

function base(): Environment {
  if (!baseEnv) {
    const env = new Environment({ homogeneousAggregateLiterals: false });
    for (const v of CEL_VARIABLES) env.registerVariable(v, 'dyn');
    env.registerFunction('distinct(list): list', (l: unknown[]) => {
      const seen = new Set<string>();
      return l.filter((x) => {
        const k =
          typeof x === 'object'
            ? JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))
            : `${typeof x}:${String(x)}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    });
    env.registerFunction('flatten(list): list', (l: unknown[]) => l.flatMap((x) => (Array.isArray(x) ? x : [x])));
    env.registerFunction('bytesize(string): int', (s: string) => BigInt(utf8Length(s)));
    baseEnv = env;
  }
  return baseEnv;
}

/** An environment with extra loop variables declared (cached by their names). */
function envWith(extra: readonly string[]): Environment {
  const names = extra.filter((n) => !(CEL_VARIABLES as readonly string[]).includes(n));
  if (names.length === 0) return base();
  const key = [...names].sort().join(',');
  let env = envs.get(key);
  if (!env) {
    env = base().clone();
    for (const n of names) env.registerVariable(n, 'dyn');
    envs.set(key, env);
  }
  return env;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Compile a CEL expression; throws CelCompileError for syntax errors and unknown variables. */
export function compileCel(expression: string, extraVariables: readonly string[] = []): CompiledExpression {
  const env = envWith(extraVariables);
  const checked = env.check(expression);
  if (!checked.valid) throw new CelCompileError(firstLine(checked.error));
  const fn = env.parse(expression);
  return (ctx) => {
    try {
      return fn(ctx);
    } catch (err) {
      throw new CelEvalError(expression, `${expression}: ${firstLine(err)}`);
    }
  };
}

/** JSON into CEL: integers become BigInt (CEL `int`), everything else keeps its shape. */
export function toCel(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toCel(v);
    return out;
  }
  return value;
}

/** CEL back to JSON: BigInt becomes a number. */
export function fromCel(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(fromCel);
  if (value instanceof Map) return Object.fromEntries([...value.entries()].map(([k, v]) => [String(k), fromCel(v)]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromCel(v);
    return out;
  }
  return value;
}

/** A value as template text: lists are joined with ", ", null is empty. */
export function celText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(celText).join(', ');
  if (typeof value === 'object') return JSON.stringify(fromCel(value));
  return String(value);
}

export interface Template {
  readonly source: string;
  /** True when the template has no `{...}` placeholder. */
  readonly constant: boolean;
  render(ctx: CelContext): string;
}

const SIMPLE_PATH = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * A text template: `{expr}` is replaced by the CEL expression's value; `{{` and `}}` are
 * literal braces. `{user.email}` and other plain paths skip the CEL evaluator.
 */
export function compileTemplate(source: string, extraVariables: readonly string[] = []): Template {
  const parts: Array<string | CompiledExpression> = [];
  let literal = '';
  let i = 0;
  while (i < source.length) {
    const ch = source[i]!;
    if ((ch === '{' || ch === '}') && source[i + 1] === ch) {
      literal += ch;
      i += 2;
      continue;
    }
    if (ch === '}') throw new CelCompileError(`unmatched "}" at ${i} (write "}}" for a literal brace)`);
    if (ch !== '{') {
      literal += ch;
      i++;
      continue;
    }
    const end = findClose(source, i);
    if (end < 0) throw new CelCompileError(`unclosed "{" at ${i}`);
    const expr = source.slice(i + 1, end).trim();
    if (!expr) throw new CelCompileError(`empty "{}" at ${i}`);
    if (literal) parts.push(literal);
    literal = '';
    parts.push(compilePart(expr, extraVariables));
    i = end + 1;
  }
  if (literal) parts.push(literal);
  const constant = parts.every((p) => typeof p === 'string');
  return {
    source,
    constant,
    render: (ctx) => {
      let out = '';
      for (const p of parts) out += typeof p === 'string' ? p : celText(p(ctx));
      return out;
    },
  };
}

/** The `}` closing the placeholder at `open`, skipping braces inside CEL map literals and strings. */
function findClose(s: string, open: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let j = open; j < s.length; j++) {
    const c = s[j]!;
    if (quote) {
      if (c === '\\') j++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return j;
  }
  return -1;
}

function compilePart(expr: string, extraVariables: readonly string[]): CompiledExpression {
  const full = compileCel(expr, extraVariables);
  if (!SIMPLE_PATH.test(expr)) return full;
  const steps = expr.split('.');
  return (ctx) => {
    let v: unknown = ctx;
    for (const s of steps) {
      if (v === null || typeof v !== 'object') return full(ctx);
      v = (v as Record<string, unknown>)[s];
      if (v === undefined) return full(ctx);
    }
    return v;
  };
}
