/** Measuring helpers for the e2e bench: quantiles, bounded concurrency, history statistics, process RSS. */
import { readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { decodePayload } from '../../codec';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank quantile (q in 0..1) of unsorted values; null for none. */
export function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export const p50 = (v: number[]): number | null => quantile(v, 0.5);
export const p99 = (v: number[]): number | null => quantile(v, 0.99);

/** Run `work` over `items` with at most `concurrency` at a time; results in item order. Stops taking new items once `stop()` says so. */
export async function pool<T, R>(
  items: T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
  stop: () => boolean = () => false,
): Promise<Array<R | undefined>> {
  const out: Array<R | undefined> = new Array(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  return out;
}

/** `p`, or a rejection with `message` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    t = setTimeout(() => rej(new TimeoutError(message)), Math.max(0, ms));
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

export interface HistoryStats {
  workflowId: string;
  events: number;
  /** The largest single payload in the history, encoded (encrypted) as stored: data plus metadata bytes. */
  maxPayloadBytes: number;
  /** All payload bytes in the history. */
  payloadBytes: number;
  /** Events per type (attribute name without "EventAttributes"). */
  byType: Record<string, number>;
  /** Failure messages seen in the history (workflow task, activity, workflow failures, termination), last first, decoded where encoded. */
  failures: string[];
  /** Child workflows it started (their workflow ids). */
  children: string[];
}

type Obj = Record<string, unknown>;

function isPayload(v: unknown): v is { data?: Uint8Array; metadata?: Record<string, Uint8Array> } {
  if (!v || typeof v !== 'object') return false;
  const o = v as Obj;
  return (
    o.data instanceof Uint8Array &&
    (o.metadata === undefined || (typeof o.metadata === 'object' && o.metadata !== null))
  );
}

export function payloadSize(p: { data?: Uint8Array; metadata?: Record<string, Uint8Array> | null }): number {
  let n = p.data?.length ?? 0;
  for (const [k, v] of Object.entries(p.metadata ?? {})) n += k.length + (v?.length ?? 0);
  return n;
}

function walkPayloads(v: unknown, visit: (size: number) => void, depth = 0): void {
  if (!v || typeof v !== 'object' || depth > 40 || v instanceof Uint8Array) return;
  if (isPayload(v)) {
    visit(payloadSize(v));
    return;
  }
  for (const x of Array.isArray(v) ? v : Object.values(v as Obj)) walkPayloads(x, visit, depth + 1);
}

async function failureText(f: unknown, codec: PayloadCodec | undefined): Promise<string | undefined> {
  if (!f || typeof f !== 'object') return undefined;
  const failure = f as { message?: string; encodedAttributes?: unknown; cause?: unknown };
  let message = failure.message ?? '';
  if (failure.encodedAttributes && codec) {
    const decoded = (await decodePayload(codec, failure.encodedAttributes as never).catch(() => undefined)) as
      { message?: string } | undefined;
    if (decoded?.message) message = decoded.message;
  }
  const cause = await failureText(failure.cause, codec);
  return cause && cause !== message ? `${message}: ${cause}` : message || cause;
}

/** Statistics of one workflow's history (the current run), read with Temporal's client. */
export async function historyStats(client: Client, workflowId: string, codec?: PayloadCodec): Promise<HistoryStats> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const stats: HistoryStats = {
    workflowId,
    events: events.length,
    maxPayloadBytes: 0,
    payloadBytes: 0,
    byType: {},
    failures: [],
    children: [],
  };
  for (const e of events) {
    for (const [key, attrs] of Object.entries(e as Obj)) {
      if (!key.endsWith('EventAttributes') || !attrs) continue;
      const type = key.slice(0, -'EventAttributes'.length);
      stats.byType[type] = (stats.byType[type] ?? 0) + 1;
      walkPayloads(attrs, (size) => {
        stats.payloadBytes += size;
        if (size > stats.maxPayloadBytes) stats.maxPayloadBytes = size;
      });
      const a = attrs as Obj;
      if (type === 'childWorkflowExecutionStarted') {
        const id = (a.workflowExecution as { workflowId?: string } | undefined)?.workflowId;
        if (id) stats.children.push(id);
      }
      const text = a.failure
        ? await failureText(a.failure, codec)
        : type === 'workflowExecutionTerminated'
          ? `terminated: ${String(a.reason ?? '')}`
          : undefined;
      if (text) stats.failures.unshift(`${type}: ${text}`);
    }
  }
  return stats;
}

/** A workflow and its child workflows (recursively, bounded): events and payload bytes summed, the largest payload over all. */
export async function treeStats(
  client: Client,
  workflowId: string,
  codec?: PayloadCodec,
  limit = 500,
): Promise<HistoryStats & { workflows: number }> {
  const root = await historyStats(client, workflowId, codec);
  const out = { ...root, byType: { ...root.byType }, workflows: 1 };
  const queue = [...root.children];
  while (queue.length > 0 && out.workflows < limit) {
    const h = await historyStats(client, queue.shift()!, codec).catch(() => undefined);
    if (!h) continue;
    out.workflows++;
    out.events += h.events;
    out.payloadBytes += h.payloadBytes;
    out.maxPayloadBytes = Math.max(out.maxPayloadBytes, h.maxPayloadBytes);
    for (const [k, v] of Object.entries(h.byType)) out.byType[k] = (out.byType[k] ?? 0) + v;
    queue.push(...h.children);
  }
  return out;
}

export interface Rss {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size (VmHWM), bytes. */
  peak: number;
}

/** RSS of a process from /proc (Linux); undefined where that cannot be read. */
export function readRss(pid: number): Rss | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number =>
      Number(
        /^(\w+):\s+(\d+)\s+kB$/m.exec(status.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? NaN,
      ) * 1024;
    const rss = kb('VmRSS');
    const peak = kb('VmHWM');
    return Number.isFinite(rss) ? { rss, peak: Number.isFinite(peak) ? peak : rss } : undefined;
  } catch {
    return undefined;
  }
}

export const MB = 1024 * 1024;
