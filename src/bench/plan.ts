/**
 * npm run bench: planning throughput and latency (median, p95) for policies of 1,000 and
 * 10,000 rules against amendments of 1, 100 and 1,000 named users, and the ratio of
 * planning to a plain JSON.parse of the same amendment text. Not a test: it prints figures.
 *
 * The policies are the reference policy plus generated rules of the shapes real policies
 * grow: per-module group rules, per-custom-clause rules, per-VIP named-user rules. None of
 * the generated rules match the amendment, so the figures show what the index saves: a
 * planner that scanned every rule per change would grow with the policy size.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseAmendmentText } from '../domain/document';
import type { Contract } from '../domain/contract';
import { type AppliedState, planAmendment } from '../domain/planner';
import { type Ruleset, loadRuleset } from '../domain/rules';

const ROOT = resolve(__dirname, '..', '..');
const referenceText = readFileSync(join(ROOT, 'examples', 'reference', 'rules.yaml'), 'utf8');

function policy(total: number): Ruleset {
  const extra: string[] = [];
  const reference = 12;
  for (let i = 0; extra.length < total - reference; i++) {
    switch (i % 3) {
      case 0:
        extra.push(
          `  - { id: gen-module-${i}, on: { clause: modules, key: extra-${i} }, when: 'after.status == "active"', actions: [{ target: idp, action: joinGroup, forEach: after.namedUsers, as: u, subject: "{u.email}", group: "{customer}-extra-${i}" }] }`,
        );
        break;
      case 1:
        extra.push(
          `  - { id: gen-custom-${i}, on: { clause: custom, key: flag${i} }, when: 'change.after == true', actions: [{ target: warehouse, action: grantRole, forEach: after.namedUsers, as: u, subject: "{u.email}", role: "feature_${i}" }] }`,
        );
        break;
      default:
        extra.push(
          `  - { id: gen-vip-${i}, on: { clause: namedUsers, kind: added, key: "vip${i}@elsewhere.example" }, actions: [{ target: idp, action: joinGroup, subject: "{user.email}", group: "{customer}-vip" }] }`,
        );
    }
  }
  return loadRuleset(`${referenceText}\n${extra.join('\n')}\n`, `reference+${total - reference}`);
}

function applied(): AppliedState {
  const contract: Contract = {
    customer: { id: 'bench', name: 'Bench Corp' },
    status: 'active',
    tier: 'enterprise',
    seats: 5000,
    modules: ['analytics', 'billing', 'api'],
    namedUsers: [{ email: 'owner@bench.example', name: 'Owner', role: 'admin' }],
    term: { start: '2025-01-01' },
    region: 'eu',
    custom: {},
  };
  return { contract, sequence: 1, amendmentId: 'bench-001', previous: null };
}

function amendmentText(users: number): string {
  const roles = ['member', 'viewer', 'member'];
  return JSON.stringify({
    amendmentId: `bench-add-${users}`,
    contractId: 'bench-msa',
    sequence: 2,
    submittedBy: 'bench',
    changes: Array.from({ length: users }, (_, i) => ({
      op: 'add',
      path: 'namedUsers',
      value: { email: `user${i}@bench.example`, name: `User ${i}`, role: roles[i % 3] },
    })),
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function measure(f: () => unknown, minMs: number, minRuns: number): number[] {
  for (let i = 0; i < 3; i++) f(); // warm up
  (globalThis as { gc?: () => void }).gc?.();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || performance.now() - start < minMs) {
    const t0 = performance.now();
    f();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b);
}

const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);

function main(): void {
  const state = applied();
  console.log(`amendctl planning benchmark (node ${process.version}, ${process.arch})`);
  console.log('rules   users  ops    plan median  plan p95   plans/s  JSON.parse median  plan/parse');
  for (const total of [1000, 10000]) {
    const t0 = performance.now();
    const rules = policy(total);
    const load = performance.now() - t0;
    for (const users of [1, 100, 1000]) {
      const text = amendmentText(users);
      const amendment = parseAmendmentText(text, 'bench.json');
      const check = planAmendment(amendment, state, rules);
      if (check.violations.length > 0) throw new Error(`bench amendment invalid: ${check.violations[0]!.message}`);
      const plan = measure(() => planAmendment(amendment, state, rules), 1500, 20);
      const parse = measure(() => JSON.parse(text), 500, 50);
      const median = quantile(plan, 0.5);
      console.log(
        [
          String(total).padEnd(7),
          String(users).padEnd(6),
          String(check.operations.length).padEnd(6),
          fmt(median).padEnd(12),
          fmt(quantile(plan, 0.95)).padEnd(10),
          String(Math.round(1000 / median)).padEnd(8),
          fmt(quantile(parse, 0.5)).padEnd(18),
          `${(median / quantile(parse, 0.5)).toFixed(1)}x`,
        ].join(' '),
      );
    }
    console.log(`        (loading and compiling ${total} rules: ${fmt(load)}; index keys: ${rules.index.size})`);
  }
}

main();
