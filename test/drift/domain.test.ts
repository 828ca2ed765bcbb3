/** Drift's pure core (src/domain/drift.ts): the desired state from the reference rules, the comparison, the repairs. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Contract } from '../../src/domain/contract';
import { loadRuleset } from '../../src/domain/rules';
import { checkAppliedDrift } from '../../src/activities/drift';
import { ConnectorRegistry, parseTargets } from '../../src/connectors/registry';
import { DRIFT_SEARCH_ATTRIBUTES } from '../../src/workflows/reconcile-definitions';
import {
  type ActualState,
  compareTarget,
  desiredState,
  type DesiredState,
  governedSubjects,
  repairOperations,
} from '../../src/domain/drift';
import { referenceRules } from '../domain/support/reference';

const rules = referenceRules();

function contract(over: Partial<Contract> = {}): Contract {
  return {
    customer: { id: 'acme', name: 'Acme' },
    status: 'active',
    tier: 'pro',
    seats: 10,
    modules: ['analytics'],
    namedUsers: [
      { email: 'ann@acme.com', name: 'Ann', role: 'admin' },
      { email: 'bob@acme.com', name: 'Bob', role: 'member' },
    ],
    term: { start: '2026-01-01' },
    region: 'eu',
    custom: {},
    ...over,
  };
}

/** What the targets hold when they are exactly as desired. */
function exact(d: DesiredState, target: string): ActualState {
  const t = d.targets.get(target)!;
  return {
    accounts: new Map([...t.accounts].map(([s, a]) => [s, { active: a.active, attributes: { ...a.attributes } }])),
    members: new Map([...t.groups].map(([n, g]) => [n, new Set(g.members)])),
    managedAttributes: new Set(target === 'idp' ? ['userName', 'email', 'displayName', 'externalId'] : []),
  };
}

test('the desired state is the baseline plan of the applied contract: accounts, attributes, groups and roles', () => {
  const d = desiredState(rules, 'acme-msa', { contract: contract(), previous: null });
  const idp = d.targets.get('idp')!;
  expect([...idp.accounts.keys()]).toEqual(['ann@acme.com', 'bob@acme.com']);
  expect(idp.accounts.get('ann@acme.com')).toEqual({
    active: true,
    attributes: {
      userName: 'ann@acme.com',
      externalId: 'acme:ann@acme.com',
      displayName: 'Ann',
      email: 'ann@acme.com',
    },
  });
  expect([...idp.groups.get('acme-admins')!.members]).toEqual(['ann@acme.com']);
  expect([...idp.groups.get('acme-mod-analytics')!.members].sort()).toEqual(['ann@acme.com', 'bob@acme.com']);
  // The viewers group is governed (the role map renders it for acme), with no member wanted; it is acme's own.
  expect(idp.groups.get('acme-viewers')).toEqual({ kind: 'group', exclusive: true, members: new Set() });
  const wh = d.targets.get('warehouse')!;
  // Warehouse roles are granted as roles and shared by every customer: not the contract's own.
  expect(wh.groups.get('app_admin')).toEqual({ kind: 'role', exclusive: false, members: new Set(['ann@acme.com']) });
  expect(compareTarget(idp, exact(d, 'idp'))).toEqual([]);
  expect(compareTarget(wh, exact(d, 'warehouse'))).toEqual([]);
});

