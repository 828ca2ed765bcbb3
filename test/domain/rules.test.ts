import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAmendmentText } from '../../src/domain/document';
import { InputError } from '../../src/domain/errors';
import { canonicalJson } from '../../src/domain/json';
import { planAmendment } from '../../src/domain/planner';
import { loadRuleset } from '../../src/domain/rules';
import { REFERENCE, amendment, referenceRules, stateBefore } from './support/reference';

function inputError(f: () => unknown): InputError {
  try {
    f();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('expected an InputError');
}

const HEAD = 'version: 1\ntargets: [idp, warehouse]\n';

describe('rules language: refusing malformed rules with file, rule and path', () => {
  it.each([
    [
      `${HEAD}rules:\n  - id: r1\n    actions:\n      - { target: idp, action: joinGroup, subject: "{user.email}" }\n`,
      'rules[0].actions[0].group',
      'rule "r1": joinGroup needs "group"',
    ],
    [`${HEAD}rules:\n  - id: r1\n    when: after.status ==\n`, 'rules[0].when', 'rule "r1": expected a CEL expression'],
    [`${HEAD}rules:\n  - id: r2\n    when: usr.email == "x"\n`, 'rules[0].when', 'Unknown variable: usr'],
    [
      `${HEAD}rules:\n  - id: r3\n    actions:\n      - { target: ldap, action: deactivateAccount, subject: "{user.email}" }\n`,
      'rules[0].actions[0].target',
      'unknown target "ldap" (expected one of idp, warehouse)',
    ],
    [
      `${HEAD}rules:\n  - id: r4\n    actions:\n      - { target: idp, action: deleteAccount, subject: x }\n`,
      'rules[0].actions[0].action',
      'rule "r4": Invalid option',
    ],
    [`${HEAD}rules:\n  - id: r5\n    on: { clause: seat }\n`, 'rules[0].on', 'rule "r5"'],
    [
      `${HEAD}rules:\n  - id: r6\n    actions:\n      - { target: idp, action: joinGroup, subject: "{user.email", group: g }\n`,
      'rules[0].actions[0].subject',
      'unclosed "{"',
    ],
    [`${HEAD}rules:\n  - { id: dup }\n  - { id: dup }\n`, 'rules[1].id', 'duplicate rule id "dup"'],
    [
      `${HEAD}validations:\n  - { id: v1, when: "size(after.namedUsers) > ", message: m }\n`,
      'validations[0].when',
      'validation "v1": expected a CEL expression',
    ],
    [`version: 2\ntargets: [idp]\n`, 'version', 'expected 1'],
    [`${HEAD}rules:\n  - id: r7\n   bad indent: [\n`, 'line 5, column 1', 'Sequence item without - indicator'],
  ])('case %#', (text, path, message) => {
    expect(message).not.toBe(''); // every case names what it expects said
    const err = inputError(() => loadRuleset(text, 'policy.yaml'));
    const issue = err.issues.find((i) => i.path.startsWith(path) && i.message.includes(message));
    expect({ issue, issues: err.issues }).toEqual({
      issue: { file: 'policy.yaml', path: expect.stringMatching(/./), message: expect.stringContaining(message) },
      issues: err.issues,
    });
    expect(err.message).toContain(`policy.yaml: ${issue!.path}: ${issue!.message}`);
  });

  it('a malformed amendment names the file, the path and what was expected', () => {
    const err = inputError(() =>
      parseAmendmentText(
        '{"amendmentId":"a1","contractId":"c","sequence":0,"submittedBy":"x","changes":[{"op":"replace","path":"seats"}]}',
        'bad.json',
      ),
    );
    expect(err.issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: 'bad.json', path: 'sequence' }),
        expect.objectContaining({ file: 'bad.json', path: 'changes[0].op', message: expect.stringContaining('"set"') }),
      ]),
    );
  });

  it('a changes amendment that does not fit the contract is a violation naming the change', () => {
    const rules = referenceRules();
    const applied = stateBefore('02-add-dave-and-billing.json', rules);
    const plan = planAmendment(
      amendment({
        sequence: 2,
        changes: [
          { op: 'remove', path: 'namedUsers', match: { email: 'zoe@acme.com' } },
          { op: 'set', path: 'sits', value: 3 },
          { op: 'add', path: 'namedUsers', value: { email: 'bob@acme.com', name: 'Bob', role: 'member' } },
        ],
      }),
      applied,
      rules,
    );
    expect(plan.violations.map((v) => v.message)).toEqual([
      'changes[0]: remove namedUsers: no named user matches {"email":"zoe@acme.com"}',
      'changes[1]: set sits: unknown clause (expected customer, status, tier, seats, modules, namedUsers, term, region or custom.<name>)',
      'changes[2]: add namedUsers: bob@acme.com is already a named user',
    ]);
    const badRole = planAmendment(
      amendment({
        sequence: 2,
        changes: [{ op: 'set', path: 'namedUsers.role', match: { email: 'bob@acme.com' }, value: 'owner' }],
      }),
      applied,
      rules,
    );
    expect(badRole.violations[0]!.message).toMatch(/^the amended contract: namedUsers\[\d\]\.role: /);
  });

  it('hash: the canonical content decides, not comments or key order', () => {
    const text = readFileSync(join(REFERENCE, 'rules.yaml'), 'utf8');
    const a = loadRuleset(text, 'a.yaml');
    const b = loadRuleset(
      `# another comment\n${text.replace('version: 1\n', '').replace('targets: [idp, warehouse]', 'targets: [idp, warehouse]\nversion: 1')}`,
      'b.yaml',
    );
    expect(b.hash).toBe(a.hash);
    expect(loadRuleset(text.replace('app_admin', 'app_owner'), 'c.yaml').hash).not.toBe(a.hash);
  });

  it('hash: the SHA-256 of the canonical JSON, as hex, with non-ASCII text encoded as UTF-8', () => {
    // Plans and audit records of running and past amendments carry this value: it must not change.
    const text =
      'version: 1\ntargets: [idp]\nvalidations:\n  - id: seat-limit\n    when: after.seats > 1000\n    message: "Größe – 日本 🎉 seats {after.seats}"\n';
    const rs = loadRuleset(text, 'v.yaml');
    expect(rs.hash).toBe('37f4dd3a7cd904f247ca16322d34c1f15b4217d705c355cfbd7e8433494d5406');
    expect(rs.hash).toBe(createHash('sha256').update(canonicalJson(rs.document), 'utf8').digest('hex'));
    const reference = referenceRules();
    expect(reference.hash).toBe(createHash('sha256').update(canonicalJson(reference.document), 'utf8').digest('hex'));
  });
});

