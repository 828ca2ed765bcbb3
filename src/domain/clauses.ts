/**
 * The `clauses` form: contract text read by clause extractors.
 *
 * Each extractor reads one clause of the model from real-world wording and reports the
 * clause `ref` and the exact text span it read. Text an extractor cannot read is reported
 * (a problem naming the ref), never guessed; a clause no extractor reads is reported too.
 *
 * Semantics (decided here, documented in examples/reference/forms/README.md):
 * - Every clause given restates its subject in full ("amended and restated"): a named-users
 *   clause lists all the named users, a modules clause all the modules. Subjects no clause
 *   mentions keep their applied value.
 * - A baseline (no applied contract) must state the customer ("Customer: Acme Corp (acme)"),
 *   tier, seats, term and region; status defaults to active, modules and named users to none.
 *
 * Pure: no I/O.
 */
import type { ClauseText } from './amendment';
import type { Contract } from './contract';
import type { JsonValue } from './json';
import type { ChangeSource } from './plan';

export type ExtractedField = 'customer' | 'status' | 'tier' | 'seats' | 'modules' | 'namedUsers' | 'term' | 'region';

export interface Extraction {
  field: ExtractedField;
  value: JsonValue;
  ref: string;
  span: string;
  /** Spans of single items (named users by email), for precise provenance. */
  items?: Record<string, string>;
}

export interface ClauseProblem {
  ref: string;
  message: string;
}

export interface ClauseReading {
  extractions: Extraction[];
  problems: ClauseProblem[];
}

// ---------------------------------------------------------------- numbers in words

const SMALL: Record<string, number> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
};
const SCALE: Record<string, number> = { hundred: 100, thousand: 1000 };

/** "twenty-five" -> 25, "one hundred and five" -> 105; undefined when a word is not a number. */
export function wordsToNumber(words: string): number | undefined {
  const tokens = words
    .toLowerCase()
    .split(/[\s-]+/)
    .filter((t) => t && t !== 'and');
  if (tokens.length === 0) return undefined;
  let total = 0;
  let current = 0;
  for (const t of tokens) {
    if (t in SMALL) current += SMALL[t]!;
    else if (t === 'hundred') current = (current || 1) * SCALE[t]!;
    else if (t === 'thousand') {
      total += (current || 1) * SCALE[t]!;
      current = 0;
    } else return undefined;
  }
  return total + current;
}

const NUMBER_WORD = `(?:${[...Object.keys(SMALL), ...Object.keys(SCALE)].join('|')})`;
const WORDS = `${NUMBER_WORD}(?:(?:[\\s-]+|\\s+and\\s+)${NUMBER_WORD})*`;
/** A count: "25", "twenty-five (25)", "twenty-five". Groups: digits | words, digits | words. */
const COUNT = `(?:(\\d[\\d,]*)|(${WORDS})\\s*\\((\\d[\\d,]*)\\)|(${WORDS}))`;
const SEAT_NOUN = `(?:named\\s+user\\s+seats|named\\s+users?|seats?|users?|licen[cs]es?)`;

function readCount(m: RegExpMatchArray, first: number): { value?: number; problem?: string } {
  const digits = m[first] ?? m[first + 2];
  const words = m[first + 1] ?? m[first + 3];
  const d = digits !== undefined ? Number(digits.replace(/,/g, '')) : undefined;
  const w = words !== undefined ? wordsToNumber(words) : undefined;
  if (d !== undefined && w !== undefined && d !== w) return { problem: `the words say ${w} but the figure says ${d}` };
  const value = d ?? w;
  return value === undefined ? { problem: 'no number' } : { value };
}

// ---------------------------------------------------------------- dates

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
const MONTH = `(?:${MONTHS.join('|')}|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\\.?`;
const DATE = `(\\d{4}-\\d{2}-\\d{2}|\\d{1,2}(?:st|nd|rd|th)?\\s+${MONTH},?\\s+\\d{4}|${MONTH}\\s+\\d{1,2}(?:st|nd|rd|th)?,?\\s+\\d{4})`;