test('each kind of difference is found, and an unmanaged account only in a group of the contract', () => {
  const previous = contract({
    namedUsers: [...contract().namedUsers, { email: 'cat@acme.com', name: 'Cat', role: 'viewer' }],
  });
  const d = desiredState(rules, 'acme-msa', { contract: contract(), previous });
  const idp = d.targets.get('idp')!;
  expect(governedSubjects(idp)).toEqual(['ann@acme.com', 'bob@acme.com', 'cat@acme.com']);
  const actual = exact(d, 'idp');
  actual.accounts.delete('bob@acme.com'); // account missing (and so its memberships)
  for (const m of actual.members.values()) m?.delete('bob@acme.com');
  actual.accounts.set('cat@acme.com', { active: true, attributes: {} }); // removed by the last amendment, re-enabled
  actual.accounts.get('ann@acme.com')!.attributes.displayName = 'Ann X'; // wrong attribute
  actual.members.get('acme-admins')!.add('eve@elsewhere.com'); // unmanaged account in a managed group
  actual.members.get('acme-admins')!.add('cat@acme.com'); // an extra admin membership
  actual.members.get('acme-mod-analytics')!.delete('ann@acme.com'); // a deleted membership
  const diffs = compareTarget(idp, actual);
  expect(diffs.map((x) => [x.kind, x.subject, x.group ?? x.attribute ?? '', x.unmanaged ?? false])).toEqual([
    ['membership_missing', 'ann@acme.com', 'acme-mod-analytics', false],
    ['attribute_wrong', 'ann@acme.com', 'displayName', false],
    ['account_missing', 'bob@acme.com', '', false],
    ['membership_missing', 'bob@acme.com', 'acme-members', false],
    ['membership_missing', 'bob@acme.com', 'acme-mod-analytics', false],
    ['account_active', 'cat@acme.com', '', false],
    ['membership_extra', 'cat@acme.com', 'acme-admins', false],
    ['membership_extra', 'eve@elsewhere.com', 'acme-admins', true],
  ]);
  expect(diffs.find((x) => x.kind === 'membership_extra' && x.unmanaged)!.description).toBe(
    'idp: eve@elsewhere.com is in group acme-admins but should not be (an account the contract does not name)',
  );

  const wh = d.targets.get('warehouse')!;
  const whActual = exact(d, 'warehouse');
  whActual.members.get('app_admin')!.add('someone@other-customer.com'); // shared role: another customer's business
  whActual.members.get('app_admin')!.add('bob@acme.com'); // the contract's own account: drift
  whActual.accounts.get('bob@acme.com')!.active = false;
  expect(compareTarget(wh, whActual).map((x) => [x.kind, x.subject, x.group ?? ''])).toEqual([
    ['account_inactive', 'bob@acme.com', ''],
    ['membership_extra', 'bob@acme.com', 'app_admin'],
  ]);
});

test('repairs use the amendment vocabulary: ensure (with attributes), reactivate, deactivate, join/leave groups, grant/revoke roles, update attributes', () => {
  const d = desiredState(rules, 'acme-msa', { contract: contract(), previous: null });
  const idp = exact(d, 'idp');
  idp.accounts.delete('bob@acme.com');
  idp.members.get('acme-members')!.delete('bob@acme.com');
  idp.members.get('acme-admins')!.add('eve@elsewhere.com');
  idp.accounts.get('ann@acme.com')!.attributes.displayName = 'Old';
  const wh = exact(d, 'warehouse');
  wh.accounts.get('ann@acme.com')!.active = false;
  wh.members.get('app_read')!.add('ann@acme.com');
  const diffs = [...compareTarget(d.targets.get('idp')!, idp), ...compareTarget(d.targets.get('warehouse')!, wh)];
  const ops = repairOperations(diffs, d);
  expect(ops.map((o) => o.id)).toEqual([
    'idp:ensureAccount:bob@acme.com',
    'warehouse:reactivateAccount:ann@acme.com',
    'idp:updateAttributes:ann@acme.com',
    'idp:leaveGroup:eve@elsewhere.com:acme-admins',
    'warehouse:revokeRole:ann@acme.com:app_read',
    'idp:joinGroup:bob@acme.com:acme-members',
  ]);
  expect(ops[0]!.params).toEqual({
    attributes: {
      userName: 'bob@acme.com',
      externalId: 'acme:bob@acme.com',
      displayName: 'Bob',
      email: 'bob@acme.com',
    },
  });
  expect(ops[2]!.params).toEqual({ attributes: { displayName: 'Ann' } });
  expect(ops[2]!.inverse).toEqual({ action: 'restoreAttributes', params: { attributes: { displayName: 'Old' } } });
  expect(ops.every((o) => o.ruleIds[0] === 'reconciliation' && o.description.startsWith(`${o.target}: `))).toBe(true);
});

