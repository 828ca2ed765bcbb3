import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import type { CliIO } from '../../src/cli/io';
import type { Plan } from '../../src/domain/plan';
import { ROOT, referenceRules, stateBefore } from './support/reference';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) };
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    const code = await main(argv, io);
    return { code, out, err };
  } finally {
    process.chdir(cwd);
  }
}

describe('amendctl plan / rules (in-process)', () => {
  it('plan prints per target what changes and what needs approval and why', async () => {
    const r = await run('plan', 'examples/reference/amendments/01-baseline.json');
    expect(r.code).toBe(0);
    expect(r.out).toContain('  idp:\n');
    expect(r.out).toContain('add alice@acme.com to group acme-admins   (risk: high)   [named-user-added]');
    expect(r.out).toContain('warehouse:\n');
    expect(r.out).toContain('approval: REQUIRED before anything changes');
    expect(r.out).toMatch(
      /grants admin to alice@acme\.com {3}\[rule admin-grant-needs-approval; changes namedUsers\[alice@acme\.com\]/,
    );
  });

  it('plan --json gives the same plan as data; the applied state is replayed from the story', async () => {
    const r = await run('plan', 'examples/reference/amendments/03-role-and-name.json', '--json');
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.out) as Plan;
    expect(plan.operations.map((o) => o.id)).toEqual([
      'idp:updateAttributes:bob@acme.com',
      'idp:leaveGroup:carol@acme.com:acme-viewers',
      'warehouse:revokeRole:carol@acme.com:app_read',
      'idp:joinGroup:carol@acme.com:acme-members',
      'warehouse:grantRole:carol@acme.com:app_write',
    ]);
    expect(plan.rulesetHash).toBe(referenceRules().hash);
    const text = await run('plan', 'examples/reference/amendments/03-role-and-name.json');
    for (const o of plan.operations) expect(text.out).toContain(o.description.replace(/^\w+: /, ''));
  });

  it('plan with --applied STATE_FILE (an AppliedState or a bare contract); clause refs show as the why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amendctl-plan-'));
    const state = stateBefore('02-add-dave-and-billing.json', referenceRules())!;
    writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
    writeFileSync(join(dir, 'contract.json'), JSON.stringify(state.contract));
    const a = await run(
      'plan',
      'examples/reference/forms/02-add-dave-and-billing.clauses.json',
      '--applied',
      join(dir, 'state.json'),
    );
    expect(a.code).toBe(0);
    expect(a.out).toContain('+ namedUsers[dave@acme.com]');
    expect(a.out).toContain('[clause 4.2: "4. Dave Davis (dave@acme.com) – Member"]');
    const b = await run(
      'plan',
      'examples/reference/forms/02-add-dave-and-billing.clauses.json',
      '--applied',
      join(dir, 'contract.json'),
      '--json',
    );
    expect((JSON.parse(b.out) as Plan).operations).toHaveLength(9);
  });

  it('plan exits 1 with the violation for an invalid amendment', async () => {
    const r = await run('plan', 'examples/reference/amendments/06-too-many-users.invalid.json');
    expect(r.code).toBe(1);
    expect(r.out).toContain('INVALID: the amendment is refused and nothing changes');
    expect(r.out).toContain('6 named users exceed the 5 seats the contract allows   [seats-cover-named-users]');
  });

  it('plan exits 2 for input errors, naming file, path and expectation, with no stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amendctl-plan-'));
    writeFileSync(
      join(dir, 'bad.json'),
      JSON.stringify({
        amendmentId: 'x',
        contractId: 'acme-msa',
        sequence: 2,
        submittedBy: 't',
        changes: [{ op: 'set', path: 'seats', value: 3 }],
        contract: {},
      }),
    );
    const r = await run('plan', join(dir, 'bad.json'));
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${join(dir, 'bad.json')}: contract`);
    expect(r.err).not.toMatch(/\n\s+at /);
    const missing = await run('plan', 'nope.json');
    expect(missing).toMatchObject({ code: 2, err: expect.stringContaining('nope.json: (root): no such file') });
    writeFileSync(
      join(dir, 'rules.yaml'),
      'version: 1\ntargets: [idp]\nrules:\n  - id: r1\n    when: "after.seats >"\n',
    );
    const rules = await run(
      'plan',
      'examples/reference/amendments/01-baseline.json',
      '--rules',
      join(dir, 'rules.yaml'),
    );
    expect(rules.code).toBe(2);
    expect(rules.err).toContain('rules[0].when: rule "r1": expected a CEL expression');
    expect((await run('plan')).code).toBe(2);
  });

  it('rules validate and rules test on the reference policy', async () => {
    const v = await run('rules', 'validate', 'examples/reference/rules.yaml');
    expect(v.code).toBe(0);
    expect(v.out).toContain(`sha256 ${referenceRules().hash}`);
    const t = await run('rules', 'test', 'examples/reference/rules.yaml', 'examples/reference/cases.yaml');
    expect(t.err).toBe('');
    expect(t.out).not.toContain('FAIL');
    expect(t.out).toMatch(/(\d+) passed, 0 failed/);
    expect(t.code).toBe(0);
  });

  it('rules test reports a failing case and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amendctl-cases-'));
    writeFileSync(
      join(dir, 'cases.yaml'),
      `cases:\n  - name: wrong on purpose\n    amendment: ${join(ROOT, 'examples/reference/amendments/01-baseline.json')}\n    expect: { approval: false, excludes: [idp:ensureAccount:alice@acme.com] }\n`,
    );
    const t = await run('rules', 'test', 'examples/reference/rules.yaml', join(dir, 'cases.yaml'));
    expect(t.code).toBe(1);
    expect(t.out).toContain('FAIL  wrong on purpose');
    expect(t.out).toContain('approval required, expected not required');
    expect(t.out).toContain('unexpected operation idp:ensureAccount:alice@acme.com');
  });
});