/** "1 January 2025", "January 1st, 2025", "2025-01-01" -> "2025-01-01" (undefined if not a real date). */
export function readDate(text: string): string | undefined {
  const t = text.trim().toLowerCase().replace(/,/g, '');
  let y: number, mo: number, d: number;
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (m) [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  else if ((m = /^(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?\s+(\d{4})$/.exec(t)))
    [d, mo, y] = [Number(m[1]), monthIndex(m[2]!), Number(m[3])];
  else if ((m = /^([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?\s+(\d{4})$/.exec(t)))
    [mo, d, y] = [monthIndex(m[1]!), Number(m[2]), Number(m[3])];
  else return undefined;
  const days = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1]!) return undefined;
  return `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

function monthIndex(word: string): number {
  return MONTHS.findIndex((m) => m.startsWith(word.slice(0, 3))) + 1;
}

// ---------------------------------------------------------------- vocabularies

const ROLE_WORDS: Array<[RegExp, 'admin' | 'member' | 'viewer']> = [
  [/^(?:admin|administrator|account\s+administrator|owner)s?$/i, 'admin'],
  [/^(?:member|user|standard\s+user|editor|contributor)s?$/i, 'member'],
  [/^(?:viewer|read[\s-]?only(?:\s+user)?|reader|observer)s?$/i, 'viewer'],
];

const STATUS_WORDS: Record<string, 'active' | 'suspended' | 'terminated'> = {
  active: 'active',
  reinstated: 'active',
  reactivated: 'active',
  resumed: 'active',
  'in force': 'active',
  suspended: 'suspended',
  terminated: 'terminated',
  cancelled: 'terminated',
  canceled: 'terminated',
};

const REGION_WORDS: Record<string, string> = {
  'european union': 'eu',
  europe: 'eu',
  eu: 'eu',
  'united states': 'us',
  'united states of america': 'us',
  usa: 'us',
  us: 'us',
  'united kingdom': 'uk',
  uk: 'uk',
  'asia pacific': 'apac',
  apac: 'apac',
};

const slug = (s: string): string =>
  s
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

// ---------------------------------------------------------------- extractors

type Extractor = (clause: ClauseText, out: Extraction[], problems: ClauseProblem[]) => void;

const customer: Extractor = (c, out) => {
  const m = /\bCustomer\s*:\s*([^()\n]+?)\s*\(\s*([a-z0-9][a-z0-9-]{0,39})\s*\)/.exec(c.text);
  if (m) out.push({ field: 'customer', value: { id: m[2]!, name: m[1]!.trim() }, ref: c.ref, span: m[0] });
};

const status: Extractor = (c, out, problems) => {
  const words = Object.keys(STATUS_WORDS).join('|');
  const m =
    new RegExp(`\\bstatus\\s*:\\s*([A-Za-z][A-Za-z ]*?)\\s*(?:[.;\\n]|$)`, 'i').exec(c.text) ??
    new RegExp(
      `\\b(?:agreement|contract|subscription|services?)\\s+(?:is|are|shall\\s+be|will\\s+be)\\s+(?:hereby\\s+)?(${words})\\b`,
      'i',
    ).exec(c.text);
  if (!m) return;
  const value = STATUS_WORDS[m[1]!.toLowerCase()];
  if (value) out.push({ field: 'status', value, ref: c.ref, span: m[0] });
  else
    problems.push({
      ref: c.ref,
      message: `cannot read the status "${m[1]}" (expected active, suspended or terminated) in "${m[0]}"`,
    });
};

const tier: Extractor = (c, out) => {
  const m =
    /\b(?:subscription\s+|service\s+)?tier\s*:\s*([A-Za-z][\w-]*)/i.exec(c.text) ??
    /\bthe\s+([A-Z][A-Za-z]+)\s+(?:tier|plan|edition)\b/.exec(c.text);
  if (m) out.push({ field: 'tier', value: m[1]!.toLowerCase(), ref: c.ref, span: m[0] });
};

const seats: Extractor = (c, out, problems) => {
  const patterns = [
    new RegExp(
      `\\b(?:up\\s+to|a\\s+maximum\\s+of|no\\s+more\\s+than|at\\s+most)\\s+${COUNT}\\s+(?:\\w+\\s+)??${SEAT_NOUN}`,
      'i',
    ),
    new RegExp(`\\b(?:number\\s+of\\s+)?(?:licensed\\s+|named\\s+user\\s+)?seats\\s*:\\s*${COUNT}`, 'i'),
    new RegExp(`\\b${COUNT}\\s+(?:licensed\\s+)?seats\\b`, 'i'),
  ];
  for (const re of patterns) {
    const m = re.exec(c.text);
    if (!m) continue;
    const n = readCount(m, 1);
    if (n.value !== undefined) out.push({ field: 'seats', value: n.value, ref: c.ref, span: m[0] });
    else problems.push({ ref: c.ref, message: `cannot read the number of seats in "${m[0]}": ${n.problem}` });
    return;
  }
  if (/\bseats?\b/i.test(c.heading))
    problems.push({ ref: c.ref, message: 'a seats clause, but no number of seats could be read from it' });
};

const modules: Extractor = (c, out) => {
  const m =
    /\b(?:licensed\s+)?modules?\s*:\s*([^\n.;]+)/i.exec(c.text) ??
    /\blicensed\s+(?:to\s+use\s+|for\s+)?(?:the\s+)?((?:[A-Z][\w-]*)(?:(?:\s*,\s*|\s+and\s+|\s*&\s*)[A-Z][\w-]*)*)\s+modules?\b/.exec(
      c.text,
    );
  if (!m) return;
  const list = m[1]!.trim();
  const names = /^(?:none|no modules?)$/i.test(list)
    ? []
    : list
        .split(/\s*,\s*|\s+and\s+|\s*&\s*/i)
        .map(slug)
        .filter(Boolean);
  out.push({ field: 'modules', value: [...new Set(names)].sort(), ref: c.ref, span: m[0] });
};

const USER_LINE =
  /^\s*(?:[-*•]\s*|\d+[.)]\s*|\([a-z0-9]+\)\s*)?([^()<>\n]+?)\s*[(<]\s*([^\s()<>@]+@[^\s()<>]+?)\s*[)>]\s*(?:[–—:,]|-{1,2})\s*(.+?)\s*[.;]?\s*$/;

const namedUsers: Extractor = (c, out, problems) => {
  const isUserClause = /named\s+users?/i.test(c.heading) || /named\s+users?\s*(?:are|:)/i.test(c.text);
  const users: Array<{ email: string; name: string; role: string }> = [];
  const items: Record<string, string> = {};
  const spans: string[] = [];
  let lines = 0;
  for (const line of c.text.split(/\r?\n/)) {
    if (!line.includes('@')) continue;
    lines++;
    const m = USER_LINE.exec(line);
    if (!m) {
      problems.push({ ref: c.ref, message: `cannot read a named user (name (email) – role) from "${line.trim()}"` });
      continue;
    }
    const roleWord = m[3]!.trim();
    const role = ROLE_WORDS.find(([re]) => re.test(roleWord))?.[1];
    if (!role) {
      problems.push({
        ref: c.ref,
        message: `unknown role "${roleWord}" for ${m[2]} (expected Administrator, Member or Viewer)`,
      });
      continue;
    }
    const email = m[2]!.toLowerCase();
    users.push({ email, name: m[1]!.trim(), role });
    items[email] = line.trim();
    spans.push(line.trim());
  }
  const none = /\bno\s+named\s+users\b|named\s+users\s*:\s*none\b/i.exec(c.text);
  if (users.length > 0) out.push({ field: 'namedUsers', value: users, ref: c.ref, span: spans.join('\n'), items });
  else if (none) out.push({ field: 'namedUsers', value: [], ref: c.ref, span: none[0] });
  else if (lines === 0 && isUserClause && /named\s+users?/i.test(c.heading))
    problems.push({
      ref: c.ref,
      message: 'a named-users clause, but no named user (name (email) – role) could be read from it',
    });
};

const term: Extractor = (c, out, problems) => {
  if (!/\bterm\b/i.test(c.heading) && !/\bterm\b/i.test(c.text)) return;
  const range = new RegExp(`\\bterm\\s*:\\s*${DATE}(?:\\s*(?:to|until|through|–|—|-)\\s*${DATE})?`, 'i').exec(c.text);
  const startM =
    range ??
    new RegExp(
      `\\b(?:commenc\\w*|start\\w*|begin\\w*|effective)\\s+(?:on\\s+|from\\s+|as\\s+of\\s+)?${DATE}`,
      'i',
    ).exec(c.text);
  const endM = range?.[2]
    ? range
    : new RegExp(`\\b(?:end\\w*|expir\\w*|until|through)\\s+(?:on\\s+)?${DATE}`, 'i').exec(c.text);
  if (!startM) {
    if (/\bterm\b/i.test(c.heading))
      problems.push({ ref: c.ref, message: 'a term clause, but no start date could be read from it' });
    return;
  }
  const start = readDate(startM[1]!);
  const endText = range?.[2] ?? (endM && endM !== range ? endM[1] : undefined);
  const end = endText !== undefined ? readDate(endText) : undefined;
  if (!start || (endText !== undefined && !end)) {
    problems.push({
      ref: c.ref,
      message: `cannot read the term dates in "${startM[0]}${endM && endM !== startM ? ` … ${endM[0]}` : ''}"`,
    });
    return;
  }
  const span = endM && endM !== startM ? `${startM[0]} … ${endM[0]}` : startM[0];
  out.push({ field: 'term', value: end ? { start, end } : { start }, ref: c.ref, span });
};

const region: Extractor = (c, out, problems) => {
  const m =
    /\b(?:region|data\s+residency|hosting\s+region)\s*:\s*([A-Za-z][A-Za-z ]*?)\s*(?:[.;\n(]|$)/i.exec(c.text) ??
    /\b(?:hosted|stored|processed|resides?)\s+(?:exclusively\s+|solely\s+|only\s+)?(?:with)?in\s+the\s+([A-Z][A-Za-z]*(?:\s+[A-Z][A-Za-z]*)*)(?:\s+region)?\b/.exec(
      c.text,
    );
  if (!m) return;
  const word = m[1]!.trim().toLowerCase();
  const value = REGION_WORDS[word] ?? (/^[a-z]{2,5}(?:-[a-z0-9]+)*$/.test(word) ? word : undefined);
  if (value) out.push({ field: 'region', value, ref: c.ref, span: m[0] });
  else problems.push({ ref: c.ref, message: `cannot read the region "${m[1]}" in "${m[0]}"` });
};

const EXTRACTORS: Extractor[] = [customer, status, tier, seats, modules, namedUsers, term, region];

/** Read every clause with every extractor; report what cannot be read and disagreements. */
export function readClauses(clauses: readonly ClauseText[]): ClauseReading {
  const extractions: Extraction[] = [];
  const problems: ClauseProblem[] = [];
  for (const c of clauses) {
    const found: Extraction[] = [];
    const before = problems.length;
    for (const x of EXTRACTORS) x(c, found, problems);
    if (found.length === 0 && problems.length === before) {
      problems.push({
        ref: c.ref,
        message: `no clause extractor could read clause ${c.ref}${c.heading ? ` (${c.heading})` : ''}: nothing about customer, status, tier, seats, modules, named users, term or region`,
      });
    }
    extractions.push(...found);
  }
  const byField = new Map<ExtractedField, Extraction>();
  for (const e of extractions) {
    const prior = byField.get(e.field);
    if (prior && JSON.stringify(prior.value) !== JSON.stringify(e.value)) {
      problems.push({ ref: e.ref, message: `clauses ${prior.ref} and ${e.ref} disagree on ${e.field}` });
    }
    byField.set(e.field, prior ?? e);
  }
  return { extractions: [...byField.values()], problems };
}

const REQUIRED_FOR_BASELINE: ExtractedField[] = ['customer', 'tier', 'seats', 'term', 'region'];

/**
 * The contract the clauses describe, on top of `base` (the applied contract; null for a
 * baseline), and where each part came from: `sources` by change path prefix
 * (`seats`, `namedUsers[ann@x.com]`, `namedUsers`, `modules`, `term` ...).
 */
export function contractFromClauses(
  base: Contract | null,
  clauses: readonly ClauseText[],
): { draft: unknown; problems: ClauseProblem[]; sources: Map<string, ChangeSource> } {
  const { extractions, problems } = readClauses(clauses);
  const sources = new Map<string, ChangeSource>();
  const draft: Record<string, unknown> = base
    ? (JSON.parse(JSON.stringify(base)) as Record<string, unknown>)
    : { status: 'active', modules: [], namedUsers: [], custom: {} };
  for (const e of extractions) {
    draft[e.field] = e.value;
    sources.set(e.field, { ref: e.ref, span: e.span });
    for (const [key, span] of Object.entries(e.items ?? {})) sources.set(`${e.field}[${key}]`, { ref: e.ref, span });
  }
  if (!base) {
    const missing = REQUIRED_FOR_BASELINE.filter((f) => !extractions.some((e) => e.field === f));
    if (missing.length > 0) {
      problems.push({
        ref: '(baseline)',
        message: `a baseline given as clauses must state ${missing.join(', ')} (e.g. "Customer: Acme Corp (acme)", "Tier: Enterprise", "up to five (5) Named Users", "The Term commences on 1 January 2025", "Region: EU")`,
      });
    }
  }
  return { draft, problems, sources };
}

/** The source of a change path: the item's own span when known, else its clause's. */
export function sourceFor(sources: Map<string, ChangeSource>, path: string, clause: string): ChangeSource | undefined {
  const bracket = path.indexOf(']');
  return (bracket >= 0 ? sources.get(path.slice(0, bracket + 1)) : undefined) ?? sources.get(clause);
}
