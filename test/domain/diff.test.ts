import fc from 'fast-check';
import { type Contract, canonicalContract } from '../../src/domain/contract';
import { applyChanges, diff, invertChanges } from '../../src/domain/diff';

const EMAILS = ['alice@acme.com', 'bob@acme.com', 'carol@acme.com', 'dave@acme.com', 'erin@acme.com'];
const contractArb: fc.Arbitrary<Contract> = fc.record({
  customer: fc.record({
    id: fc.constantFrom('acme', 'globex'),
    name: fc.constantFrom('Acme Corp', 'Acme Corporation'),
  }),
  status: fc.constantFrom('active', 'suspended', 'terminated'),
  tier: fc.constantFrom('standard', 'professional', 'enterprise'),
  seats: fc.nat(20),
  modules: fc.subarray(['analytics', 'billing', 'api', 'reports']),
  namedUsers: fc.uniqueArray(
    fc.record({
      email: fc.constantFrom(...EMAILS),
      name: fc.constantFrom('A', 'B', 'Cee Dee'),
      role: fc.constantFrom('admin', 'member', 'viewer'),
    }),
    { selector: (u) => u.email, maxLength: 5 },
  ),
  term: fc.oneof(
    fc.record({ start: fc.constantFrom('2025-01-01', '2025-06-01') }),
    fc.record({ start: fc.constantFrom('2025-01-01', '2025-06-01'), end: fc.constantFrom('2026-12-31', '2027-06-30') }),
  ),
  region: fc.constantFrom('eu', 'us'),
  custom: fc.dictionary(
    fc.constantFrom('sla', 'supportHours', 'notes'),
    fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.boolean(), fc.array(fc.integer(), { maxLength: 3 })),
  ),
});

describe('diff and applyChanges', () => {
  it('apply(a, diff(a, b)) = b', () => {
    fc.assert(
      fc.property(contractArb, contractArb, (a, b) => {
        expect(applyChanges(a, diff(a, b))).toEqual(canonicalContract(b));
      }),
    );
  });

  it('a baseline: apply(null, diff(null, b)) = b', () => {
    fc.assert(
      fc.property(contractArb, (b) => {
        expect(applyChanges(null, diff(null, b))).toEqual(canonicalContract(b));
      }),
    );
  });

  it('diff(a, a) = [] whatever the order of modules and named users', () => {
    fc.assert(
      fc.property(contractArb, (a) => {
        const shuffled = { ...a, modules: [...a.modules].reverse(), namedUsers: [...a.namedUsers].reverse() };
        expect(diff(a, shuffled)).toEqual([]);
      }),
    );
  });

  it("the reversal's diff is the inverse: diff(b, a) = invert(diff(a, b))", () => {
    fc.assert(
      fc.property(contractArb, contractArb, (a, b) => {
        expect(diff(b, a)).toEqual(invertChanges(diff(a, b)));
      }),
    );
  });

  it('keys named users by lower-cased email, orders changes by clause then key, field-level for users', () => {
    const a: Contract = canonicalContract({
      customer: { id: 'acme', name: 'Acme' },
      status: 'active',
      tier: 'standard',
      seats: 5,
      modules: ['billing', 'analytics'],
      namedUsers: [
        { email: 'bob@acme.com', name: 'Bob', role: 'member' },
        { email: 'alice@acme.com', name: 'Alice', role: 'admin' },
      ],
      term: { start: '2025-01-01' },
      region: 'eu',
      custom: { sla: 'gold' },
    });
    const b: Contract = {
      ...a,
      seats: 6,
      modules: ['analytics', 'api'],
      namedUsers: [
        { email: 'alice@acme.com', name: 'Alice A', role: 'viewer' },
        { email: 'carol@acme.com', name: 'Carol', role: 'member' },
      ],
      custom: {},
    };
    expect(diff(a, b)).toEqual([
      { kind: 'modified', clause: 'seats', path: 'seats', before: 5, after: 6 },
      { kind: 'added', clause: 'modules', path: 'modules[api]', key: 'api', after: 'api' },
      { kind: 'removed', clause: 'modules', path: 'modules[billing]', key: 'billing', before: 'billing' },
      {
        kind: 'modified',
        clause: 'namedUsers',
        path: 'namedUsers[alice@acme.com].name',
        key: 'alice@acme.com',
        before: 'Alice',
        after: 'Alice A',
      },
      {
        kind: 'modified',
        clause: 'namedUsers',
        path: 'namedUsers[alice@acme.com].role',
        key: 'alice@acme.com',
        before: 'admin',
        after: 'viewer',
      },
      {
        kind: 'removed',
        clause: 'namedUsers',
        path: 'namedUsers[bob@acme.com]',
        key: 'bob@acme.com',
        before: { email: 'bob@acme.com', name: 'Bob', role: 'member' },
      },
      {
        kind: 'added',
        clause: 'namedUsers',
        path: 'namedUsers[carol@acme.com]',
        key: 'carol@acme.com',
        after: { email: 'carol@acme.com', name: 'Carol', role: 'member' },
      },
      { kind: 'removed', clause: 'custom', path: 'custom.sla', before: 'gold' },
    ]);
  });
});
