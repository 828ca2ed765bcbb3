/**
 * Send a delivery plan (./deliveries.ts) to a running `amendctl serve` as `senders` concurrent
 * senders, then check what a contract system needs to be true: every event acknowledged, every
 * amendment final with exactly one workflow, and the targets holding what the contracts say
 * (read back with clients of this module's own: pg and plain SCIM requests, not the connectors).
 * Measures acknowledgement latency and event-to-workflow-start latency.
 */
import { Client as PgClient, type ClientConfig } from 'pg';
import type { AmendctlClient } from '../../client';
import { AMENDMENT_TYPES_QUERY, FINAL_STATUSES } from '../../workflows/definitions';
import { pool, quantile, sleep } from '../e2e/measure';
import { type DeliveryPlan, signedHeaders } from './deliveries';

export interface DeliveryRunOptions {
  /** The API's base URL (`http://127.0.0.1:8080`). */
  base: string;
  source: string;
  secret: string;
  plan: DeliveryPlan;
  senders: number;
  client: AmendctlClient;
  /**
   * Deliveries per second offered, open loop: delivery k is due at k/rate seconds and its latency
   * counts from then, so a server that falls behind shows it (no coordinated omission).
   * Unset: every sender sends its next delivery as soon as the last is answered (a burst).
   */
  rate?: number;
  progress?: (line: string) => void;
}

export interface DeliveryRunResult {
  deliveries: number;
  unique: number;
  duplicates: number;
  outOfOrder: number;
  /** Answers by status code (a sender retries a 503 after Retry-After; every try is counted). */
  statuses: Record<string, number>;
  /** Deliveries never acknowledged with a 2xx (after retries). */
  unacknowledged: number;
  ackMs: number[];
  /** Per unique event: its first send to its workflow's start (the server's clock is this machine's). */
  startMs: number[];
  /** Amendments not final at the end (or never started). */
  lost: number;
  /** Amendments with other than exactly one workflow run. */
  notOneWorkflow: number;
  final: Record<string, number>;
  seconds: number;
}

const SEND_RETRIES = 5;

export async function sendDeliveries(o: DeliveryRunOptions): Promise<DeliveryRunResult> {
  const { plan } = o;
  const statuses: Record<string, number> = {};
  const ackMs: number[] = [];
  const firstSent = new Map<string, number>();
  let unacknowledged = 0;
  let sent = 0;
  const t0 = Date.now();
  const ticker = setInterval(() => o.progress?.(`  sent ${sent}/${plan.order.length} deliveries`), 5_000);
  try {
    await pool(plan.order, o.senders, async (idx, k) => {
      const e = plan.events[idx]!;
      const due = o.rate ? t0 + (k * 1000) / o.rate : undefined;
      if (due !== undefined && due > Date.now()) await sleep(due - Date.now());
      for (let attempt = 1; ; attempt++) {
        const at = attempt === 1 && due !== undefined ? due : Date.now();
        if (!firstSent.has(e.amendmentId)) firstSent.set(e.amendmentId, at);
        const res = await fetch(`${o.base}/v1/webhooks/${o.source}`, {
          method: 'POST',
          headers: signedHeaders(o.secret, e),
          body: e.body,
        }).catch(() => undefined);
        const status = res ? String(res.status) : 'network';
        statuses[status] = (statuses[status] ?? 0) + 1;
        await res?.arrayBuffer();
        if (res && res.status >= 200 && res.status < 300) {
          ackMs.push(Date.now() - at);
          break;
        }
        if (attempt >= SEND_RETRIES || (res && res.status !== 503)) {
          unacknowledged++;
          break;
        }
        await sleep(Number(res?.headers.get('retry-after') ?? 1) * 1000);
      }
      sent++;
    });
  } finally {
    clearInterval(ticker);
  }
  o.progress?.(
    `  sent ${plan.order.length} deliveries in ${((Date.now() - t0) / 1000).toFixed(1)} s; waiting for ${plan.events.length} amendments to be final`,
  );

  // Every amendment final (each contract's in sequence order, so its last one is final last).
  const final: Record<string, number> = {};
  let lost = 0;
  let done = 0;
  const deadline = Date.now() + Math.max(120_000, plan.events.length * 1_000);
  await pool(plan.events, 16, async (e) => {
    for (;;) {
      const v = await o.client.getStatus(e.amendmentId).catch(() => undefined);
      if (v && FINAL_STATUSES.has(v.status)) {
        final[v.status] = (final[v.status] ?? 0) + 1;
        break;
      }
      if (Date.now() > deadline) {
        lost++;
        break;
      }
      await sleep(250);
    }
    if (++done % 100 === 0) o.progress?.(`  ${done}/${plan.events.length} amendments final`);
  });

  // Exactly one workflow per amendment, and when each started (visibility, per contract).
  o.progress?.(`  checking one workflow per amendment (visibility) ...`);
  const startMs: number[] = [];
  let notOneWorkflow = 0;
  const contracts = [...new Set(plan.events.map((e) => e.contractId))];
  await pool(contracts, 4, async (contractId) => {
    const want = plan.events.filter((e) => e.contractId === contractId);
    let runs = new Map<string, Date[]>();
    for (let tries = 0; tries < 40; tries++) {
      runs = new Map();
      for await (const w of o.client.client.workflow.list({
        query: `ContractId = '${contractId}' AND (${AMENDMENT_TYPES_QUERY})`,
      })) {
        runs.set(w.workflowId, [...(runs.get(w.workflowId) ?? []), w.startTime]);
      }
      if (want.every((e) => runs.has(`amendment-${e.amendmentId}`))) break;
      await sleep(250); // visibility is eventually consistent
    }
    for (const e of want) {
      const starts = runs.get(`amendment-${e.amendmentId}`) ?? [];
      if (starts.length !== 1) notOneWorkflow++;
      const first = firstSent.get(e.amendmentId);
      if (starts[0] && first !== undefined) startMs.push(Math.max(0, starts[0].getTime() - first));
    }
  });
  return {
    deliveries: plan.order.length,
    unique: plan.events.length,
    duplicates: plan.duplicates,
    outOfOrder: plan.outOfOrder,
    statuses,
    unacknowledged,
    ackMs,
    startMs,
    lost,
    notOneWorkflow,
    final,
    seconds: (Date.now() - t0) / 1000,
  };
}

