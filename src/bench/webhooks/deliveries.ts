/**
 * Webhook deliveries as a contract system makes them (Standard Webhooks, the `clm` source of
 * examples/webhook/sources.yaml): per contract a baseline and a row of amendments (seat changes,
 * and now and then a named user added), signed with the source's secret; then the order a real
 * sender produces: at least once (a share of redeliveries, same id and body, a new timestamp and
 * signature) and out of order (a share of events sent before their predecessor).
 */
import { createHmac, randomBytes } from 'node:crypto';

/** One contract system event (its body is built when sent, so a redelivery has the same id and bytes). */
export interface WebhookEvent {
  id: string;
  contractId: string;
  amendmentId: string;
  sequence: number;
  body: string;
}

export interface DeliveryPlan {
  events: WebhookEvent[];
  /** The order of sending: indexes into `events`, with redeliveries. */
  order: number[];
  /** What each contract names at the end: email -> role. */
  finalUsers: Map<string, Map<string, 'member' | 'viewer'>>;
  duplicates: number;
  outOfOrder: number;
}

export interface PlanOptions {
  contracts: number;
  /** Amendments per contract, the baseline included. */
  amendments: number;
  duplicateRate: number;
  outOfOrderRate: number;
  /** A seeded random source in [0, 1). */
  random: () => number;
  /** Makes customer ids unique per run. */
  tag?: string;
}

/** Deterministic pseudo-random numbers (mulberry32) from a seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const prop = (type: string, value: unknown) => ({ type, value });
const ROLE = { member: 'Member', viewer: 'Viewer' } as const;

export function planDeliveries(o: PlanOptions): DeliveryPlan {
  const tag = o.tag ?? randomBytes(3).toString('hex');
  const events: WebhookEvent[] = [];
  const finalUsers = new Map<string, Map<string, 'member' | 'viewer'>>();
  const perContract: number[][] = [];
  for (let c = 0; c < o.contracts; c++) {
    const slug = `dlv${c}-${tag}`;
    const contractId = `${slug}-msa`;
    const users = new Map<string, 'member' | 'viewer'>([
      [`ann@${slug}.test`, 'member'],
      [`ben@${slug}.test`, 'viewer'],
    ]);
    const table = () =>
      [...users].map(([email, role]) => ({ Email: email, 'Full Name': email.split('@')[0]!, Role: ROLE[role] }));
    const mine: number[] = [];
    for (let seq = 1; seq <= o.amendments; seq++) {
      const amendmentId = seq === 1 ? contractId : `${contractId}-${String(seq).padStart(3, '0')}`;
      let data: Record<string, unknown>;
      if (seq === 1) {
        data = {
          id: contractId,
          recordType: 'contract',
          properties: {
            customerSlug: prop('string', slug),
            counterpartyName: prop('string', `Customer ${slug}`),
            contractStatus: prop('string', 'Active'),
            subscriptionTier: prop('string', 'Professional'),
            licensedSeats: prop('number', 100),
            licensedModules: prop('array', [prop('string', 'Analytics')]),
            namedUsers: prop('array', table()),
            startDate: prop('date', '2026-01-01T00:00:00Z'),
            dataResidency: prop('string', 'EU'),
          },
        };
      } else {
        // Every fifth amendment adds a named user (the whole table, as CLM systems send it); the rest change seats.
        if (seq % 5 === 0) users.set(`u${seq}@${slug}.test`, seq % 10 === 0 ? 'viewer' : 'member');
        const properties: Record<string, unknown> = { amendmentNumber: prop('number', seq) };
        if (seq % 5 === 0) properties['namedUsers'] = prop('array', table());
        else properties['licensedSeats'] = prop('number', 100 + seq);
        data = {
          id: amendmentId,
          recordType: 'amendment',
          links: { parent: { id: contractId, type: 'contract' } },
          properties,
        };
      }
      const type = seq === 1 ? 'contract.created' : 'contract.amended';
      mine.push(events.length);
      events.push({
        id: `evt_${amendmentId}`,
        contractId,
        amendmentId,
        sequence: seq,
        body: JSON.stringify({ type, timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(), data }),
      });
    }
    finalUsers.set(contractId, users);
    perContract.push(mine);
  }

  // Contracts interleaved, each in its own order; then some events swapped with their successor (out of order).
  const order: number[] = [];
  for (let k = 0; k < o.amendments; k++)
    for (const mine of perContract) if (mine[k] !== undefined) order.push(mine[k]!);
  let outOfOrder = 0;
  const wanted = Math.round(events.length * o.outOfOrderRate);
  for (let tries = 0; outOfOrder < wanted && tries < events.length * 20; tries++) {
    const i = Math.floor(o.random() * (order.length - 1));
    const a = events[order[i]!]!;
    const j = order.findIndex((x, k) => k > i && events[x]!.contractId === a.contractId);
    if (j < 0 || events[order[j]!]!.sequence !== a.sequence + 1) continue;
    [order[i], order[j]] = [order[j]!, order[i]!];
    outOfOrder++;
  }
  // Redeliveries: a share of all deliveries repeats an event already sent (at a random later point).
  const total = Math.round(events.length / (1 - o.duplicateRate));
  const duplicates = total - events.length;
  for (let d = 0; d < duplicates; d++) {
    const at = 1 + Math.floor(o.random() * order.length);
    const earlier = order[Math.floor(o.random() * at)]!;
    order.splice(at, 0, earlier);
  }
  return { events, order, finalUsers, duplicates, outOfOrder };
}

/** A Standard Webhooks `whsec_` secret. */
export function newStandardSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The headers of one delivery (signed now). */
export function signedHeaders(secret: string, e: WebhookEvent, now = new Date()): Record<string, string> {
  const ts = String(Math.floor(now.getTime() / 1000));
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const sig = createHmac('sha256', key).update(`${e.id}.${ts}.${e.body}`).digest('base64');
  return {
    'content-type': 'application/json',
    'webhook-id': e.id,
    'webhook-timestamp': ts,
    'webhook-signature': `v1,${sig}`,
  };
}