describe('rules language: semantics', () => {
  const rules = (body: string) =>
    loadRuleset(
      `${HEAD}maps:\n  role:\n    admin: { idp: "{customer}-admins", warehouse: app_admin }\n    member: { idp: "{customer}-members", warehouse: app_write }\n    viewer: { idp: "{customer}-viewers", warehouse: app_read }\n${body}`,
      'test.yaml',
    );
  const applied = () => stateBefore('02-add-dave-and-billing.json', referenceRules());

  it('conflicting operations on one subject resolve to the net effect; duplicates merge their rule ids', () => {
    const rs = rules(`rules:
  - id: join
    on: { clause: namedUsers, kind: removed }
    actions: [{ target: idp, action: joinGroup, subject: "{userBefore.email}", group: g1 }, { target: idp, action: reactivateAccount, subject: "{userBefore.email}" }]
  - id: leave
    on: { clause: namedUsers, kind: removed }
    actions: [{ target: idp, action: leaveGroup, subject: "{userBefore.email}", group: g1 }, { target: idp, action: deactivateAccount, subject: "{userBefore.email}" }]
  - id: leave-again
    on: { clause: namedUsers }
    when: change.kind == "removed"
    actions: [{ target: idp, action: leaveGroup, subject: "{userBefore.email}", group: g1 }]
`);
    const plan = planAmendment(
      amendment({ sequence: 2, changes: [{ op: 'remove', path: 'namedUsers', match: { email: 'bob@acme.com' } }] }),
      applied(),
      rs,
    );
    expect(plan.operations.map((o) => [o.id, o.ruleIds])).toEqual([
      ['idp:leaveGroup:bob@acme.com:g1', ['leave', 'leave-again']],
      ['idp:deactivateAccount:bob@acme.com', ['leave']],
    ]);
  });

  it('custom clauses can be matched by key; forEach renders one operation per item; action when filters items', () => {
    const rs = rules(`rules:
  - id: sla-gold
    on: { clause: custom, key: sla }
    when: change.after == "gold"
    actions:
      - { target: idp, action: joinGroup, forEach: after.namedUsers, as: u, when: 'u.role != "viewer"', subject: "{u.email}", group: "{customer}-gold" }
  - id: other-custom
    on: { clause: custom, key: region2 }
    actions: [{ target: idp, action: joinGroup, subject: x, group: never }]
`);
    const plan = planAmendment(
      amendment({ sequence: 2, changes: [{ op: 'set', path: 'custom.sla', value: 'gold' }] }),
      applied(),
      rs,
    );
    expect(plan.changes).toEqual([{ kind: 'added', clause: 'custom', path: 'custom.sla', after: 'gold' }]);
    expect(plan.operations.map((o) => o.id)).toEqual([
      'idp:joinGroup:alice@acme.com:acme-gold',
      'idp:joinGroup:bob@acme.com:acme-gold',
    ]); // carol is a viewer
  });

  it('approval: always, never, and when over the plan; a rule that fails to evaluate is a violation, not a crash', () => {
    const rs = rules(`rules:
  - id: seats-up
    on: { clause: seats }
    when: change.after > change.before
    approval: always
  - id: big-plan
    on: { clause: namedUsers }
    approval: { when: "size(plan.operations) > 1", message: "{size(plan.operations)} operations" }
    actions: [{ target: idp, action: deactivateAccount, subject: "{user.email}" }, { target: warehouse, action: deactivateAccount, subject: "{user.email}" }]
  - id: broken
    on: { clause: tier }
    when: after.nosuchfield == "x"
`);
    const up = planAmendment(
      amendment({ sequence: 2, changes: [{ op: 'set', path: 'seats', value: 9 }] }),
      applied(),
      rs,
    );
    expect(up.approval).toEqual({
      required: true,
      reasons: [{ ruleId: 'seats-up', message: 'rule seats-up requires approval', changes: ['seats'] }],
    });
    const down = planAmendment(
      amendment({ sequence: 2, changes: [{ op: 'set', path: 'seats', value: 4 }] }),
      applied(),
      rs,
    );
    expect(down.approval.required).toBe(false);
    const users = planAmendment(
      amendment({ sequence: 2, changes: [{ op: 'remove', path: 'namedUsers', match: { email: 'bob@acme.com' } }] }),
      applied(),
      rs,
    );
    expect(users.approval.reasons.map((r) => r.message)).toEqual(['2 operations']);
    const broken = planAmendment(
      amendment({ sequence: 2, changes: [{ op: 'set', path: 'tier', value: 'enterprise' }] }),
      applied(),
      rs,
    );
    expect(broken.violations).toEqual([
      { ruleId: 'broken', message: expect.stringContaining('when could not be evaluated') },
    ]);
    expect(broken.operations).toEqual([]);
  });

  it('rules are indexed: a change only meets the rules that select it', () => {
    const many = Array.from(
      { length: 500 },
      (_, i) =>
        `  - { id: m${i}, on: { clause: modules, key: mod-${i} }, actions: [{ target: idp, action: joinGroup, forEach: after.namedUsers, as: u, subject: "{u.email}", group: "g-${i}" }] }`,
    ).join('\n');
    const rs = rules(`rules:\n${many}\n`);
    expect(rs.index.size).toBe(500);
    const plan = planAmendment(
      amendment({ sequence: 2, changes: [{ op: 'add', path: 'modules', value: 'mod-42' }] }),
      applied(),
      rs,
    );
    expect(new Set(plan.operations.flatMap((o) => o.ruleIds))).toEqual(new Set(['m42']));
  });
});