export interface TargetReaders {
  pg: ClientConfig;
  scim: { url: string; token: string };
}

/** Accounts that differ from what the contracts name: warehouse login and role, identity provider user active. */
export async function wrongAccounts(plan: DeliveryPlan, r: TargetReaders): Promise<string[]> {
  const wrong: string[] = [];
  const pg = new PgClient(r.pg);
  await pg.connect();
  try {
    for (const [contractId, users] of plan.finalUsers) {
      const domain = `${contractId.replace(/-msa$/, '')}.test`;
      const rows = await pg.query<{ rolname: string; rolcanlogin: boolean; member_of: string[] | null }>(
        `SELECT u.rolname, u.rolcanlogin, array_remove(array_agg(r.rolname::text ORDER BY r.rolname), NULL) AS member_of
           FROM pg_roles u LEFT JOIN pg_auth_members m ON m.member = u.oid LEFT JOIN pg_roles r ON r.oid = m.roleid
          WHERE u.rolname LIKE $1 GROUP BY u.rolname, u.rolcanlogin`,
        [`%@${domain}`],
      );
      const have = new Map(rows.rows.map((x) => [x.rolname, x]));
      for (const [email, role] of users) {
        const row = have.get(email);
        const want = role === 'member' ? 'app_write' : 'app_read';
        if (!row || !row.rolcanlogin || JSON.stringify(row.member_of) !== JSON.stringify([want]))
          wrong.push(
            `warehouse ${email}: ${row ? `login=${row.rolcanlogin} ${JSON.stringify(row.member_of)}` : 'missing'}, expected login and ${want}`,
          );
      }
      for (const name of have.keys()) if (!users.has(name)) wrong.push(`warehouse ${name}: not named by ${contractId}`);
      for (const email of users.keys()) {
        const res = await fetch(
          `${r.scim.url}/Users?filter=${encodeURIComponent(`userName eq ${JSON.stringify(email)}`)}`,
          { headers: { authorization: `Bearer ${r.scim.token}` } },
        );
        const list = ((await res.json()) as { Resources?: Array<{ active?: boolean }> }).Resources ?? [];
        if (list.length !== 1 || list[0]!.active === false)
          wrong.push(`idp ${email}: ${list.length} users${list.length === 1 ? ', inactive' : ''}, expected one active`);
      }
    }
  } finally {
    await pg.end();
  }
  return wrong;
}

export const ms = (v: number[], q: number): number | null => {
  const x = quantile(v, q);
  return x === null ? null : Math.round(x);
};
