/**
 * Hostile text at the boundaries: characters that make a value look like something it is
 * not, and documents too deep or too large to handle. Every document amendctl reads from
 * outside (amendments, rules, targets, approvals, cases, webhook mappings) passes through
 * `documentIssues`; the schemas of the amendment document use `CleanText` on their fields.
 * Pure: safe to import from workflow code.
 */
import { z } from 'zod';

/** Documents larger than this are refused before they are parsed (a 10,000-user baseline is about 1 MB). */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
/** Nesting deeper than this is refused (the contract model needs 4 levels; custom clauses get the rest). */
export const MAX_DEPTH = 64;

const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;
const INVISIBLE = /[\u00AD\u180E\u200B\u2060-\u2064\uFEFF]/;
/* eslint-disable no-control-regex -- finding control characters is the point */
const CONTROL_SINGLE_LINE = /[\u0000-\u001F\u007F-\u009F]/;
const CONTROL_MULTILINE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;
/* eslint-enable no-control-regex */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const codePoint = (ch: string): string => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Why a string is not clean text, or undefined: control characters (line breaks only where
 * `multiline`), bidirectional controls (they reorder what a reader sees: "Trojan Source"),
 * invisible characters and unpaired surrogates.
 */
export function unsafeText(s: string, multiline = false): string | undefined {
  const found = (re: RegExp): { ch: string; at: number } | undefined => {
    const m = re.exec(s);
    return m ? { ch: m[0], at: m.index + 1 } : undefined;
  };
  let f = found(multiline ? CONTROL_MULTILINE : CONTROL_SINGLE_LINE);
  if (f)
    return `contains the control character ${codePoint(f.ch)} at character ${f.at}${/[\t\n\r]/.test(f.ch) ? ' (this value is one line: no line breaks or tabs)' : ''}`;
  if ((f = found(BIDI)))
    return `contains the bidirectional control ${codePoint(f.ch)} at character ${f.at}: it changes how the text reads without changing what it is`;
  if ((f = found(INVISIBLE))) return `contains the invisible character ${codePoint(f.ch)} at character ${f.at}`;
  if ((f = found(LONE_SURROGATE)))
    return `contains an unpaired surrogate ${codePoint(f.ch)} at character ${f.at} (not valid Unicode)`;
  return undefined;
}

/** A one-line string of clean text (see `unsafeText`), at most `max` characters. */
export function cleanText(max: number, opts: { min?: number; multiline?: boolean; what?: string } = {}) {
  return z
    .string()
    .min(opts.min ?? 0, opts.min ? `${opts.what ?? 'a value'} is required` : undefined)
    .max(max, `at most ${max} characters`)
    .superRefine((s, ctx) => {
      const why = unsafeText(s, opts.multiline);
      if (why) ctx.addIssue({ code: 'custom', message: why });
      else if (opts.min && s.trim().length < opts.min)
        ctx.addIssue({ code: 'custom', message: `${opts.what ?? 'a value'} is required (not only spaces)` });
    });
}

export interface ValueIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * Depth and clean text of a parsed document, keys included, without recursion (a document
 * nested 100,000 deep must not overflow the stack). Keys are one line; string values may
 * have line breaks (clause text, rule messages): fields that must not are checked by their schema.
 */
export function documentIssues(value: unknown, limit = 20): ValueIssue[] {
  const issues: ValueIssue[] = [];
  const stack: Array<{ v: unknown; path: Array<string | number> }> = [{ v: value, path: [] }];
  while (stack.length > 0 && issues.length < limit) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      const why = unsafeText(v, true);
      if (why) issues.push({ path, message: why });
      continue;
    }
    if (typeof v === 'bigint' || typeof v === 'function' || typeof v === 'symbol') {
      issues.push({ path, message: `not a JSON value (a ${typeof v})` });
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (path.length >= MAX_DEPTH) {
      issues.push({ path: path.slice(0, 12), message: `nested deeper than ${MAX_DEPTH} levels (from here down)` });
      continue;
    }
    const proto = Object.getPrototypeOf(v) as object | null;
    // A plain object's prototype is Object.prototype (of whichever realm made it), whose own prototype is null.
    if (!Array.isArray(v) && proto !== null && Object.getPrototypeOf(proto) !== null) {
      issues.push({ path, message: `not a JSON value (a ${(v as object).constructor?.name ?? 'object'})` });
      continue;
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, i] });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!;
      const why =
        k === '__proto__'
          ? 'is "__proto__", a name no document may use (it would rewrite the object it is in)'
          : unsafeText(k);
      if (why) issues.push({ path: [...path, k], message: `the key ${why}` });
      stack.push({ v: (v as Record<string, unknown>)[k], path: [...path, k] });
    }
  }
  return issues;
}