test('a suspended contract keeps its accounts inactive with their groups; a terminated one governs its users with nothing granted', () => {
  const s = desiredState(rules, 'acme-msa', { contract: contract({ status: 'suspended' }), previous: contract() });
  expect(s.targets.get('idp')!.accounts.get('bob@acme.com')!.active).toBe(false);
  expect([...s.targets.get('idp')!.groups.get('acme-members')!.members]).toEqual(['bob@acme.com']);
  const t = desiredState(rules, 'acme-msa', { contract: contract({ status: 'terminated' }), previous: contract() });
  const idp = t.targets.get('idp')!;
  expect(idp.accounts.size).toBe(0);
  expect([...idp.inactive].sort()).toEqual(['ann@acme.com', 'bob@acme.com']);
  expect(idp.groups.size).toBeGreaterThan(0); // the groups are still governed: emptied, not forgotten
  expect([...idp.groups.values()].every((g) => g.members.size === 0)).toBe(true);
  const actual: ActualState = {
    accounts: new Map([['ann@acme.com', { active: true, attributes: {} }]]),
    members: new Map([['acme-admins', new Set(['ann@acme.com'])]]),
    managedAttributes: new Set(),
  };
  expect(compareTarget(idp, actual).map((x) => x.kind)).toEqual(['account_active', 'membership_extra']);
});

test("a map's groups are read the way the plans grant them: the directory's role groups as roles, its module groups as groups", () => {
  const directory = loadRuleset(
    readFileSync(join(__dirname, 'fixtures', 'directory-rules.yaml'), 'utf8'),
    'directory-rules.yaml',
  );
  const d = desiredState(directory, 'acme-msa', {
    contract: contract({ namedUsers: [{ email: 'bob@acme.com', name: 'Bob', role: 'member' }] }),
    previous: null,
  });
  const groups = d.targets.get('directory')!.groups;
  // No admin is named, yet the admins group is governed, as a role (under rolesDn), and the customer's own.
  expect(groups.get('acme-admins')).toEqual({ kind: 'role', exclusive: true, members: new Set() });
  expect(groups.get('acme-members')!.kind).toBe('role');
  expect(groups.get('acme-mod-analytics')).toEqual({
    kind: 'group',
    exclusive: true,
    members: new Set(['bob@acme.com']),
  });
});

test('the one-shot deploy setup registers the drift search attributes with their types', () => {
  const setup = readFileSync(join(__dirname, '..', '..', 'deploy', 'temporal', 'setup.sh'), 'utf8');
  const listed = /for at in ([\w: ]+); do/
    .exec(setup)?.[1]
    ?.split(' ')
    .map((x) => x.split(':'));
  expect(Object.fromEntries(listed ?? [])).toEqual(DRIFT_SEARCH_ATTRIBUTES);
});

test('targets whose connector cannot list (http, iam), or that this worker has no configuration for, are reported not checked', async () => {
  const dir = join(__dirname, '..', '..', 'examples', 'directory');
  const file = join(dir, 'targets.yaml');
  const all = parseTargets(readFileSync(file, 'utf8'), file, {});
  const registry = new ConnectorRegistry({
    targets: { 'billing-app': all.targets['billing-app']!, aws: all.targets.aws! },
  });
  const ruleset = loadRuleset(readFileSync(join(dir, 'rules.yaml'), 'utf8'), 'rules.yaml');
  const c = contract({ modules: ['billing'], namedUsers: [{ email: 'ann@acme.com', name: 'Ann', role: 'admin' }] });
  const report = await checkAppliedDrift({ registry, ruleset: () => ruleset }, 'acme-msa', {
    contract: c,
    previous: null,
    sequence: 1,
    amendmentId: 'acme-001',
  });
  expect(report.targets.map((t) => [t.target, t.checked, t.why])).toEqual([
    ['directory', false, 'not checked: no target "directory" is configured'],
    ['billing-app', false, 'not checked: the http connector cannot list accounts'],
    ['aws', false, 'not checked: the iam connector cannot list accounts'],
  ]);
  expect(report.differences).toEqual([]);
  await registry.close();
});
