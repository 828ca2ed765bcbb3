/** The bench's figures: each with its floor and ratio, a target where the issue sets one, printed as a table and saved as JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type CaseId = 'a' | 'b' | 'c' | 'd' | 'e' | 'f';
export const CASES: readonly CaseId[] = ['a', 'b', 'c', 'd', 'e', 'f'];

export type Unit = 'ms' | 's' | '/s' | 'events' | 'bytes' | 'MB' | 'KB' | 'x';

export interface Target {
  text: string;
  met: boolean | null;
}

export interface Figure {
  case: CaseId;
  key: string;
  label: string;
  unit: Unit;
  /** The bare-Temporal floor, measured in the same run (or extrapolated / a sample: floorNote says which). */
  floor: number | null;
  floorNote?: string;
  /** amendctl's figure; null when it could not be measured (error says why). */
  value: number | null;
  error?: string;
  /** Shown beside the value, e.g. "failed run" for a history of an amendment that did not complete. */
  valueNote?: string;
  /** value / floor. */
  ratio: number | null;
  target?: Target;
  /** How many samples the figure is made of. */
  samples?: number;
  note?: string;
}

export function figure(f: Omit<Figure, 'ratio'> & { ratio?: number | null }): Figure {
  const ratio =
    f.ratio !== undefined ? f.ratio : f.value !== null && f.floor !== null && f.floor > 0 ? f.value / f.floor : null;
  return { ...f, ratio };
}

/** A target on the figure itself ("< 1000 ms") or on its ratio to the floor ("<= 1.0x floor"). */
export function target(text: string, met: boolean | null | undefined): Target {
  return { text, met: met ?? null };
}

const group = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function formatValue(v: number | null, unit: Unit): string {
  if (v === null || !Number.isFinite(v)) return '-';
  switch (unit) {
    case 'ms':
      return `${group(v)} ms`;
    case 's':
      return `${group(v, v < 100 ? 1 : 0)} s`;
    case '/s':
      return `${group(v, 2)}/s`;
    case 'events':
      return group(v);
    case 'bytes':
      return `${group(v)} B`;
    case 'MB':
      return `${group(v, 1)} MB`;
    case 'KB':
      return `${group(v)} KB`;
    case 'x':
      return `${group(v, 2)}x`;
  }
}

/** The table a person reads: one line per figure; failures and notes as numbered footnotes under it. */
export function table(figures: Figure[]): string {
  const notes: string[] = [];
  const footnote = (text: string): string => {
    notes.push(text);
    return `[${notes.length}]`;
  };
  const rows = figures.map((f) => {
    const floor = `${formatValue(f.floor, f.unit)}${f.floorNote ? ` (${f.floorNote})` : ''}`;
    let value = f.value === null && f.error ? `FAILED ${footnote(f.error)}` : formatValue(f.value, f.unit);
    if (f.valueNote) value = `${value} (${f.valueNote})`;
    if (f.note) value = `${value} ${footnote(f.note)}`;
    const ratio = f.ratio === null ? '' : `${f.ratio.toFixed(2)}x`;
    const tgt = f.target ? `${f.target.text}: ${f.target.met === null ? '?' : f.target.met ? 'yes' : 'NO'}` : '';
    return [f.case, f.label, floor, value, ratio, tgt];
  });
  const head = ['', 'figure', 'floor (bare Temporal)', 'amendctl', 'ratio', 'target'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w)))];
  rows.forEach((r, i) => {
    if (i > 0 && figures[i]!.case !== figures[i - 1]!.case) out.push('');
    out.push(line(r));
  });
  if (notes.length > 0) out.push('', ...notes.map((n, i) => `[${i + 1}] ${n}`));
  return out.join('\n');
}

export function writeJson(file: string, data: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}
