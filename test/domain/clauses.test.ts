import { readClauses, readDate, wordsToNumber } from '../../src/domain/clauses';
import { planAmendment } from '../../src/domain/planner';
import { amendment, referenceRules, stateBefore } from './support/reference';

const read = (text: string, heading = '', ref = '7.1') => readClauses([{ ref, heading, text }]);
const value = (text: string, field: string, heading = '') =>
  read(text, heading).extractions.find((e) => e.field === field);

describe('clause extractors', () => {
  it('numbers in words and figures', () => {
    expect(wordsToNumber('twenty-five')).toBe(25);
    expect(wordsToNumber('one hundred and five')).toBe(105);
    expect(wordsToNumber('two thousand three hundred')).toBe(2300);
    expect(wordsToNumber('many')).toBeUndefined();
  });

  it.each([
    ['The Customer may designate up to twenty-five (25) Named Users.', 25, 'up to twenty-five (25) Named Users'],
    ['Customer may appoint up to 40 named users at any time.', 40, 'up to 40 named users'],
    ['The subscription includes a maximum of ten Named User seats.', 10, 'a maximum of ten Named User seats'],
    ['Number of seats: 1,200', 1200, 'Number of seats: 1,200'],
    ['Customer purchases fifteen (15) seats.', 15, 'fifteen (15) seats'],
  ])('seats: %s', (text, n, span) => {
    expect(value(text, 'seats')).toEqual({ field: 'seats', value: n, ref: '7.1', span });
  });

  it('seats: words and figures that disagree are reported, not guessed', () => {
    const r = read('The Customer may designate up to twenty (25) Named Users.', 'Seats');
    expect(r.extractions.find((e) => e.field === 'seats')).toBeUndefined();
    expect(r.problems).toEqual([
      {
        ref: '7.1',
        message:
          'cannot read the number of seats in "up to twenty (25) Named Users": the words say 20 but the figure says 25',
      },
    ]);
  });

  it.each([
    ['Licensed modules: Analytics, Billing and API.', ['analytics', 'api', 'billing']],
    ['Modules: Data Export & Reporting', ['data-export', 'reporting']],
    ['The Customer is licensed for the Analytics and Billing modules.', ['analytics', 'billing']],
    ['Licensed modules: none.', []],
  ])('modules: %s', (text, modules) => {
    expect(value(text, 'modules')?.value).toEqual(modules);
  });

  it('named users with roles, in the usual list shapes', () => {
    const text = [
      'The Named Users are:',
      '1. Jane Doe (jane@acme.com) – Administrator',
      '- John Smith <John.Smith@Acme.com> - Member',
      '(c) Li Wei (li.wei@acme.com): Read-only',
      '• Ana Gómez (ana@acme.com) — Viewer;',
    ].join('\n');
    const e = value(text, 'namedUsers', 'Named Users')!;
    expect(e.value).toEqual([
      { email: 'jane@acme.com', name: 'Jane Doe', role: 'admin' },
      { email: 'john.smith@acme.com', name: 'John Smith', role: 'member' },
      { email: 'li.wei@acme.com', name: 'Li Wei', role: 'viewer' },
      { email: 'ana@acme.com', name: 'Ana Gómez', role: 'viewer' },
    ]);
    expect(e.items!['jane@acme.com']).toBe('1. Jane Doe (jane@acme.com) – Administrator');
  });

  it('named users: an unknown role or an unreadable line is reported with the ref', () => {
    const r = read(
      'Named Users:\n- Jane Doe (jane@acme.com) – Overlord\n- please add jane@acme.com somehow',
      'Named Users',
      '4.2',
    );
    expect(r.problems).toEqual([
      { ref: '4.2', message: 'unknown role "Overlord" for jane@acme.com (expected Administrator, Member or Viewer)' },
      {
        ref: '4.2',
        message: 'cannot read a named user (name (email) – role) from "- please add jane@acme.com somehow"',
      },
    ]);
  });

  it('term, status, tier, region, customer', () => {
    expect(value('The Term commences on 1 January 2025 and ends on 31 December 2026.', 'term', 'Term')?.value).toEqual({
      start: '2025-01-01',
      end: '2026-12-31',
    });
    expect(
      value('This Agreement is effective from March 3rd, 2025 and continues until terminated. Term as above.', 'term')
        ?.value,
    ).toEqual({ start: '2025-03-03' });
    expect(value('Term: 2025-01-01 to 2027-06-30', 'term')?.value).toEqual({ start: '2025-01-01', end: '2027-06-30' });
    expect(value('The Agreement is hereby suspended with immediate effect.', 'status')).toMatchObject({
      value: 'suspended',
      span: 'Agreement is hereby suspended',
    });
    expect(value('Status: Terminated', 'status')?.value).toBe('terminated');
    expect(value('The Agreement is reinstated.', 'status')?.value).toBe('active');
    expect(value('Subscription tier: Enterprise', 'tier')?.value).toBe('enterprise');
    expect(value('Customer Data shall be hosted in the European Union.', 'region')?.value).toBe('eu');
    expect(value('Data residency: US', 'region')?.value).toBe('us');
    expect(value('Customer: Globex Inc. (globex)', 'customer')?.value).toEqual({ id: 'globex', name: 'Globex Inc.' });
    expect(readDate('31 February 2025')).toBeUndefined();
  });

  it('a term clause with an impossible date, and a clause nothing can read, are reported', () => {
    expect(read('The Term commences on 31 February 2025.', 'Term').problems[0]!.message).toMatch(
      /cannot read the term dates/,
    );
    expect(
      read('Each party shall keep the other party’s Confidential Information secret.', 'Confidentiality', '11')
        .problems,
    ).toEqual([
      {
        ref: '11',
        message:
          'no clause extractor could read clause 11 (Confidentiality): nothing about customer, status, tier, seats, modules, named users, term or region',
      },
    ]);
  });

  it('unreadable text makes the amendment invalid with a violation naming the ref; nothing is guessed', () => {
    const rules = referenceRules();
    const applied = stateBefore('02-add-dave-and-billing.json', rules);
    const plan = planAmendment(
      amendment({
        sequence: 2,
        clauses: [{ ref: '4.2', heading: 'Named Users', text: 'Named Users:\n- Dave (dave@acme.com) – Superuser' }],
      }),
      applied,
      rules,
    );
    expect(plan.violations).toEqual([
      {
        ruleId: 'amendment',
        message: 'clause 4.2: unknown role "Superuser" for dave@acme.com (expected Administrator, Member or Viewer)',
      },
    ]);
    expect(plan.operations).toEqual([]);
  });

  it('a baseline as clauses must state the whole contract', () => {
    const plan = planAmendment(
      amendment({ sequence: 1, clauses: [{ ref: '1', heading: '', text: 'Customer: Acme Corp (acme)' }] }),
      null,
      referenceRules(),
    );
    expect(plan.violations[0]!.message).toMatch(/a baseline given as clauses must state tier, seats, term, region/);
  });
});
