import type { Plan } from '../../src/domain/plan';
import { planAmendment } from '../../src/domain/planner';
import { amendment, amendmentFile, planStory, referenceRules, stateBefore } from './support/reference';

const ids = (p: Plan): string[] => p.operations.map((o) => o.id);
const rules = referenceRules();

describe('reference behaviour (shared/REFERENCE-POLICY.md)', () => {
  it('1. named user added: idp account with the SCIM attributes, role group, module groups; warehouse role and role-map role', () => {
    const plan = planStory('02-add-dave-and-billing.json', rules);
    expect(plan.violations).toEqual([]);
    const ensure = plan.operations.find((o) => o.id === 'idp:ensureAccount:dave@acme.com')!;
    expect(ensure.params).toEqual({
      attributes: {
        userName: 'dave@acme.com',
        externalId: 'acme:dave@acme.com',
        displayName: 'Dave Davis',
        email: 'dave@acme.com',
      },
    });
    expect(ensure.inverse).toEqual({ action: 'removeAccount', params: {} });
    expect(plan.operations.find((o) => o.id === 'warehouse:ensureAccount:dave@acme.com')!.params).toEqual({
      attributes: {},
    });
    expect(ids(plan)).toEqual([
      'idp:ensureAccount:dave@acme.com',
      'warehouse:ensureAccount:dave@acme.com',
      'idp:joinGroup:alice@acme.com:acme-mod-billing',
      'idp:joinGroup:bob@acme.com:acme-mod-billing',
      'idp:joinGroup:carol@acme.com:acme-mod-billing',
      'idp:joinGroup:dave@acme.com:acme-members',
      'idp:joinGroup:dave@acme.com:acme-mod-analytics',
      'idp:joinGroup:dave@acme.com:acme-mod-billing',
      'warehouse:grantRole:dave@acme.com:app_write',
    ]);
    // deduplicated: joined once, by both rules
    expect(plan.operations.find((o) => o.id === 'idp:joinGroup:dave@acme.com:acme-mod-billing')!.ruleIds).toEqual([
      'module-added',
      'named-user-added',
    ]);
    expect(plan.operations.find((o) => o.id === 'warehouse:grantRole:dave@acme.com:app_write')!.description).toBe(
      'warehouse: grant app_write to dave@acme.com',
    );
  });

  it('1. an email longer than 63 bytes is invalid (bytes, not characters)', () => {
    const applied = stateBefore('02-add-dave-and-billing.json', rules);
    const email = `${'é'.repeat(28)}@acme.com`; // 28 characters of 2 bytes + 9 = 65 bytes, 37 characters
    const plan = planAmendment(
      amendment({
        sequence: 2,
        changes: [{ op: 'add', path: 'namedUsers', value: { email, name: 'Long', role: 'viewer' } }],
      }),
      applied,
      rules,
    );
    expect(plan.violations).toEqual([
      {
        ruleId: 'email-fits-warehouse-role',
        message: `the email ${email} is 65 bytes long; a named user's email may have at most 63 bytes`,
      },
    ]);
    expect(plan.operations).toEqual([]);
    const ok = `${'e'.repeat(54)}@acme.com`; // 63 bytes
    expect(
      planAmendment(
        amendment({
          sequence: 2,
          changes: [{ op: 'add', path: 'namedUsers', value: { email: ok, name: 'Ok', role: 'viewer' } }],
        }),
        applied,
        rules,
      ).violations,
    ).toEqual([]);
  });

  it('2. named user removed: idp inactive and out of every {customer}- group; warehouse NOLOGIN and out of every app_ role; never deleted', () => {
    const applied = stateBefore('03-role-and-name.json', rules);
    const plan = planAmendment(
      amendment({ sequence: 3, changes: [{ op: 'remove', path: 'namedUsers', match: { email: 'alice@acme.com' } }] }),
      applied,
      rules,
    );
    expect(ids(plan)).toEqual([
      'idp:leaveGroup:alice@acme.com:acme-admins',
      'idp:leaveGroup:alice@acme.com:acme-mod-analytics',
      'idp:leaveGroup:alice@acme.com:acme-mod-billing',
      'warehouse:revokeRole:alice@acme.com:app_admin',
      'idp:deactivateAccount:alice@acme.com',
      'warehouse:deactivateAccount:alice@acme.com',
    ]);
    expect(plan.operations.map((o) => o.action)).not.toContain('removeAccount');
    expect(plan.operations.find((o) => o.action === 'deactivateAccount')!.inverse.action).toBe('reactivateAccount');
  });

  it('3. role changed: leaves the old group and role, joins the new; name changed: displayName follows (inverse restores the old name)', () => {
    const plan = planStory('03-role-and-name.json', rules);
    expect(ids(plan)).toEqual([
      'idp:updateAttributes:bob@acme.com',
      'idp:leaveGroup:carol@acme.com:acme-viewers',
      'warehouse:revokeRole:carol@acme.com:app_read',
      'idp:joinGroup:carol@acme.com:acme-members',
      'warehouse:grantRole:carol@acme.com:app_write',
    ]);
    const rename = plan.operations[0]!;
    expect(rename.params).toEqual({ attributes: { displayName: 'Robert Brown' } });
    expect(rename.inverse).toEqual({
      action: 'restoreAttributes',
      params: { attributes: { displayName: 'Bob Brown' } },
    });
  });

  it('4. module added or removed: every current named user joins or leaves its group', () => {
    const applied = stateBefore('03-role-and-name.json', rules);
    const plan = planAmendment(
      amendment({
        sequence: 3,
        changes: [
          { op: 'remove', path: 'modules', value: 'billing' },
          { op: 'add', path: 'modules', value: 'api' },
        ],
      }),
      applied,
      rules,
    );
    const users = ['alice', 'bob', 'carol', 'dave'];
    expect(ids(plan)).toEqual([
      ...users.map((u) => `idp:leaveGroup:${u}@acme.com:acme-mod-billing`),
      ...users.map((u) => `idp:joinGroup:${u}@acme.com:acme-mod-api`),
    ]);
  });

  it('5. suspended: deactivated everywhere, memberships kept; active again: reactivated', () => {
    const suspend = planStory('04-suspend.json', rules);
    expect(new Set(suspend.operations.map((o) => o.action))).toEqual(new Set(['deactivateAccount']));
    expect(suspend.operations).toHaveLength(8);
    const back = planStory('05-reactivate.json', rules);
    expect(new Set(back.operations.map((o) => o.action))).toEqual(new Set(['reactivateAccount']));
    expect(back.operations).toHaveLength(8);
    expect(back.approval.required).toBe(false);
  });

  it('5. terminated: deactivated and removed from every group and role; leaves and revokes come before deactivation', () => {
    const plan = planStory('08-terminate.json', rules);
    const actions = plan.operations.map((o) => o.action);
    expect(actions.filter((a) => a === 'leaveGroup')).toHaveLength(12);
    expect(actions.filter((a) => a === 'revokeRole')).toHaveLength(4);
    expect(actions.filter((a) => a === 'deactivateAccount')).toHaveLength(8);
    expect(actions.lastIndexOf('leaveGroup')).toBeLessThan(actions.indexOf('deactivateAccount'));
    expect(actions.lastIndexOf('revokeRole')).toBeLessThan(actions.indexOf('deactivateAccount'));
  });

  it('6. more named users than seats is refused before anything changes, naming both numbers', () => {
    const plan = planStory('06-too-many-users.invalid.json', rules);
    expect(plan.violations).toEqual([
      { ruleId: 'seats-cover-named-users', message: '6 named users exceed the 5 seats the contract allows' },
    ]);
    expect(plan.operations).toEqual([]);
    expect(plan.after).toEqual(plan.before);
  });

  it('7. approval when the plan grants admin or the status becomes terminated; nothing else', () => {
    const baseline = planStory('01-baseline.json', rules);
    expect(baseline.approval).toEqual({
      required: true,
      reasons: [
        {
          ruleId: 'admin-grant-needs-approval',
          message: 'grants admin to alice@acme.com',
          changes: expect.arrayContaining(['namedUsers[alice@acme.com]']),
        },
      ],
    });
    expect(planStory('08-terminate.json', rules).approval.reasons.map((r) => r.ruleId)).toEqual([
      'contract-terminated',
    ]);
    for (const f of [
      '02-add-dave-and-billing.json',
      '03-role-and-name.json',
      '04-suspend.json',
      '05-reactivate.json',
      '07-reverse-05.json',
    ] as const) {
      expect([f, planStory(f, rules).approval.required]).toEqual([f, false]);
    }
    const promote = planAmendment(
      amendment({
        sequence: 2,
        changes: [{ op: 'set', path: 'namedUsers.role', match: { email: 'carol@acme.com' }, value: 'admin' }],
      }),
      stateBefore('02-add-dave-and-billing.json', rules),
      rules,
    );
    expect(promote.approval.reasons.map((r) => r.message)).toEqual(['grants admin to carol@acme.com']);
    expect(promote.operations.filter((o) => o.risk === 'high').map((o) => o.id)).toEqual([
      'idp:joinGroup:carol@acme.com:acme-admins',
      'warehouse:grantRole:carol@acme.com:app_admin',
    ]);
  });

  it('8. reversal restores the state before X; X must be the last applied amendment; a baseline cannot be reversed', () => {
    const applied = stateBefore('07-reverse-05.json', rules)!;
    expect(applied.amendmentId).toBe('acme-msa-005'); // 06 was invalid: it consumed nothing
    const plan = planStory('07-reverse-05.json', rules);
    expect(plan.after).toEqual(applied.previous);
    expect(plan.changes.map((c) => c.path)).toEqual(['status']);

    const wrong = planAmendment(
      amendmentFile('amendments/07-reverse-05.json'),
      stateBefore('05-reactivate.json', rules),
      rules,
    );
    expect(wrong.violations).toEqual([
      {
        ruleId: 'amendment',
        message:
          'cannot reverse acme-msa-005: only the last applied amendment of contract acme-msa can be reversed, and that is acme-msa-004 (sequence 4)',
      },
    ]);
    expect(wrong.operations).toEqual([]);

    const base = planAmendment(
      amendment({ sequence: 2, reverses: 'acme-msa-001' }),
      stateBefore('02-add-dave-and-billing.json', rules),
      rules,
    );
    expect(base.violations[0]!.message).toMatch(/acme-msa-001: it is the baseline/);
    expect(planAmendment(amendment({ sequence: 1, reverses: 'x' }), null, rules).violations[0]!.message).toMatch(
      /nothing has been applied/,
    );
  });

  it('8. reversing a role and name change yields the exact opposite operations', () => {
    const rules2 = rules;
    const forward = planStory('03-role-and-name.json', rules2);
    const applied = stateBefore('04-suspend.json', rules2)!;
    const reversal = planAmendment(amendment({ sequence: 4, reverses: 'acme-msa-003' }), applied, rules2);
    const inverted = forward.operations.map((o) => `${o.target}:${o.inverse.action}:${o.subject}`).sort();
    expect(reversal.operations.map((o) => `${o.target}:${o.action}:${o.subject}`).sort()).toEqual(
      inverted.map((s) => s.replace('restoreAttributes', 'updateAttributes')),
    );
  });

  it('9. every operation carries its inverse, and the plan is ordered so compensation, newest first, takes it back', () => {
    const expected: Record<string, string> = {
      ensureAccount: 'removeAccount',
      updateAttributes: 'restoreAttributes',
      deactivateAccount: 'reactivateAccount',
      reactivateAccount: 'deactivateAccount',
      joinGroup: 'leaveGroup',
      leaveGroup: 'joinGroup',
      grantRole: 'revokeRole',
      revokeRole: 'grantRole',
    };
    for (const f of [
      '01-baseline.json',
      '02-add-dave-and-billing.json',
      '03-role-and-name.json',
      '08-terminate.json',
    ] as const) {
      for (const o of planStory(f, rules).operations) {
        expect(o.inverse.action).toBe(expected[o.action]);
        if (o.action === 'joinGroup' || o.action === 'leaveGroup')
          expect(o.inverse.params).toEqual({ group: o.params['group'] });
        if (o.action === 'grantRole' || o.action === 'revokeRole')
          expect(o.inverse.params).toEqual({ role: o.params['role'] });
        expect(o.id).toBe(
          `${o.target}:${o.action}:${o.subject}${o.params['group'] ? `:${String(o.params['group'])}` : o.params['role'] ? `:${String(o.params['role'])}` : ''}`,
        );
      }
    }
    const baseline = planStory('01-baseline.json', rules).operations.map((o) => o.action);
    expect(baseline.lastIndexOf('ensureAccount')).toBeLessThan(baseline.indexOf('joinGroup'));
  });

  it('records the content hash of the ruleset', () => {
    const plan = planStory('02-add-dave-and-billing.json', rules);
    expect(plan.rulesetHash).toMatch(/^[0-9a-f]{64}$/);
    expect(plan.rulesetHash).toBe(rules.hash);
  });
});