/** UTF-8 length of a string, without allocating it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** A value for a message or a view: one line, at most `max` characters, unsafe characters written as U+XXXX. */
export function shown(s: string, max = 120): string {
  const mark = (ch: string): string => `<${codePoint(ch)}>`;
  const safe = s
    .replace(
      // eslint-disable-next-line no-control-regex -- control characters are what is replaced
      /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u00AD\u180E\u200B\u2060-\u2064\uFEFF]/g,
      mark,
    )
    .replace(new RegExp(LONE_SURROGATE.source, 'g'), mark);
  if (safe.length <= max) return safe;
  const cut = /[\uD800-\uDBFF]/.test(safe[max - 1]!) ? max - 1 : max;
  return `${safe.slice(0, cut)}… (${s.length} characters)`;
}

// ---- email addresses: confusables ------------------------------------------------------

/** Scripts whose letters pass for one another (Latin "a", Cyrillic "а", Greek "α"). */
const LOOKALIKE_SCRIPTS: Array<[string, RegExp]> = [
  ['Latin', /\p{Script=Latin}/u],
  ['Cyrillic', /\p{Script=Cyrillic}/u],
  ['Greek', /\p{Script=Greek}/u],
  ['Armenian', /\p{Script=Armenian}/u],
  ['Cherokee', /\p{Script=Cherokee}/u],
];

/** Cyrillic and Greek letters that look like Latin ones (the common part of Unicode's confusables). */
const LOOKS_LATIN: Record<string, string> = {
  а: 'a',
  в: 'b',
  е: 'e',
  ё: 'e',
  һ: 'h',
  і: 'i',
  ї: 'i',
  ј: 'j',
  к: 'k',
  ӏ: 'l',
  м: 'm',
  о: 'o',
  р: 'p',
  ԛ: 'q',
  ѕ: 's',
  т: 't',
  у: 'y',
  х: 'x',
  с: 'c',
  ԁ: 'd',
  ԝ: 'w',
  ү: 'y',
  α: 'a',
  β: 'b',
  ε: 'e',
  η: 'n',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  γ: 'y',
  ϲ: 'c',
  ϳ: 'j',
};

/** The letters of `part` come from more than one of the look-alike scripts: which, and the first letter of the second. */
function mixedScripts(part: string): string | undefined {
  const seen: Array<{ script: string; ch: string; at: number }> = [];
  let i = 0;
  for (const ch of part) {
    i++;
    const script = LOOKALIKE_SCRIPTS.find(([, re]) => re.test(ch))?.[0];
    if (!script || seen.some((x) => x.script === script)) continue;
    seen.push({ script, ch, at: i });
    if (seen.length > 1) {
      const said = seen.map((x) => `"${x.ch}" ${codePoint(x.ch)} at character ${x.at} is ${x.script}`).join(', ');
      return `mixes ${seen[0]!.script} and ${script} letters in "${part}" (${said}): letters that look alike`;
    }
  }
  return undefined;
}

/**
 * Why an email address (lower-cased) cannot be a key, or undefined: it must be in Unicode
 * normal form NFKC (a full-width "ａ" or a decomposed "é" is another string for the same
 * letters), and no part of it may mix Latin, Cyrillic, Greek... letters ("аlice" with a
 * Cyrillic "а"). A whole part in one script is allowed (josé, 李); `emailSkeleton` then finds
 * two addresses that differ only by look-alike letters.
 */
export function emailProblem(email: string): string | undefined {
  const nfkc = email.normalize('NFKC');
  if (nfkc !== email) {
    return `not in Unicode normal form: NFKC writes it "${nfkc}" (a full-width letter, a ligature or an accent as a separate combining mark is another string for the same text)`;
  }
  const [local, domain] = email.split('@') as [string, string | undefined];
  for (const part of [local, ...(domain ?? '').split('.')]) {
    const mixed = mixedScripts(part);
    if (mixed) return mixed;
  }
  return undefined;
}

/** The address with look-alike letters replaced by the Latin ones they pass for: equal skeletons, one person or a forgery. */
export function emailSkeleton(email: string): string {
  let out = '';
  for (const ch of email) out += LOOKS_LATIN[ch] ?? ch;
  return out;
}

/** Text for a terminal: each line as `shown` writes it (what an argument or a file brought in cannot forge lines or reorder them). */
export function safeLines(text: string, maxLine = 2000): string {
  return text
    .split('\n')
    .map((l) => shown(l, maxLine))
    .join('\n');
}
