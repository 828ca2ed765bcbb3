/**
 * Hostile and malformed input at the pure boundaries (issue 10, point 6): amendment documents
 * (JSON and YAML text, and objects as the client takes them), rules files, targets files,
 * approvals files, rule cases, webhooks, and the CLI's arguments. Each row is an assertion:
 * the input is refused with an error that names what is wrong and where (file, line and
 * column, field path), or refused as a whole by the plan (violations, no operations, the
 * applied state unchanged), or, for hostile-looking input that is legitimate, accepted as
 * what it means. No servers: CLI commands that would reach Temporal are pointed at a closed
 * port, so a check that did not happen before connecting fails the row (exit 3, not 2).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AmendmentDocumentSchema, type Amendment } from '../../src/domain/amendment';
import { loadCases, runCases } from '../../src/cli/rule-cases';
import { parseAmendmentText } from '../../src/domain/document';
import { parseWith } from '../../src/domain/errors';
import type { Plan } from '../../src/domain/plan';
import { type AppliedState, appliedAfter, planAmendment } from '../../src/domain/planner';
import { loadRuleset } from '../../src/domain/rules';
import { amendmentFromWebhook, loadWebhookMapping } from '../../src/api/webhooks/mapping';
import { MAX_DOCUMENT_BYTES } from '../../src/domain/text';
import { parseTargets } from '../../src/connectors/registry';
import { governancePolicyFrom, loadGovernancePolicy } from '../../src/worker/config';
import { FileRulesProvider } from '../../src/worker/rules';
import { ApproveInputSchema, checkId, checkInput, SubmitOptionsSchema } from '../../src/client/inputs';
import { main } from '../../src/cli/main';
import { ROOT, referenceRules, stateBefore } from '../domain/support/reference';
import { WORKFLOW_CASES } from './workflow-cases';
import { HostileTable, inputErrorOf, issueAt } from './support';
import { stringify as stringifyYaml } from 'yaml';
import { newSigningKey } from '../../src/approvals/token';

const table = new HostileTable('pure boundaries (documents, files, CLI)');
afterAll(() => table.print());

const DIR = mkdtempSync(join(tmpdir(), 'amendctl-hostile-'));
const RULES = referenceRules();
const AFTER_BASELINE = stateBefore('02-add-dave-and-billing.json', RULES)!;
const BASE = JSON.parse(readFileSync(join(ROOT, 'examples/reference/amendments/01-baseline.json'), 'utf8')) as Record<
  string,
  unknown
> & { contract: Record<string, unknown> & { namedUsers: Array<Record<string, unknown>> } };
const base = (): typeof BASE => structuredClone(BASE);
const json = (f: (d: typeof BASE) => void): string => {
  const d = base();
  f(d);
  return JSON.stringify(d, null, 2);
};
/** A changes amendment (sequence 2) against the applied baseline. */
const changesDoc = (changes: unknown[]): string =>
  JSON.stringify({
    amendmentId: 'acme-msa-002',
    contractId: 'acme-msa',
    sequence: 2,
    submittedBy: 'contracts@acme.com',
    changes,
  });
const user = (email: string, name = 'Some One', role = 'member') => ({ email, name, role });

// ---- how a case ends, and what the row asserts ------------------------------------------

type Expect =
  | { refused: string; what: RegExp } // an InputError with an issue at exactly this path (or location)
  | { invalid: RegExp } // the plan refuses the whole amendment: a violation, no operations, nothing applied
  | { accepted: (a: Amendment, p: Plan) => void; note: string };

interface DocCase {
  id: string;
  input: string;
  text: () => string;
  file?: string;
  applied?: AppliedState | null;
  expect: Expect;
}

function runDocCase(c: DocCase): void {
  const file = c.file ?? 'amendment.json';
  const applied = c.applied === undefined ? null : c.applied;
  const text = c.text();
  const e = c.expect;
  if ('refused' in e) {
    const err = inputErrorOf(() => parseAmendmentText(text, file));
    const issue = issueAt(err, e.refused, e.what, file);
    table.add({
      id: c.id,
      boundary: 'amendment document',
      input: c.input,
      outcome: 'refused (exit 2)',
      message: `${issue.path || '(root)'}: ${issue.message}`,
    });
    return;
  }
  const a = parseAmendmentText(text, file);
  const plan = planAmendment(a, applied, RULES);
  if ('invalid' in e) {
    const v = plan.violations.find((x) => e.invalid.test(x.message));
    if (!v) throw new Error(`no violation matching ${e.invalid}: ${JSON.stringify(plan.violations)}`);
    // Nothing half-applied: no operation at all, no approval asked, the applied state as it was.
    expect(plan.operations).toEqual([]);
    expect(plan.approval.required).toBe(false);
    expect(appliedAfter(plan, applied)).toBe(applied);
    table.add({
      id: c.id,
      boundary: 'amendment plan',
      input: c.input,
      outcome: 'invalid: nothing applied',
      message: v.message,
    });
    return;
  }
  expect(plan.violations).toEqual([]);
  e.accepted(a, plan);
  table.add({ id: c.id, boundary: 'amendment document', input: c.input, outcome: 'accepted', message: e.note });
}

// ---- amendment documents --------------------------------------------------------------

const big = (n: number): string => 'x'.repeat(n);
const nest = (open: string, close: string, n: number, inner = '1'): string =>
  `${open.repeat(n)}${inner}${close.repeat(n)}`;
const deepCustom = (depth: number): string =>
  json((d) => (d.contract['custom'] = { x: 0 })).replace('"x": 0', `"x": ${nest('[', ']', depth)}`);

const DOCS: DocCase[] = [
  // syntax, with line and column
  {
    id: 'D001',
    input: 'JSON cut off after a comma',
    text: () => '{"amendmentId": "a",',
    expect: { refused: 'line 1, column 21', what: /expected a key in double quotes, found the end of the document/ },
  },
  {
    id: 'D002',
    input: 'JSON trailing comma in an object',
    text: () => '{\n  "amendmentId": "a",\n}',
    expect: { refused: 'line 3, column 1', what: /expected a key in double quotes, found "}"/ },
  },
  {
    id: 'D003',
    input: 'JSON with single-quoted keys',
    text: () => "{'amendmentId': 'a'}",
    expect: { refused: 'line 1, column 2', what: /expected a key in double quotes, found "'"/ },
  },
  {
    id: 'D004',
    input: 'JSON string holding a raw line break',
    text: () => '{"submittedBy": "a\nb"}',
    expect: { refused: 'submittedBy (line 1, column 17)', what: /may not contain the control character U\+000A/ },
  },
  {
    id: 'D005',
    input: 'JSON invalid escape \\x41',
    text: () => '{"submittedBy": "\\x41"}',
    expect: { refused: 'submittedBy (line 1, column 17)', what: /invalid escape "\\x" in a string/ },
  },
  {
    id: 'D006',
    input: 'JSON with a // comment',
    text: () => '{\n  // who\n  "a": 1}',
    expect: { refused: 'line 2, column 3', what: /expected a key in double quotes, found "\/"/ },
  },
  {
    id: 'D007',
    input: 'JSON NaN literal for seats',
    text: () => '{"contract": {"seats": NaN}}',
    expect: { refused: 'contract.seats (line 1, column 24)', what: /expected a value .* found "N"/ },
  },
  {
    id: 'D008',
    input: 'two JSON documents in one file',
    text: () => '{"a": 1}\n{"b": 2}',
    expect: { refused: 'line 2, column 1', what: /unexpected "\{" after the end of the document/ },
  },
  {
    id: 'D009',
    input: 'JSON value without a closing bracket',
    text: () => '{"changes": [1, 2}',
    expect: { refused: 'changes[1] (line 1, column 18)', what: /expected "," or "]", found "}"/ },
  },
  {
    id: 'D010',
    input: 'JSON duplicate key amendmentId (last would win)',
    text: () => '{"amendmentId": "a",\n "amendmentId": "b"}',
    expect: { refused: 'amendmentId (line 2, column 2)', what: /duplicate key "amendmentId".*silently keep the last/ },
  },
  {
    id: 'D011',
    input: 'JSON duplicate key contract.seats',
    text: () => json(() => undefined).replace('"seats": 5', '"seats": 5, "seats": 500'),
    expect: { refused: 'contract.seats (line 13, column 17)', what: /duplicate key "seats"/ },
  },
  {
    id: 'D012',
    input: 'JSON duplicate email key in namedUsers[1]',
    text: () =>
      json(() => undefined).replace('"email": "bob@acme.com"', '"email": "bob@acme.com", "email": "mallory@evil.com"'),
    expect: { refused: 'contract.namedUsers[1].email (line 24, column 34)', what: /duplicate key "email"/ },
  },
  {
    id: 'D013',
    input: 'JSON duplicate key spelt with an escape (se\\u0061ts)',
    text: () => '{"contract": {"seats": 5, "se\\u0061ts": 50}}',
    expect: { refused: 'contract.seats (line 1, column 27)', what: /duplicate key "seats"/ },
  },
  {
    id: 'D014',
    input: 'YAML duplicate key',
    file: 'amendment.yaml',
    text: () => 'amendmentId: a\ncontractId: c\namendmentId: b\n',
    expect: { refused: 'line 3, column 1', what: /duplicate key: a key may appear once in a mapping/ },
  },
  {
    id: 'D015',
    input: 'YAML bad indentation',
    file: 'amendment.yaml',
    text: () => 'contract:\n  seats: 5\n tier: x\n',
    expect: { refused: 'line 3, column 1', what: /All mapping items must start at the same column/ },
  },
  {
    id: 'D016',
    input: 'YAML tab indentation',
    file: 'amendment.yaml',
    text: () => 'contract:\n\tseats: 5\n',
    expect: { refused: 'line 2, column 1', what: /tab/i },
  },
  {
    id: 'D017',
    input: 'YAML alias bomb (billion laughs)',
    file: 'amendment.yaml',
    text: () =>
      [
        'a: &a [x, x, x, x, x, x, x, x, x, x]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
        'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
      ].join('\n'),
    expect: { refused: '', what: /Excessive alias count indicates a resource exhaustion attack/ },
  },
  {
    id: 'D018',
    input: 'YAML with two documents',
    file: 'amendment.yaml',
    text: () => 'amendmentId: a\n---\namendmentId: b\n',
    expect: { refused: 'line 2, column 1', what: /multiple documents/i },
  },
  {
    id: 'D019',
    input: 'YAML !!binary where an id goes',
    file: 'amendment.yaml',
    text: () =>
      `amendmentId: !!binary aGVsbG8=\ncontractId: acme-msa\nsequence: 1\nsubmittedBy: x\nreverses: acme-msa-000\n`,
    expect: { refused: 'amendmentId', what: /^not a JSON value \(a Buffer\)$/ },
  },
  { id: 'D020', input: 'empty file', text: () => '', expect: { refused: '', what: /the document is empty/ } },
  {
    id: 'D021',
    input: 'only comments (YAML)',
    file: 'amendment.yaml',
    text: () => '# nothing here\n# at all\n',
    expect: { refused: '', what: /the document is empty/ },
  },
  {
    id: 'D022',
    input: 'JSON null',
    text: () => 'null',
    expect: { refused: '', what: /expected object, received null/ },
  },
  {
    id: 'D023',
    input: 'a JSON array instead of an object',
    text: () => '[1, 2, 3]',
    expect: { refused: '', what: /expected object, received array/ },
  },
  {
    id: 'D024',
    input: 'a bare YAML string',
    file: 'amendment.yaml',
    text: () => 'hello',
    expect: { refused: '', what: /expected object, received string/ },
  },
  {
    id: 'D025',
    input: 'UTF-8 byte order mark before the JSON',
    text: () => `\ufeff${json(() => undefined)}`,
    expect: {
      accepted: (a) => expect(a.amendmentId).toBe('acme-msa-001'),
      note: 'the byte order mark is not content: read as the reference baseline',
    },
  },
  {
    id: 'D026',
    input: 'CRLF line endings',
    file: 'amendment.yaml',
    text: () =>
      'amendmentId: acme-msa-007\r\ncontractId: acme-msa\r\nsequence: 2\r\nsubmittedBy: ops\r\nreverses: acme-msa-001\r\n',
    applied: AFTER_BASELINE,
    expect: { invalid: /cannot reverse acme-msa-001: it is the baseline/ },
  },

  // size and depth
  {
    id: 'D027',
    input: '10 MB JSON body (a 10 MB custom clause)',
    text: () => json((d) => (d.contract['custom'] = { notes: big(10 * 1024 * 1024) })),
    expect: { refused: '', what: /^\d{8} bytes \(10\.0 MB\); a document is at most 4194304 bytes/ },
  },
  {
    id: 'D028',
    input: '10 MB YAML body',
    file: 'amendment.yaml',
    text: () => `amendmentId: a\nnotes: ${big(10 * 1024 * 1024)}\n`,
    expect: { refused: '', what: /^104857\d\d bytes \(10\.0 MB\); a document is at most/ },
  },
  {
    id: 'D029',
    input: 'one byte over the 4 MB limit',
    text: () => {
      const t = json((d) => (d.contract['custom'] = { n: '' }));
      return t.replace('"n": ""', `"n": "${big(MAX_DOCUMENT_BYTES - t.length + 1)}"`);
    },
    expect: { refused: '', what: /^4194305 bytes/ },
  },
  {
    id: 'D030',
    input: 'a custom clause nested 100,000 deep (JSON)',
    text: () => deepCustom(100_000),
    expect: {
      refused: 'contract.custom.x[0][0][0][0][0][0][0][0][0]… (64 levels) (line 40, column 73)',
      what: /nested deeper than 64 levels/,
    },
  },
  {
    id: 'D031',
    input: 'YAML flow nested 100,000 deep',
    file: 'amendment.yaml',
    text: () => `amendmentId: a\nx: ${nest('[', ']', 100_000)}\n`,
    expect: { refused: '', what: /nested deeper than the parser can follow \(at most 64 levels are allowed\)/ },
  },
  {
    id: 'D032',
    input: 'YAML block mappings nested 70 deep',
    file: 'amendment.yaml',
    text: () => Array.from({ length: 70 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n') + ' 1\n',
    expect: {
      refused: 'k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11',
      what: /^nested deeper than 64 levels \(from here down\)$/,
    },
  },
  {
    id: 'D033',
    input: 'custom clause nested 65 deep (just over)',
    text: () => deepCustom(63),
    expect: {
      refused: 'contract.custom.x[0][0][0][0][0][0][0][0][0]… (64 levels) (line 40, column 73)',
      what: /nested deeper than 64 levels/,
    },
  },
  {
    id: 'D034',
    input: 'custom clause nested 50 deep (within the limit)',
    text: () => deepCustom(50),
    expect: {
      accepted: (_a, p) => expect(p.after.custom['x']).toBeDefined(),
      note: 'within 64 levels: a custom clause may be structured',
    },
  },

  // wrong types and values
  {
    id: 'D035',
    input: 'amendmentId a number',
    text: () => json((d) => (d['amendmentId'] = 42)),
    expect: { refused: 'amendmentId', what: /expected string, received number/ },
  },
  {
    id: 'D036',
    input: 'amendmentId with a space',
    text: () => json((d) => (d['amendmentId'] = 'acme msa 1')),
    expect: { refused: 'amendmentId', what: /an id of letters, digits/ },
  },
  {
    id: 'D037',
    input: 'amendmentId of 129 characters',
    text: () => json((d) => (d['amendmentId'] = `a${big(128)}`)),
    expect: { refused: 'amendmentId', what: /at most 128/ },
  },
  {
    id: 'D038',
    input: 'amendmentId "../../etc/passwd"',
    text: () => json((d) => (d['amendmentId'] = '../../etc/passwd')),
    expect: { refused: 'amendmentId', what: /an id of letters, digits/ },
  },
  {
    id: 'D039',
    input: 'contractId missing',
    text: () => json((d) => delete d['contractId']),
    expect: { refused: 'contractId', what: /expected string, received undefined/ },
  },
  {
    id: 'D040',
    input: 'sequence "1" (a string)',
    text: () => json((d) => (d['sequence'] = '1')),
    expect: { refused: 'sequence', what: /expected number, received string/ },
  },
  {
    id: 'D041',
    input: 'sequence 0',
    text: () => json((d) => (d['sequence'] = 0)),
    expect: { refused: 'sequence', what: /Too small: expected number to be >=1/ },
  },
  {
    id: 'D042',
    input: 'sequence 1.5',
    text: () => json((d) => (d['sequence'] = 1.5)),
    expect: { refused: 'sequence', what: /expected int, received number/ },
  },
  {
    id: 'D043',
    input: 'sequence 1e300',
    text: () => json((d) => (d['sequence'] = 1e300)),
    expect: { refused: 'sequence', what: /Too big/ },
  },
  {
    id: 'D044',
    input: 'sequence -1',
    text: () => json((d) => (d['sequence'] = -1)),
    expect: { refused: 'sequence', what: /Too small/ },
  },
  {
    id: 'D045',
    input: 'submittedBy ""',
    text: () => json((d) => (d['submittedBy'] = '')),
    expect: { refused: 'submittedBy', what: /the submitter is required/ },
  },
  {
    id: 'D046',
    input: 'submittedBy "   " (spaces only)',
    text: () => json((d) => (d['submittedBy'] = '   ')),
    expect: { refused: 'submittedBy', what: /the submitter is required \(not only spaces\)/ },
  },
  {
    id: 'D047',
    input: 'submittedBy "ops\\nadmin" (a forged log line)',
    text: () => json((d) => (d['submittedBy'] = 'ops\nadmin')),
    expect: {
      refused: 'submittedBy',
      what: /control character U\+000A at character 4 \(this value is one line: no line breaks or tabs\)/,
    },
  },
  {
    id: 'D048',
    input: 'submittedBy of 300 characters',
    text: () => json((d) => (d['submittedBy'] = big(300))),
    expect: { refused: 'submittedBy', what: /at most 256 characters/ },
  },
  {
    id: 'D049',
    input: 'effectiveAt "tomorrow"',
    text: () => json((d) => (d['effectiveAt'] = 'tomorrow')),
    expect: { refused: 'effectiveAt', what: /Invalid ISO datetime/ },
  },
  {
    id: 'D050',
    input: 'effectiveAt without an offset',
    text: () => json((d) => (d['effectiveAt'] = '2026-01-01T00:00:00')),
    expect: { refused: 'effectiveAt', what: /Invalid ISO datetime/ },
  },
  {
    id: 'D051',
    input: 'seats "5" (a string)',
    text: () => json((d) => (d.contract['seats'] = '5')),
    expect: { refused: 'contract.seats', what: /expected number, received string/ },
  },
  {
    id: 'D052',
    input: 'seats -1',
    text: () => json((d) => (d.contract['seats'] = -1)),
    expect: { refused: 'contract.seats', what: /Too small/ },
  },
  {
    id: 'D053',
    input: 'seats 10.5',
    text: () => json((d) => (d.contract['seats'] = 10.5)),
    expect: { refused: 'contract.seats', what: /expected int/ },
  },
  {
    id: 'D054',
    input: 'seats 1,000,000,000',
    text: () => json((d) => (d.contract['seats'] = 1e9)),
    expect: { refused: 'contract.seats', what: /Too big: expected number to be <=10000000/ },
  },
  {
    id: 'D055',
    input: 'status "open"',
    text: () => json((d) => (d.contract['status'] = 'open')),
    expect: { refused: 'contract.status', what: /expected one of "active"\|"suspended"\|"terminated"/ },
  },
  {
    id: 'D056',
    input: 'role "root"',
    text: () => json((d) => (d.contract.namedUsers[0]!['role'] = 'root')),
    expect: { refused: 'contract.namedUsers[0].role', what: /expected one of "admin"\|"member"\|"viewer"/ },
  },
  {
    id: 'D057',
    input: 'role "Admin" (case)',
    text: () => json((d) => (d.contract.namedUsers[0]!['role'] = 'Admin')),
    expect: { refused: 'contract.namedUsers[0].role', what: /expected one of "admin"/ },
  },
  {
    id: 'D058',
    input: 'namedUsers an object, not a list',
    text: () => json((d) => (d.contract['namedUsers'] = { alice: 'admin' } as never)),
    expect: { refused: 'contract.namedUsers', what: /expected array, received object/i },
  },
  {
    id: 'D059',
    input: 'modules a string, not a list',
    text: () => json((d) => (d.contract['modules'] = 'analytics')),
    expect: { refused: 'contract.modules', what: /expected array, received string/ },
  },
  {
    id: 'D060',
    input: 'module name "data lake" (a space)',
    text: () => json((d) => (d.contract['modules'] = ['data lake'])),
    expect: { refused: 'contract.modules[0]', what: /a module name: letters, digits/ },
  },
  {
    id: 'D061',
    input: 'term.start 2025-02-30 (no such day)',
    text: () => json((d) => ((d.contract['term'] as Record<string, string>)['start'] = '2025-02-30')),
    expect: { refused: 'contract.term.start', what: /not a date of the calendar/ },
  },
  {
    id: 'D062',
    input: 'term.start 01/02/2025',
    text: () => json((d) => ((d.contract['term'] as Record<string, string>)['start'] = '01/02/2025')),
    expect: { refused: 'contract.term.start', what: /an ISO date \(YYYY-MM-DD\)/ },
  },
  {
    id: 'D063',
    input: 'term ends before it starts',
    text: () => json((d) => (d.contract['term'] = { start: '2026-01-01', end: '2025-12-31' })),
    expect: { refused: 'contract.term.end', what: /the term ends before it starts/ },
  },
  {
    id: 'D064',
    input: 'customer.id "ACME" (upper case)',
    text: () => json((d) => (d.contract['customer'] = { id: 'ACME', name: 'Acme' })),
    expect: { refused: 'contract.customer.id', what: /a customer id is a slug/ },
  },
  {
    id: 'D065',
    input: 'customer.name ""',
    text: () => json((d) => (d.contract['customer'] = { id: 'acme', name: '' })),
    expect: { refused: 'contract.customer.name', what: /a name/ },
  },
  {
    id: 'D066',
    input: 'tier of 100 characters',
    text: () => json((d) => (d.contract['tier'] = big(100))),
    expect: { refused: 'contract.tier', what: /at most 64 characters/ },
  },
  {
    id: 'D067',
    input: 'region a number',
    text: () => json((d) => (d.contract['region'] = 44)),
    expect: { refused: 'contract.region', what: /expected string, received number/ },
  },
  {
    id: 'D068',
    input: 'custom a list, not a map',
    text: () => json((d) => (d.contract['custom'] = ['sla'])),
    expect: { refused: 'contract.custom', what: /expected record, received array/ },
  },

  // unknown fields and clauses: refused, never dropped
  {
    id: 'D069',
    input: 'unknown top-level field "priority"',
    text: () => json((d) => (d['priority'] = 'high')),
    expect: { refused: 'priority', what: /unknown field \(expected amendmentId, contractId/ },
  },
  {
    id: 'D070',
    input: 'misspelt clause "namdUsers" (would drop every user)',
    text: () =>
      json((d) => {
        d.contract['namdUsers'] = d.contract.namedUsers;
        delete (d.contract as Record<string, unknown>)['namedUsers'];
      }),
    expect: {
      refused: 'contract.namdUsers',
      what: /unknown clause \(expected customer, status, tier, seats, modules, namedUsers, term, region, custom \(other clauses go under custom\)\)/,
    },
  },
  {
    id: 'D071',
    input: 'unknown clause "sla" outside custom',
    text: () => json((d) => (d.contract['sla'] = 'gold')),
    expect: { refused: 'contract.sla', what: /unknown clause/ },
  },
  {
    id: 'D072',
    input: 'unknown field namedUsers[1].phone',
    text: () => json((d) => (d.contract.namedUsers[1]!['phone'] = '+1 555')),
    expect: {
      refused: 'contract.namedUsers[1].phone',
      what: /unknown field of a named user \(expected email, name, role\)/,
    },
  },
  {
    id: 'D073',
    input: 'unknown field customer.vat',
    text: () => json((d) => (d.contract['customer'] = { id: 'acme', name: 'Acme', vat: 'x' })),
    expect: { refused: 'contract.customer.vat', what: /unknown field of customer/ },
  },
  {
    id: 'D074',
    input: 'unknown field term.renewal',
    text: () => json((d) => (d.contract['term'] = { start: '2025-01-01', renewal: 'auto' })),
    expect: { refused: 'contract.term.renewal', what: /unknown field of term \(expected start, end\)/ },
  },
  {
    id: 'D075',
    input: 'changes[0].vaule (a typo for value)',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'set', path: 'seats', vaule: 9 }]),
    expect: { refused: 'changes[0].vaule', what: /unknown field of an edit \(expected op, path, value, match\)/ },
  },
  {
    id: 'D076',
    input: 'clauses[0].title (not a clause field)',
    text: () =>
      JSON.stringify({
        amendmentId: 'a-1',
        contractId: 'a',
        sequence: 1,
        submittedBy: 'x',
        clauses: [{ ref: '1', text: 'Seats: 5', title: 'x' }],
      }),
    expect: { refused: 'clauses[0].title', what: /unknown field of a clause \(expected ref, heading, text\)/ },
  },
  {
    id: 'D077',
    input: 'contract and changes together',
    text: () => json((d) => (d['changes'] = [])),
    expect: {
      refused: '',
      what: /exactly one of contract, changes or clauses is required \(found contract, changes\)/,
    },
  },
  {
    id: 'D078',
    input: 'a reversal that carries a contract',
    text: () => json((d) => (d['reverses'] = 'acme-msa-000')),
    expect: { refused: 'contract', what: /a reversal carries no contract, changes or clauses/ },
  },
  {
    id: 'D079',
    input: 'no contract, changes or clauses',
    text: () => json((d) => delete (d as Record<string, unknown>)['contract']),
    expect: { refused: '', what: /exactly one of contract, changes or clauses is required \(found none\)/ },
  },
  {
    id: 'D080',
    input: '"__proto__" as a top-level key',
    text: () => json(() => undefined).replace('{', '{"__proto__": {"polluted": true},'),
    expect: { refused: '__proto__', what: /the key is "__proto__", a name no document may use/ },
  },
  {
    id: 'D081',
    input: '"__proto__" inside a custom clause',
    text: () =>
      json((d) => (d.contract['custom'] = {})).replace('"custom": {}', '"custom": {"__proto__": {"isAdmin": true}}'),
    expect: { refused: 'contract.custom.__proto__', what: /the key is "__proto__"/ },
  },

  // the changes and clauses forms: one bad part refuses the whole
  {
    id: 'D082',
    input: 'changes: unknown clause path "foo"',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'set', path: 'foo', value: 1 }]),
    expect: { invalid: /^changes\[0\]: set foo: unknown clause \(expected customer, status/ },
  },
  {
    id: 'D083',
    input: 'changes: set namedUsers.email (the key)',
    applied: AFTER_BASELINE,
    text: () =>
      changesDoc([{ op: 'set', path: 'namedUsers.email', match: { email: 'bob@acme.com' }, value: 'robert@acme.com' }]),
    expect: { invalid: /changes\[0\]: set namedUsers\.email: unknown field .*the email is the key/ },
  },
  {
    id: 'D084',
    input: 'changes: set seats "ten"',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'set', path: 'seats', value: 'ten' }]),
    expect: { invalid: /^the amended contract: seats: Invalid input: expected number, received string$/ },
  },
  {
    id: 'D085',
    input: 'changes: add a module already licensed',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'add', path: 'modules', value: 'analytics' }]),
    expect: { invalid: /changes\[0\]: add modules: module analytics is already licensed/ },
  },
  {
    id: 'D086',
    input: 'changes: remove a user who is not named',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'remove', path: 'namedUsers', match: { email: 'nobody@acme.com' } }]),
    expect: { invalid: /changes\[0\]: remove namedUsers: no named user matches \{"email":"nobody@acme.com"\}/ },
  },
  {
    id: 'D087',
    input: 'changes: 3 good operations and 1 bad (the 4th)',
    applied: AFTER_BASELINE,
    text: () =>
      changesDoc([
        { op: 'add', path: 'namedUsers', value: user('dave@acme.com') },
        { op: 'add', path: 'modules', value: 'billing' },
        { op: 'set', path: 'seats', value: 9 },
        { op: 'set', path: 'tier', value: 3 },
      ]),
    expect: { invalid: /^the amended contract: tier: Invalid input: expected string, received number$/ },
  },
  {
    id: 'D088',
    input: 'changes: add a user whose email mixes Cyrillic and Latin',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'add', path: 'namedUsers', value: user('dаve@acme.com') }]),
    expect: {
      invalid:
        /the amended contract: namedUsers\[3\]\.email: an email address that reads as it is: mixes Latin and Cyrillic letters in "dаve"/,
    },
  },
  {
    id: 'D089',
    input: 'changes: add ALICE@acme.com (alice is named)',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'add', path: 'namedUsers', value: user('ALICE@acme.com') }]),
    expect: { invalid: /changes\[0\]: add namedUsers: alice@acme.com is already a named user/ },
  },
  {
    id: 'D090',
    input: 'changes: add a user with an unknown field',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'add', path: 'namedUsers', value: { ...user('dave@acme.com'), isAdmin: true } }]),
    expect: { invalid: /the amended contract: namedUsers\[3\]\.isAdmin: unknown field of a named user/ },
  },
  {
    id: 'D091',
    input: 'changes: a name with a right-to-left override',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'add', path: 'namedUsers', value: user('dave@acme.com', 'Dave \u202Enimda') }]),
    expect: { refused: 'changes[0].value.name', what: /bidirectional control U\+202E at character 6/ },
  },
  {
    id: 'D092',
    input: 'changes: custom.notes holding NUL',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'set', path: 'custom.notes', value: 'a\u0000b' }]),
    expect: { refused: 'changes[0].value', what: /control character U\+0000 at character 2/ },
  },
  {
    id: 'D093',
    input: 'changes: op "replace"',
    applied: AFTER_BASELINE,
    text: () => changesDoc([{ op: 'replace', path: 'seats', value: 9 }]),
    expect: { refused: 'changes[0].op', what: /expected one of "set"\|"add"\|"remove"/ },
  },
  {
    id: 'D094',
    input: 'changes as the baseline (nothing applied)',
    text: () => changesDoc([{ op: 'set', path: 'seats', value: 9 }]).replace('"sequence":2', '"sequence":1'),
    expect: { invalid: /a changes amendment needs the applied contract/ },
  },
  {
    id: 'D095',
    input: 'changes: 10,001 operations',
    applied: AFTER_BASELINE,
    text: () => changesDoc(Array.from({ length: 10_001 }, () => ({ op: 'set', path: 'seats', value: 9 }))),
    expect: { refused: 'changes', what: /Too big: expected array to have <=10000 items/ },
  },
  {
    id: 'D096',
    input: 'clauses: text no extractor can read',
    text: () =>
      JSON.stringify({
        amendmentId: 'acme-msa-001',
        contractId: 'acme-msa',
        sequence: 1,
        submittedBy: 'x',
        clauses: [{ ref: '7.1', heading: 'Force majeure', text: 'Neither party is liable for acts of God.' }],
      }),
    expect: { invalid: /clause 7\.1: no clause extractor could read clause 7\.1 \(Force majeure\)/ },
  },
  {
    id: 'D097',
    input: 'clauses: text with a right-to-left override',
    text: () =>
      JSON.stringify({
        amendmentId: 'acme-msa-001',
        contractId: 'acme-msa',
        sequence: 1,
        submittedBy: 'x',
        clauses: [{ ref: '1', text: 'Seats: 5 \u202E05 :staeS' }],
      }),
    expect: { refused: 'clauses[0].text', what: /bidirectional control U\+202E at character 10/ },
  },
  {
    id: 'D098',
    input: 'clauses: words and figure disagree',
    applied: AFTER_BASELINE,
    text: () =>
      JSON.stringify({
        amendmentId: 'acme-msa-002',
        contractId: 'acme-msa',
        sequence: 2,
        submittedBy: 'x',
        clauses: [{ ref: '2.1', heading: 'Seats', text: 'Customer may use up to twenty (25) named users.' }],
      }),
    expect: { invalid: /clause 2\.1: cannot read the number of seats .*the words say 20 but the figure says 25/ },
  },
  {
    id: 'D099',
    input: 'clauses: a named user with a Greek omicron',
    applied: AFTER_BASELINE,
    text: () =>
      JSON.stringify({
        amendmentId: 'acme-msa-002',
        contractId: 'acme-msa',
        sequence: 2,
        submittedBy: 'x',
        clauses: [
          {
            ref: '4',
            heading: 'Named Users',
            text: '1. Alice Adams (alice@acme.com) – Administrator\n2. Bob Brown (bοb@acme.com) – Member',
          },
        ],
      }),
    expect: {
      invalid:
        /the contract the clauses describe: namedUsers\[1\]\.email: an email address that reads as it is: mixes Latin and Greek letters in "bοb"/,
    },
  },

  // emails that differ only by case or by look-alike letters
  {
    id: 'D100',
    input: 'two users alice@ and ALICE@ (case only)',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'ALICE@acme.com')),
    expect: { refused: 'contract.namedUsers[1].email', what: /^duplicate named user alice@acme.com$/ },
  },
  {
    id: 'D101',
    input: 'Cyrillic "а" in аlice@ beside alice@',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'аlice@acme.com')),
    expect: {
      refused: 'contract.namedUsers[1].email',
      what: /mixes Cyrillic and Latin letters in "аlice" \("а" U\+0430 at character 1 is Cyrillic, "l" U\+006C at character 2 is Latin\)/,
    },
  },
  {
    id: 'D102',
    input: 'all-Cyrillic аре@ beside ape@ (whole-script look-alike)',
    text: () =>
      json((d) => {
        d.contract.namedUsers[0]!['email'] = 'ape@acme.com';
        d.contract.namedUsers[1]!['email'] = 'аре@acme.com';
      }),
    expect: {
      refused: 'contract.namedUsers[1].email',
      what: /аре@acme.com looks the same as namedUsers\[0\]\.email ape@acme.com/,
    },
  },
  {
    id: 'D103',
    input: 'Greek "ο" in the domain acme.cοm',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob@acme.cοm')),
    expect: { refused: 'contract.namedUsers[1].email', what: /mixes Latin and Greek letters in "cοm"/ },
  },
  {
    id: 'D104',
    input: 'full-width "ａ" in bob@ａcme.com',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob@ａcme.com')),
    expect: {
      refused: 'contract.namedUsers[1].email',
      what: /not in Unicode normal form: NFKC writes it "bob@acme.com"/,
    },
  },
  {
    id: 'D105',
    input: 'decomposed é (e + U+0301) in josé@',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'jose\u0301@acme.com')),
    expect: {
      refused: 'contract.namedUsers[1].email',
      what: /not in Unicode normal form: NFKC writes it "josé@acme.com"/,
    },
  },
  {
    id: 'D106',
    input: 'zero-width space inside an email',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob\u200B@acme.com')),
    expect: { refused: 'contract.namedUsers[1].email', what: /invisible character U\+200B at character 4/ },
  },
  {
    id: 'D107',
    input: 'right-to-left mark in an email',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob@acme.com\u200F')),
    expect: { refused: 'contract.namedUsers[1].email', what: /bidirectional control U\+200F at character 13/ },
  },
  {
    id: 'D108',
    input: 'email without @',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob.acme.com')),
    expect: { refused: 'contract.namedUsers[1].email', what: /an email address \(local@domain\.tld/ },
  },
  {
    id: 'D109',
    input: 'email with two @',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob@evil.com@acme.com')),
    expect: { refused: 'contract.namedUsers[1].email', what: /an email address \(local@domain\.tld/ },
  },
  {
    id: 'D110',
    input: 'email with a space inside',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob brown@acme.com')),
    expect: { refused: 'contract.namedUsers[1].email', what: /no spaces, quotes or brackets/ },
  },
  {
    id: 'D111',
    input: 'email of 300 characters',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = `${big(290)}@acme.com`)),
    expect: { refused: 'contract.namedUsers[1].email', what: /an email address is at most 254 characters/ },
  },
  {
    id: 'D112',
    input: 'email domain without a dot (bob@localhost)',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob@localhost')),
    expect: { refused: 'contract.namedUsers[1].email', what: /an email address \(local@domain\.tld/ },
  },
  {
    id: 'D113',
    input: 'email "<bob@acme.com>" in brackets',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = '<bob@acme.com>')),
    expect: { refused: 'contract.namedUsers[1].email', what: /no spaces, quotes or brackets/ },
  },
  {
    id: 'D114',
    input: '"  Bob@ACME.com " (case and spaces)',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = '  Bob@ACME.com ')),
    expect: {
      accepted: (_a, p) => expect(p.operations.some((o) => o.subject === 'bob@acme.com')).toBe(true),
      note: 'one key: trimmed and lower-cased to bob@acme.com',
    },
  },
  {
    id: 'D115',
    input: 'josé@acme.com (one script, normal form)',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'josé@acme.com')),
    expect: {
      accepted: (_a, p) => expect(p.after.namedUsers.map((u) => u.email)).toContain('josé@acme.com'),
      note: 'an accented Latin address is one script: allowed',
    },
  },
  {
    id: 'D116',
    input: 'internationalised domain in xn-- form',
    text: () => json((d) => (d.contract.namedUsers[1]!['email'] = 'bob@xn--bcher-kva.example')),
    expect: {
      accepted: (_a, p) => expect(p.after.namedUsers.map((u) => u.email)).toContain('bob@xn--bcher-kva.example'),
      note: 'the xn-- form of bücher.example',
    },
  },

  // control, bidirectional and invisible characters in other fields
  {
    id: 'D117',
    input: 'name with NUL',
    text: () => json((d) => (d.contract.namedUsers[1]!['name'] = 'Bob\u0000Brown')),
    expect: { refused: 'contract.namedUsers[1].name', what: /control character U\+0000 at character 4/ },
  },
  {
    id: 'D118',
    input: 'name with a line break',
    text: () => json((d) => (d.contract.namedUsers[1]!['name'] = 'Bob\nBrown')),
    expect: {
      refused: 'contract.namedUsers[1].name',
      what: /control character U\+000A at character 4 \(this value is one line: no line breaks or tabs\)/,
    },
  },
  {
    id: 'D119',
    input: 'name with a right-to-left override',
    text: () => json((d) => (d.contract.namedUsers[1]!['name'] = 'Bob \u202Enworb')),
    expect: { refused: 'contract.namedUsers[1].name', what: /bidirectional control U\+202E at character 5/ },
  },
  {
    id: 'D120',
    input: 'customer.name with a first-strong isolate',
    text: () => json((d) => (d.contract['customer'] = { id: 'acme', name: 'Acme \u2068Corp' })),
    expect: { refused: 'contract.customer.name', what: /bidirectional control U\+2068 at character 6/ },
  },
  {
    id: 'D121',
    input: 'tier with a zero-width space',
    text: () => json((d) => (d.contract['tier'] = 'professional\u200B')),
    expect: { refused: 'contract.tier', what: /invisible character U\+200B at character 13/ },
  },
  {
    id: 'D122',
    input: 'module with BEL',
    text: () => json((d) => (d.contract['modules'] = ['api\u0007'])),
    expect: { refused: 'contract.modules[0]', what: /control character U\+0007 at character 4/ },
  },
  {
    id: 'D123',
    input: 'custom key holding BEL',
    text: () => json((d) => (d.contract['custom'] = { 'a\u0007': 1 })),
    expect: {
      refused: 'contract.custom["a\\u0007"]',
      what: /the key contains the control character U\+0007 at character 2/,
    },
  },
  {
    id: 'D124',
    input: 'name with an unpaired surrogate',
    text: () => json((d) => (d.contract.namedUsers[1]!['name'] = 'Bob \ud800')),
    expect: { refused: 'contract.namedUsers[1].name', what: /unpaired surrogate U\+D800 at character 5/ },
  },
  {
    id: 'D125',
    input: 'region with C1 control NEL (U+0085)',
    text: () => json((d) => (d.contract['region'] = 'eu\u0085')),
    expect: { refused: 'contract.region', what: /control character U\+0085 at character 3/ },
  },
  {
    id: 'D126',
    input: 'name with a byte order mark inside',
    text: () => json((d) => (d.contract.namedUsers[1]!['name'] = 'Bo\uFEFFb')),
    expect: { refused: 'contract.namedUsers[1].name', what: /invisible character U\+FEFF at character 3/ },
  },
  {
    id: 'D127',
    input: 'name with a soft hyphen',
    text: () => json((d) => (d.contract.namedUsers[1]!['name'] = 'Bob\u00ADBrown')),
    expect: { refused: 'contract.namedUsers[1].name', what: /invisible character U\+00AD at character 4/ },
  },
  {
    id: 'D128',
    input: 'name in Arabic script (no controls)',
    text: () => json((d) => (d.contract.namedUsers[1]!['name'] = 'عمر خالد')),
    expect: {
      accepted: (_a, p) => expect(p.after.namedUsers.find((u) => u.email === 'bob@acme.com')?.name).toBe('عمر خالد'),
      note: 'right-to-left letters are text, not controls',
    },
  },
  {
    id: 'D129',
    input: 'name with an emoji (a surrogate pair)',
    text: () => json((d) => (d.contract.namedUsers[1]!['name'] = 'Bob 🚀')),
    expect: {
      accepted: (_a, p) => expect(p.after.namedUsers.find((u) => u.email === 'bob@acme.com')?.name).toBe('Bob 🚀'),
      note: 'paired surrogates are valid Unicode',
    },
  },
  {
    id: 'D130',
    input: 'YAML: a key with a right-to-left override',
    file: 'amendment.yaml',
    text: () => 'amendmentId: a-1\n"sub\u202EmittedBy": x\n',
    expect: { refused: '["sub\\u202emittedBy"]', what: /the key contains the bidirectional control U\+202E/ },
  },
];

describe('amendment documents (JSON and YAML text, as the CLI, rule cases and tools read them)', () => {
  test.each(DOCS.map((c) => [c.id, c] as const))('%s', (_id, c) => runDocCase(c));
});

// ---- amendments as objects (the typed client's first step, before anything reaches Temporal) ----

function deepObject(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

interface ValueCase {
  id: string;
  boundary: string;
  input: string;
  run: () => unknown;
  refused: string;
  what: RegExp;
}

const VALUES: ValueCase[] = [
  {
    id: 'O001',
    boundary: 'client submit',
    input: 'object with custom nested 100,000 deep',
    run: () =>
      parseWith(
        AmendmentDocumentSchema,
        { ...base(), contract: { ...base().contract, custom: { x: deepObject(100_000) } } },
        'invalid amendment',
      ),
    refused: `contract.custom.x${'[0]'.repeat(9)}`,
    what: /^nested deeper than 64 levels \(from here down\)$/,
  },
  {
    id: 'O002',
    boundary: 'client submit',
    input: 'object that contains itself',
    run: () => {
      const d = base();
      (d.contract as Record<string, unknown>)['custom'] = { self: d };
      return parseWith(AmendmentDocumentSchema, d, 'invalid amendment');
    },
    refused: 'contract.custom.self.contract.custom.self.contract.custom.self.contract.custom.self',
    what: /^nested deeper than 64 levels \(from here down\)$/,
  },
  {
    id: 'O003',
    boundary: 'client submit',
    input: 'object with a 5 MB custom clause',
    run: () =>
      parseWith(
        AmendmentDocumentSchema,
        { ...base(), contract: { ...base().contract, custom: { n: big(5 * 1024 * 1024) } } },
        'invalid amendment',
      ),
    refused: '',
    what: /^52\d{5} bytes as JSON; an amendment is at most 4194304 bytes$/,
  },
  {
    id: 'O004',
    boundary: 'client submit',
    input: 'submittedBy a function',
    run: () => parseWith(AmendmentDocumentSchema, { ...base(), submittedBy: () => 'x' }, 'invalid amendment'),
    refused: 'submittedBy',
    what: /^not a JSON value \(a function\)$/,
  },
  {
    id: 'O005',
    boundary: 'client submit',
    input: 'seats a BigInt',
    run: () =>
      parseWith(
        AmendmentDocumentSchema,
        { ...base(), contract: { ...base().contract, seats: BigInt(5) } },
        'invalid amendment',
      ),
    refused: 'contract.seats',
    what: /^not a JSON value \(a bigint\)$/,
  },
  {
    id: 'O006',
    boundary: 'client submit',
    input: 'undefined instead of a document',
    run: () => parseWith(AmendmentDocumentSchema, undefined, 'invalid amendment'),
    refused: '',
    what: /expected object, received undefined/,
  },
  {
    id: 'O007',
    boundary: 'client submit',
    input: 'a Date inside a custom clause',
    run: () =>
      parseWith(
        AmendmentDocumentSchema,
        { ...base(), contract: { ...base().contract, custom: { signed: new Date(0) } } },
        'invalid amendment',
      ),
    refused: 'contract.custom.signed',
    what: /^not a JSON value \(a Date\)$/,
  },
  {
    id: 'O008',
    boundary: 'client submit options',
    input: 'retryBudgetSeconds 1e20',
    run: () => checkInput(SubmitOptionsSchema, { retryBudgetSeconds: 1e20 }, 'invalid submit options'),
    refused: 'retryBudgetSeconds',
    what: /at most 2592000 seconds \(30 days\)/,
  },
  {
    id: 'O009',
    boundary: 'client submit options',
    input: 'retryBudgetSeconds -1',
    run: () => checkInput(SubmitOptionsSchema, { retryBudgetSeconds: -1 }, 'invalid submit options'),
    refused: 'retryBudgetSeconds',
    what: /at least 1 second/,
  },
  {
    id: 'O010',
    boundary: 'client submit options',
    input: 'retryBudgetSeconds "300" (a string)',
    run: () => checkInput(SubmitOptionsSchema, { retryBudgetSeconds: '300' }, 'invalid submit options'),
    refused: 'retryBudgetSeconds',
    what: /expected number, received string/,
  },
  {
    id: 'O011',
    boundary: 'client submit options',
    input: 'rollback requested by "olga\\nadmin"',
    run: () =>
      checkInput(
        SubmitOptionsSchema,
        { rollback: { requestedBy: 'olga\nadmin', reason: 'x' } },
        'invalid submit options',
      ),
    refused: 'rollback.requestedBy',
    what: /control character U\+000A at character 5/,
  },
  {
    id: 'O012',
    boundary: 'client approve',
    input: 'by "dana" + zero-width space',
    run: () => checkInput(ApproveInputSchema, { by: 'dana\u200B' }, 'invalid approval'),
    refused: 'by',
    what: /invisible character U\+200B at character 5/,
  },
  {
    id: 'O013',
    boundary: 'client approve',
    input: 'comment of 3,000 characters',
    run: () => checkInput(ApproveInputSchema, { by: 'dana', comment: big(3000) }, 'invalid approval'),
    refused: 'comment',
    what: /at most 2000 characters/,
  },
  {
    id: 'O014',
    boundary: 'client approve',
    input: 'unknown field "role"',
    run: () => checkInput(ApproveInputSchema, { by: 'dana', role: 'admin' }, 'invalid approval'),
    refused: 'role',
    what: /unknown field/,
  },
  {
    id: 'O015',
    boundary: 'client approve',
    input: 'at "yesterday"',
    run: () => checkInput(ApproveInputSchema, { by: 'dana', at: 'yesterday' }, 'invalid approval'),
    refused: 'at',
    what: /an ISO date-time with an offset/,
  },
  {
    id: 'O016',
    boundary: 'client ids',
    input: 'amendment id "x\' OR 1=1" (a list query)',
    run: () => checkId('AMENDMENT_ID', "x' OR 1=1"),
    refused: 'AMENDMENT_ID',
    what: /"x' OR 1=1" is not an id of letters, digits/,
  },
];

describe('amendments and decisions as objects (the typed client)', () => {
  test.each(VALUES.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const err = inputErrorOf(c.run);
    const issue = issueAt(err, c.refused, c.what);
    table.add({
      id: c.id,
      boundary: c.boundary,
      input: c.input,
      outcome: 'refused, nothing sent',
      message: `${issue.path || '(root)'}: ${issue.message}`,
    });
  });
});

// ---- rules, targets, approvals, rule cases, webhooks ----------------------------------

const REFERENCE_RULES = readFileSync(join(ROOT, 'examples/reference/rules.yaml'), 'utf8');
const MINI_RULES =
  'version: 1\ntargets: [idp]\nrules:\n  - id: r1\n    on: { clause: namedUsers, kind: added }\n    actions:\n      - { target: idp, action: joinGroup, subject: "{user.email}", group: g }\n';
const rule = (extra: string): string => `version: 1\ntargets: [idp]\nrules:\n  - id: r1\n${extra}`;

const REFERENCE_TARGETS =
  'targets:\n  idp:\n    type: scim\n    baseUrl: http://127.0.0.1:8280/v2\n    auth: { bearerTokenEnv: TOKEN }\n  warehouse:\n    type: postgres\n    host: 127.0.0.1\n    port: 5432\n    database: warehouse\n    user: amendctl\n    password: { env: PGPASSWORD }\n';

interface FileCase {
  id: string;
  boundary: 'rules file' | 'targets file' | 'approvals file' | 'rule cases file' | 'webhook';
  input: string;
  file: string;
  run: (file: string) => unknown;
  refused: string;
  what: RegExp;
}

const rulesCase = (id: string, input: string, text: () => string, refused: string, what: RegExp): FileCase => ({
  id,
  boundary: 'rules file',
  input,
  file: 'rules.yaml',
  run: (f) => loadRuleset(text(), f),
  refused,
  what,
});
const targetsCase = (
  id: string,
  input: string,
  text: () => string,
  refused: string,
  what: RegExp,
  env: NodeJS.ProcessEnv = {},
): FileCase => ({
  id,
  boundary: 'targets file',
  input,
  file: 'targets.yaml',
  run: (f) => parseTargets(text(), f, env),
  refused,
  what,
});
const approvalsCase = (id: string, input: string, text: string, refused: string, what: RegExp): FileCase => ({
  id,
  boundary: 'approvals file',
  input,
  file: join(DIR, `${id}.yaml`),
  run: (f) => {
    writeFileSync(f, text);
    return loadGovernancePolicy(f);
  },
  refused,
  what,
});

const FILES: FileCase[] = [
  rulesCase('R001', 'empty rules file', () => '', '', /the document is empty/),
  rulesCase('R002', 'version: 2', () => MINI_RULES.replace('version: 1', 'version: 2'), 'version', /expected 1/),
  rulesCase('R003', 'no targets', () => 'version: 1\nrules: []\n', 'targets', /expected array, received undefined/),
  rulesCase(
    'R004',
    'targets: []',
    () => 'version: 1\ntargets: []\n',
    'targets',
    /Too small: expected array to have >=1 items/,
  ),
  rulesCase(
    'R005',
    'target name "IDP!"',
    () => 'version: 1\ntargets: ["IDP!"]\n',
    'targets[0]',
    /a target name \(a-z, 0-9, "_", "-"\)/,
  ),
  rulesCase('R006', 'unknown top-level key "rulez"', () => `${MINI_RULES}rulez: []\n`, 'rulez', /^unknown field$/),
  rulesCase(
    'R007',
    'rule key "whenn" (typo)',
    () => rule('    whenn: "true"\n'),
    'rules[0].whenn',
    /^rule "r1": unknown field$/,
  ),
  rulesCase(
    'R008',
    'rule id with spaces',
    () => 'version: 1\ntargets: [idp]\nrules:\n  - id: "my rule"\n',
    'rules[0].id',
    /rule "my rule": a rule id: letters, digits/,
  ),
  rulesCase(
    'R009',
    'duplicate rule id',
    () => 'version: 1\ntargets: [idp]\nrules:\n  - id: r1\n  - id: r1\n',
    'rules[1].id',
    /duplicate rule id "r1"/,
  ),
  rulesCase(
    'R010',
    'CEL syntax error in when',
    () => rule('    when: "after.seats >"\n'),
    'rules[0].when',
    /rule "r1": expected a CEL expression/,
  ),
  rulesCase(
    'R011',
    'template with broken CEL in subject',
    () => rule('    actions:\n      - { target: idp, action: joinGroup, subject: "{user.}", group: g }\n'),
    'rules[0].actions[0].subject',
    /expected a template with CEL in \{\.\.\.\}/,
  ),
  rulesCase(
    'R012',
    'action "deleteEverything"',
    () => rule('    actions:\n      - { target: idp, action: deleteEverything, subject: x }\n'),
    'rules[0].actions[0].action',
    /rule "r1": Invalid option: expected one of "ensureAccount"/,
  ),
  rulesCase(
    'R013',
    'joinGroup without group',
    () => rule('    actions:\n      - { target: idp, action: joinGroup, subject: x }\n'),
    'rules[0].actions[0].group',
    /joinGroup needs "group"/,
  ),
  rulesCase(
    'R014',
    'grantRole given a group',
    () => rule('    actions:\n      - { target: idp, action: grantRole, subject: x, role: r, group: g }\n'),
    'rules[0].actions[0].group',
    /grantRole takes no "group"/,
  ),
  rulesCase(
    'R015',
    'action on an unknown target',
    () => rule('    actions:\n      - { target: crm, action: joinGroup, subject: x, group: g }\n'),
    'rules[0].actions[0].target',
    /unknown target "crm" \(expected one of idp\)/,
  ),
  rulesCase(
    'R016',
    '"as" without "forEach"',
    () => rule('    actions:\n      - { target: idp, action: joinGroup, subject: x, group: g, as: m }\n'),
    'rules[0].actions[0].as',
    /"as" names the item of "forEach", which is missing/,
  ),
  rulesCase(
    'R017',
    'risk "extreme"',
    () => rule('    actions:\n      - { target: idp, action: joinGroup, subject: x, group: g, risk: extreme }\n'),
    'rules[0].actions[0].risk',
    /expected low, medium, high or a template giving one/,
  ),
  rulesCase(
    'R018',
    'role map for role "owner"',
    () => `${MINI_RULES}maps:\n  role:\n    owner: { idp: x }\n`,
    'maps.role.owner',
    /^unknown field$/,
  ),
  rulesCase(
    'R019',
    'module map to an unknown target',
    () => `${MINI_RULES}maps:\n  module:\n    "*": { crm: x }\n`,
    'maps.module["*"].crm',
    /unknown target "crm"/,
  ),
  rulesCase(
    'R020',
    'validation without a message',
    () => `${MINI_RULES}validations:\n  - id: v1\n    when: "true"\n`,
    'validations[0].message',
    /validation "v1": Invalid input: expected string, received undefined/,
  ),
  rulesCase(
    'R021',
    'on: clause "seatz"',
    () => rule('    on: { clause: seatz }\n'),
    'rules[0].on',
    /rule "r1": Invalid input/,
  ),
  rulesCase(
    'R022',
    'duplicate key in a rule',
    () => rule('    when: "true"\n    when: "false"\n'),
    'line 6, column 5',
    /duplicate key/,
  ),
  rulesCase(
    'R023',
    'description with a right-to-left override',
    () => `${MINI_RULES}description: "safe \u202Eelbisnopser"\n`,
    'description',
    /bidirectional control U\+202E at character 6/,
  ),
  rulesCase(
    'R024',
    '10 MB rules file',
    () => `${MINI_RULES}description: "${big(10 * 1024 * 1024)}"\n`,
    '',
    /bytes \(10\.0 MB\); a document is at most/,
  ),
  rulesCase(
    'R025',
    'rules nested 100 deep under description',
    () => `${MINI_RULES}description: ${nest('[', ']', 100)}\n`,
    'description[0][0][0][0][0][0][0][0][0][0][0]',
    /^nested deeper than 64 levels \(from here down\)$/,
  ),
  rulesCase(
    'R026',
    'the reference rules with a rule id twice',
    () => `${REFERENCE_RULES}\n  - id: named-user-added\n`,
    'rules[12].id',
    /duplicate rule id "named-user-added"/,
  ),
  {
    id: 'R027',
    boundary: 'rules file',
    input: 'AMENDCTL_RULES names a missing file',
    file: join(DIR, 'no-rules.yaml'),
    run: (f) => new FileRulesProvider(f),
    refused: '',
    what: /^no such file$/,
  },
  targetsCase('T001', 'empty targets file', () => '', '', /the document is empty/),
  targetsCase(
    'T002',
    'a list instead of a mapping',
    () => '- idp\n- warehouse\n',
    '',
    /expected object, received array/,
  ),
  targetsCase(
    'T003',
    '"target:" (typo for targets)',
    () => REFERENCE_TARGETS.replace('targets:', 'target:'),
    'target',
    /unknown field/,
  ),
  targetsCase(
    'T004',
    'target name "IdP"',
    () => REFERENCE_TARGETS.replace('  idp:', '  IdP:'),
    'targets.IdP',
    /^invalid name: a target name: a-z, 0-9, "-"$/,
  ),
  targetsCase(
    'T005',
    'connector type "ftp"',
    () => REFERENCE_TARGETS.replace('type: scim', 'type: ftp'),
    'targets.idp.type',
    /unknown connector type "ftp" \(known: postgres, scim, ldap, http, iam\)/,
  ),
  targetsCase(
    'T006',
    'type missing',
    () => REFERENCE_TARGETS.replace('    type: scim\n', ''),
    'targets.idp.type',
    /expected string, received undefined/,
  ),
  targetsCase(
    'T007',
    'scim baseUrl not a URL',
    () => REFERENCE_TARGETS.replace('http://127.0.0.1:8280/v2', 'not a url'),
    'targets.idp.baseUrl',
    /Invalid URL/,
  ),
  targetsCase(
    'T008',
    'scim baseUrl ftp://',
    () => REFERENCE_TARGETS.replace('http://127.0.0.1:8280/v2', 'ftp://idp.example/v2'),
    'targets.idp.baseUrl',
    /Invalid URL/,
  ),
  targetsCase(
    'T009',
    'scim auth by env and file at once',
    () =>
      REFERENCE_TARGETS.replace(
        'auth: { bearerTokenEnv: TOKEN }',
        'auth: { bearerTokenEnv: TOKEN, bearerTokenFile: /run/t }',
      ),
    'targets.idp.auth',
    /give bearerTokenEnv or bearerTokenFile, not both/,
  ),
  targetsCase(
    'T010',
    'scim "baseURL" (wrong case)',
    () => REFERENCE_TARGETS.replace('baseUrl:', 'baseURL:'),
    'targets.idp.baseURL',
    /unknown field/,
  ),
  targetsCase(
    'T011',
    'postgres port "abc"',
    () => REFERENCE_TARGETS.replace('port: 5432', 'port: abc'),
    'targets.warehouse.port',
    /expected number, received NaN/,
  ),
  targetsCase(
    'T012',
    'postgres port 70000',
    () => REFERENCE_TARGETS.replace('port: 5432', 'port: 70000'),
    'targets.warehouse.port',
    /Too big: expected number to be <=65535/,
  ),
  targetsCase(
    'T013',
    'postgres password written in clear',
    () => REFERENCE_TARGETS.replace('password: { env: PGPASSWORD }', 'password: hunter2'),
    'targets.warehouse.password',
    /Invalid input/,
  ),
  targetsCase(
    'T014',
    'provisioning batchSize 0',
    () => `${REFERENCE_TARGETS}    provisioning: { batchSize: 0 }\n`,
    'targets.warehouse.provisioning.batchSize',
    /Too small: expected number to be >=1/,
  ),
  targetsCase(
    'T015',
    'provisioning lanes 1000',
    () => `${REFERENCE_TARGETS}    provisioning: { lanes: 1000 }\n`,
    'targets.warehouse.provisioning.lanes',
    /Too big: expected number to be <=32/,
  ),
  targetsCase(
    'T016',
    'provisioning key "parallel"',
    () => `${REFERENCE_TARGETS}    provisioning: { parallel: 4 }\n`,
    'targets.warehouse.provisioning.parallel',
    /unknown field/,
  ),
  targetsCase(
    'T017',
    '${UNSET_VAR} with no default',
    () => REFERENCE_TARGETS.replace('127.0.0.1:8280', '${AMENDCTL_HOSTILE_UNSET}'),
    'targets.idp.baseUrl',
    /^\$\{AMENDCTL_HOSTILE_UNSET\} is not set$/,
  ),
  targetsCase(
    'T018',
    'an env value with a right-to-left override',
    () => REFERENCE_TARGETS.replace('host: 127.0.0.1', 'host: ${AMENDCTL_HOSTILE_HOST}'),
    'targets.warehouse.host',
    /^\$\{AMENDCTL_HOSTILE_HOST\} contains the bidirectional control U\+202E at character 4/,
    { AMENDCTL_HOSTILE_HOST: 'db.\u202Elacol' },
  ),
  targetsCase(
    'T019',
    'target idp twice',
    () => `${REFERENCE_TARGETS}  idp:\n    type: scim\n`,
    'line 13, column 3',
    /duplicate key/,
  ),
  targetsCase(
    'T020',
    '10 MB targets file',
    () => `${REFERENCE_TARGETS}# ${big(10 * 1024 * 1024)}\n`,
    '',
    /bytes \(10\.0 MB\); a document is at most/,
  ),
  targetsCase(
    'T021',
    'baseUrl with a right-to-left override',
    () => REFERENCE_TARGETS.replace('http://127.0.0.1:8280/v2', 'http://idp.example/\u202E2v'),
    'targets.idp.baseUrl',
    /bidirectional control U\+202E/,
  ),
  targetsCase(
    'T022',
    'ldap without bindPassword',
    () => 'targets:\n  dir:\n    type: ldap\n    url: ldap://127.0.0.1:389\n    bindDn: cn=admin\n    baseDn: dc=x\n',
    'targets.dir.bindPassword',
    /Invalid input/,
  ),
  targetsCase(
    'T023',
    'iam key "accessKey" (not accessKeyId)',
    () => 'targets:\n  aws:\n    type: iam\n    accessKey: { env: K }\n',
    'targets.aws.accessKey',
    /unknown field/,
  ),
  approvalsCase('A001', 'required: 0', 'required: 0\n', 'required', /Too small: expected number to be >=1/),
  approvalsCase('A002', 'required: "two"', 'required: two\n', 'required', /expected number, received string/),
  approvalsCase(
    'A003',
    'deadline "3 days"',
    'deadline: 3 days\n',
    'deadline',
    /a duration: whole seconds, or a number with s, m, h or d/,
  ),
  approvalsCase('A004', 'deadline -5', 'deadline: -5\n', 'deadline', /Too small: expected number to be >0/),
  approvalsCase(
    'A005',
    'onDeadline escalate, no escalation',
    'deadline: 72h\nonDeadline: escalate\n',
    'escalation',
    /onDeadline: escalate needs an escalation group/,
  ),
  approvalsCase(
    'A006',
    'approvers a string, not a list',
    'approvers: dana\n',
    'approvers',
    /expected array, received string/,
  ),
  approvalsCase(
    'A007',
    'group:security with no groups',
    'approvers: ["group:security"]\n',
    'approvers',
    /group:security names no group in groups/,
  ),
  approvalsCase('A008', '"approver:" (typo)', 'approver: [dana]\n', 'approver', /unknown field/),
  approvalsCase(
    'A009',
    'escalation with an unknown key',
    'deadline: 1h\nonDeadline: escalate\nescalation: { approvers: [ciso], timeout: 1h }\n',
    'escalation.timeout',
    /unknown field/,
  ),
  approvalsCase(
    'A010',
    'an approver name with a zero-width space',
    'approvers: ["dan\u200Ba"]\n',
    'approvers[0]',
    /invisible character U\+200B at character 4/,
  ),
  {
    id: 'A011',
    boundary: 'approvals file',
    input: 'AMENDCTL_APPROVALS names a directory',
    file: DIR,
    run: (f) => loadGovernancePolicy(f),
    refused: '',
    what: /^a directory, expected a file$/,
  },
  {
    id: 'A012',
    boundary: 'approvals file',
    input: 'approvals given as JSON null',
    file: 'approvals.json',
    run: (f) => governancePolicyFrom(null, f),
    refused: '',
    what: /expected object, received null/,
  },
  {
    id: 'K001',
    boundary: 'rule cases file',
    input: 'cases: []',
    file: 'cases.yaml',
    run: (f) => loadCases('cases: []\n', f),
    refused: 'cases',
    what: /Too small: expected array to have >=1 items/,
  },
  {
    id: 'K002',
    boundary: 'rule cases file',
    input: 'case key "expects" (typo)',
    file: 'cases.yaml',
    run: (f) => loadCases('cases:\n  - name: a\n    amendment: a.json\n    expects: {}\n', f),
    refused: 'cases[0].expects',
    what: /unknown field/,
  },
  {
    id: 'K003',
    boundary: 'rule cases file',
    input: 'history and applied both given',
    file: 'cases.yaml',
    run: (f) =>
      loadCases(
        'cases:\n  - name: a\n    history: [x.json]\n    applied: {}\n    amendment: a.json\n    expect: {}\n',
        f,
      ),
    refused: 'cases[0].applied',
    what: /give history or applied, not both/,
  },
  {
    id: 'K004',
    boundary: 'rule cases file',
    input: 'inline amendment with a Cyrillic email',
    file: 'cases.yaml',
    run: (f) => {
      const doc = base();
      doc.contract.namedUsers[1]!['email'] = 'bоb@acme.com';
      return runCases(
        RULES,
        loadCases(`cases:\n  - name: a\n    amendment: ${JSON.stringify(doc)}\n    expect: {}\n`, f),
        f,
        () => ({ text: '', file: '' }),
      );
    },
    refused: 'cases[0].amendment.contract.namedUsers[1].email',
    what: /mixes Latin and Cyrillic letters in "bоb"/,
  },
  {
    id: 'W001',
    boundary: 'webhook',
    input: 'baseline record with a Cyrillic "о" in bob@',
    file: 'baseline.json',
    run: (f) =>
      amendmentFromWebhook(
        JSON.parse(
          readFileSync(join(ROOT, 'examples/webhook/baseline.json'), 'utf8').replace('bob@acme.com', 'bоb@acme.com'),
        ),
        webhookMapping(),
        f,
      ),
    refused: 'contract.namedUsers[1].email',
    what: /mixes Latin and Cyrillic letters in "bоb"/,
  },
  {
    id: 'W002',
    boundary: 'webhook',
    input: 'baseline record with a name holding NUL',
    file: 'baseline.json',
    run: (f) =>
      amendmentFromWebhook(
        JSON.parse(
          readFileSync(join(ROOT, 'examples/webhook/baseline.json'), 'utf8').replace('Bob Brown', 'Bob\\u0000Brown'),
        ),
        webhookMapping(),
        f,
      ),
    refused: 'contract.namedUsers[1].name',
    what: /control character U\+0000 at character 4/,
  },
];

function webhookMapping() {
  return loadWebhookMapping(
    readFileSync(join(ROOT, 'examples/webhook/mapping.yaml'), 'utf8'),
    'examples/webhook/mapping.yaml',
  );
}

describe('rules, targets and approvals files, rule cases and webhooks', () => {
  test.each(FILES.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const err = inputErrorOf(() => c.run(c.file));
    const issue = issueAt(err, c.refused, c.what, c.file);
    table.add({
      id: c.id,
      boundary: c.boundary,
      input: c.input,
      outcome: 'refused',
      message: `${issue.path || '(root)'}: ${issue.message}`,
    });
  });

  test('R028 a rules file broken while the worker runs: the error names the file and path; fixed, planning goes on', () => {
    const f = join(DIR, 'hot-rules.yaml');
    writeFileSync(f, MINI_RULES);
    const provider = new FileRulesProvider(f);
    writeFileSync(
      f,
      `${MINI_RULES}    when: "after.seats >"\n    # grown: a new size, so the provider reads it again\n`,
    );
    const err = inputErrorOf(() => provider.current());
    const issue = issueAt(err, 'rules[0].when', /rule "r1": expected a CEL expression/, f);
    writeFileSync(f, MINI_RULES.replace('group: g', 'group: g2'));
    expect(provider.current().rules[0]!.actions).toHaveLength(1);
    table.add({
      id: 'R028',
      boundary: 'rules file',
      input: 'rules file broken after the worker started',
      outcome: 'refused; fixed file used',
      message: `${issue.path}: ${issue.message}`,
    });
  });

  test('T024 an env value with a line break (YAML injection): one value, no keys of its own', () => {
    const host = '127.0.0.1\n    ssl: true\n    managedRolePrefix: ""';
    const t = parseTargets(
      REFERENCE_TARGETS.replace('host: 127.0.0.1', 'host: ${AMENDCTL_HOSTILE_HOST}'),
      'targets.yaml',
      { AMENDCTL_HOSTILE_HOST: host },
    ).targets['warehouse']!;
    expect(t.config).toMatchObject({ host, ssl: false, managedRolePrefix: '' });
    table.add({
      id: 'T024',
      boundary: 'targets file',
      input: 'an env value with a line break (YAML injection)',
      outcome: 'accepted as one value',
      message: `targets.warehouse.host is the variable's text; ssl stays false`,
    });
  });
});

// ---- the CLI's arguments --------------------------------------------------------------

interface CliCase {
  id: string;
  input: string;
  argv: () => string[];
  code: number;
  err: RegExp;
}

const CLOSED = ['--address', '127.0.0.1:1'];
let danaKeyFile: string | undefined;
/** dana's own approval key (a file made once for these cases). */
function personalKey(): string {
  if (!danaKeyFile) {
    danaKeyFile = join(mkdtempSync(join(tmpdir(), 'amendctl-cli-key-')), 'dana.key');
    writeFileSync(danaKeyFile, stringifyYaml(newSigningKey('dana-laptop', 'dana').file), { mode: 0o600 });
  }
  return danaKeyFile;
}
const file = (name: string, text: string): string => {
  const p = join(DIR, name);
  writeFileSync(p, text);
  return p;
};
const GOOD = (): string =>
  file(
    'good.json',
    json(() => undefined),
  );

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    const code = await main(argv, { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) });
    return { code, out, err };
  } finally {
    process.chdir(cwd);
  }
}

const CLI: CliCase[] = [
  { id: 'C001', input: 'amendctl (no command)', argv: () => [], code: 2, err: /^$/ },
  {
    id: 'C002',
    input: 'amendctl sumbit (unknown command)',
    argv: () => ['sumbit'],
    code: 2,
    err: /^amendctl: unknown command 'sumbit'/,
  },
  {
    id: 'C003',
    input: 'unknown command holding a right-to-left override',
    argv: () => ['sub\u202Emit'],
    code: 2,
    err: /^amendctl: unknown command 'sub<U\+202E>mit'/,
  },
  {
    id: 'C004',
    input: 'plan --bogus',
    argv: () => ['plan', GOOD(), '--bogus'],
    code: 2,
    err: /^amendctl plan: Unknown option '--bogus'/,
  },
  {
    id: 'C005',
    input: 'plan FILE --rules (no value)',
    argv: () => ['plan', GOOD(), '--rules'],
    code: 2,
    err: /Option '--rules <value>' argument missing/,
  },
  { id: 'C006', input: 'plan (no file)', argv: () => ['plan'], code: 2, err: /expected one amendment FILE/ },
  {
    id: 'C007',
    input: 'plan a.json b.json',
    argv: () => ['plan', GOOD(), GOOD()],
    code: 2,
    err: /expected one amendment FILE/,
  },
  {
    id: 'C008',
    input: 'plan of a missing file',
    argv: () => ['plan', join(DIR, 'missing.json')],
    code: 2,
    err: /cannot read the amendment:\n {2}\S+missing\.json: \(root\): no such file/,
  },
  {
    id: 'C009',
    input: 'plan of a directory',
    argv: () => ['plan', DIR],
    code: 2,
    err: /: \(root\): a directory, expected a file/,
  },
  {
    id: 'C010',
    input: 'plan /dev/zero (endless)',
    argv: () => ['plan', '/dev/zero'],
    code: 2,
    err: /\/dev\/zero: \(root\): not a regular file \(a device, FIFO or socket\)/,
  },
  {
    id: 'C011',
    input: 'plan of a file name holding NUL',
    argv: () => ['plan', 'a\u0000b.json'],
    code: 2,
    err: /a<U\+0000>b\.json: \(root\): not a usable file name \(it contains a NUL character\)/,
  },
  {
    id: 'C012',
    input: 'plan of a 5,000-character file name',
    argv: () => ['plan', `${big(5000)}.json`],
    code: 2,
    err: /x{300}… \(5005 characters\): \(root\): the file name is too long/,
  },
  {
    id: 'C013',
    input: 'plan of a 5 MB file',
    argv: () => [
      'plan',
      file(
        'huge.json',
        json((d) => (d.contract['custom'] = { n: big(5 * 1024 * 1024) })),
      ),
    ],
    code: 2,
    err: /huge\.json: \(root\): 52\d{5} bytes; a document is at most 4194304 bytes/,
  },
  {
    id: 'C014',
    input: 'plan --applied of a file that is no state',
    argv: () => ['plan', GOOD(), '--applied', file('state.json', '{"contract": 5, "sequence": 1}')],
    code: 2,
    err: /invalid applied state .*\n {2}\S+state\.json: contract: Invalid input: expected object, received number/,
  },
  {
    id: 'C015',
    input: 'plan --rules of broken rules',
    argv: () => ['plan', GOOD(), '--rules', file('bad-rules.yaml', rule('    when: "after.seats >"\n'))],
    code: 2,
    err: /bad-rules\.yaml: rules\[0\]\.when: rule "r1": expected a CEL expression/,
  },
  {
    id: 'C016',
    input: 'plan of JSON with a duplicate key',
    argv: () => ['plan', file('dup.json', '{"sequence": 1, "sequence": 2}')],
    code: 2,
    err: /dup\.json: sequence \(line 1, column 17\): duplicate key "sequence"/,
  },
  { id: 'C017', input: 'submit (no file)', argv: () => ['submit', ...CLOSED], code: 2, err: /expected one FILE/ },
  {
    id: 'C018',
    input: 'submit --retry-budget abc',
    argv: () => ['submit', GOOD(), '--retry-budget', 'abc', ...CLOSED],
    code: 2,
    err: /--retry-budget takes a whole number of seconds from 1 to 2592000 \(30 days\), got "abc"/,
  },
  {
    id: 'C019',
    input: 'submit --retry-budget 0',
    argv: () => ['submit', GOOD(), '--retry-budget', '0', ...CLOSED],
    code: 2,
    err: /--retry-budget takes a whole number of seconds from 1 to 2592000/,
  },
  {
    id: 'C020',
    input: 'submit --retry-budget 1e20',
    argv: () => ['submit', GOOD(), '--retry-budget', '1e20', ...CLOSED],
    code: 2,
    err: /got "1e20"/,
  },
  {
    id: 'C021',
    input: 'submit --retry-budget 99999999 (3 years)',
    argv: () => ['submit', GOOD(), '--retry-budget', '99999999', ...CLOSED],
    code: 2,
    err: /got "99999999"/,
  },
  {
    id: 'C022',
    input: 'submit of an invalid amendment',
    argv: () => [
      'submit',
      file(
        'bad.json',
        json((d) => (d.contract['status'] = 'open')),
      ),
      ...CLOSED,
    ],
    code: 2,
    err: /bad\.json: contract\.status: Invalid option/,
  },
  { id: 'C023', input: 'status (no id)', argv: () => ['status', ...CLOSED], code: 2, err: /expected one AMENDMENT_ID/ },
  {
    id: 'C024',
    input: 'status ../../etc/passwd',
    argv: () => ['status', '../../etc/passwd', ...CLOSED],
    code: 2,
    err: /invalid AMENDMENT_ID:\n {2}AMENDMENT_ID: "\.\.\/\.\.\/etc\/passwd" is not an id of letters, digits/,
  },
  {
    id: 'C025',
    input: 'status "acme msa" (a space)',
    argv: () => ['status', 'acme msa', ...CLOSED],
    code: 2,
    err: /AMENDMENT_ID: "acme msa" is not an id/,
  },
  {
    id: 'C026',
    input: 'status X --operations --limit 0',
    argv: () => ['status', 'acme-msa-001', '--operations', '--limit', '0', ...CLOSED],
    code: 2,
    err: /--limit takes a whole number from 1 to 1000, got "0"/,
  },
  {
    id: 'C027',
    input: 'status X --operations --limit 1000000',
    argv: () => ['status', 'acme-msa-001', '--operations', '--limit', '1000000', ...CLOSED],
    code: 2,
    err: /--limit takes a whole number from 1 to 1000, got "1000000"/,
  },
  {
    id: 'C028',
    input: 'status X --operations --offset=-1',
    argv: () => ['status', 'acme-msa-001', '--operations', '--offset=-1', ...CLOSED],
    code: 2,
    err: /--offset takes a whole number, got "-1"/,
  },
  {
    id: 'C029',
    input: 'status X --operations --offset 0x10',
    argv: () => ['status', 'acme-msa-001', '--operations', '--offset', '0x10', ...CLOSED],
    code: 2,
    err: /--offset takes a whole number, got "0x10"/,
  },
  {
    id: 'C030',
    input: "approve X (no --by, a service's key)",
    argv: () => ['approve', 'acme-msa-001', ...CLOSED],
    code: 2,
    err: /key test-harness is a service's key: say whom it signs for with --by USER/,
  },
  {
    id: 'C031',
    input: 'approve X --by ""',
    argv: () => ['approve', 'acme-msa-001', '--by', '', ...CLOSED],
    code: 2,
    err: /key test-harness is a service's key: say whom it signs for with --by USER/,
  },
  {
    id: 'C032',
    input: 'approve X --by "   "',
    argv: () => ['approve', 'acme-msa-001', '--by', '   ', ...CLOSED],
    code: 2,
    err: /invalid approval:\n {2}by: who \("by"\) is required \(not only spaces\)/,
  },
  {
    id: 'C033',
    input: 'approve X --by "dana" + right-to-left override',
    argv: () => ['approve', 'acme-msa-001', '--by', 'dana\u202E', ...CLOSED],
    code: 2,
    err: /by: contains the bidirectional control U\+202E at character 5/,
  },
  {
    id: 'C034',
    input: 'approve X --by (300 characters)',
    argv: () => ['approve', 'acme-msa-001', '--by', big(300), ...CLOSED],
    code: 2,
    err: /by: at most 256 characters/,
  },
  {
    id: 'C035',
    input: 'approve X --comment (3,000 characters)',
    argv: () => ['approve', 'acme-msa-001', '--by', 'dana', '--comment', big(3000), ...CLOSED],
    code: 2,
    err: /comment: at most 2000 characters/,
  },
  {
    id: 'C036',
    input: 'approve "bad id!" --by dana',
    argv: () => ['approve', 'bad id!', '--by', 'dana', ...CLOSED],
    code: 2,
    err: /AMENDMENT_ID: "bad id!" is not an id/,
  },
  {
    id: 'C037',
    input: 'reject X --by dana (no reason)',
    argv: () => ['reject', 'acme-msa-001', '--by', 'dana', ...CLOSED],
    code: 2,
    err: /expected AMENDMENT_ID and --reason TEXT/,
  },
  {
    id: 'C037a',
    input: 'approve X --key (a file that is not there)',
    argv: () => ['approve', 'acme-msa-001', '--key', '/nonexistent/dana.key', ...CLOSED],
    code: 2,
    err: /^amendctl approve: --key \/nonexistent\/dana\.key: cannot read the approval key: no such file/,
  },
  {
    id: 'C037b',
    input: "approve X --key (someone's key) --by another",
    argv: () => ['approve', 'acme-msa-001', '--key', personalKey(), '--by', 'mallory', ...CLOSED],
    code: 2,
    err: /--by mallory: this key is dana's and signs only as dana/,
  },
  {
    id: 'C038',
    input: 'reject X --by dana --reason "  "',
    argv: () => ['reject', 'acme-msa-001', '--by', 'dana', '--reason', '  ', ...CLOSED],
    code: 2,
    err: /invalid rejection:\n {2}reason: a reason is required \(not only spaces\)/,
  },
  {
    id: 'C039',
    input: 'cancel X --by "olga\\nadmin"',
    argv: () => ['cancel', 'acme-msa-001', '--by', 'olga\nadmin', '--reason', 'x', ...CLOSED],
    code: 2,
    err: /by: contains the control character U\+000A at character 5/,
  },
  {
    id: 'C040',
    input: 'reverse X --reason (3,000 characters)',
    argv: () => ['reverse', 'acme-msa-001', '--by', 'dana', '--reason', big(3000), ...CLOSED],
    code: 2,
    err: /^amendctl reverse: invalid reversal request:\n {2}reason: at most 2000 characters/,
  },
  {
    id: 'C040a',
    input: 'rollback (the former name of reverse) X --by dana (no reason)',
    argv: () => ['rollback', 'acme-msa-001', '--by', 'dana', ...CLOSED],
    code: 2,
    err: /^amendctl rollback: expected AMENDMENT_ID, --by USER and --reason TEXT\nusage: amendctl reverse /,
  },
  {
    id: 'C041',
    input: 'contract (no id)',
    argv: () => ['contract', ...CLOSED],
    code: 2,
    err: /expected one CONTRACT_ID/,
  },
  {
    id: 'C042',
    input: 'contract "acme msa"',
    argv: () => ['contract', 'acme msa', ...CLOSED],
    code: 2,
    err: /invalid CONTRACT_ID:\n {2}CONTRACT_ID: "acme msa" is not an id/,
  },
  {
    id: 'C043',
    input: 'contract X --by dana (not a release)',
    argv: () => ['contract', 'acme-msa', '--by', 'dana', ...CLOSED],
    code: 2,
    err: /--by and --reason go with release/,
  },
  {
    id: 'C044',
    input: 'contract release X --by dana (no reason)',
    argv: () => ['contract', 'release', 'acme-msa', '--by', 'dana', ...CLOSED],
    code: 2,
    err: /release needs --by USER and --reason TEXT/,
  },
  {
    id: 'C045',
    input: 'contract release X --reason with a right-to-left override',
    argv: () => ['contract', 'release', 'acme-msa', '--by', 'dana', '--reason', 'ok \u202Edenifer', ...CLOSED],
    code: 2,
    err: /invalid release:\n {2}reason: contains the bidirectional control U\+202E at character 4/,
  },
  {
    id: 'C046',
    input: 'audit X --format xml',
    argv: () => ['audit', 'acme-msa-001', '--format', 'xml', ...CLOSED],
    code: 2,
    err: /--format is one of json, csv, md, got "xml"/,
  },
  {
    id: 'C047',
    input: 'audit --contract "x\' OR ContractId != \'" (a list query)',
    argv: () => ['audit', '--contract', "x' OR ContractId != '", ...CLOSED],
    code: 2,
    err: /CONTRACT_ID: "x' OR ContractId != '" is not an id/,
  },
  {
    id: 'C048',
    input: 'audit verify extra-argument',
    argv: () => ['audit', 'verify', 'extra', ...CLOSED],
    code: 2,
    err: /verify takes no other argument/,
  },
  {
    id: 'C049',
    input: 'dev --port abc',
    argv: () => ['dev', '--port', 'abc'],
    code: 2,
    err: /--port takes a port number \(1-65535\), got "abc"/,
  },
  {
    id: 'C050',
    input: 'dev --port 70000',
    argv: () => ['dev', '--port', '70000'],
    code: 2,
    err: /--port takes a port number \(1-65535\), got "70000"/,
  },
  {
    id: 'C051',
    input: 'codec-server --port 0',
    argv: () => ['codec-server', '--port', '0'],
    code: 2,
    err: /--port takes a port number \(1-65535\), got "0"/,
  },
  { id: 'C052', input: 'rules (no subcommand)', argv: () => ['rules'], code: 2, err: /expected a subcommand/ },
  {
    id: 'C053',
    input: 'rules frobnicate',
    argv: () => ['rules', 'frobnicate'],
    code: 2,
    err: /unknown subcommand 'frobnicate'/,
  },
  {
    id: 'C054',
    input: 'rules validate (no file)',
    argv: () => ['rules', 'validate'],
    code: 2,
    err: /expected one RULES file/,
  },
  {
    id: 'C055',
    input: 'rules validate of a missing file',
    argv: () => ['rules', 'validate', join(DIR, 'none.yaml')],
    code: 2,
    err: /cannot read the rules:\n {2}\S+none\.yaml: \(root\): no such file/,
  },
  {
    id: 'C056',
    input: 'rules test RULES (no cases)',
    argv: () => ['rules', 'test', 'examples/reference/rules.yaml'],
    code: 2,
    err: /expected RULES and CASES/,
  },
  {
    id: 'C057',
    input: 'rules test with a broken cases file',
    argv: () => ['rules', 'test', 'examples/reference/rules.yaml', file('cases.yaml', 'cases:\n  - name: a\n')],
    code: 2,
    err: /invalid rule cases:\n {2}\S+cases\.yaml: cases\[0\]\.amendment: Invalid input/,
  },
  {
    id: 'C058',
    input: 'replay (no history)',
    argv: () => ['replay'],
    code: 2,
    err: /expected at least one history file/,
  },
];

describe("the CLI's arguments (main() in process; Temporal commands pointed at a closed port)", () => {
  test.each(CLI.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    const r = await cli(c.argv());
    expect({ code: r.code, err: r.err }).toEqual({ code: c.code, err: expect.stringMatching(c.err) });
    if (c.id === 'C001') expect(r.out).toMatch(/^amendctl: contract amendments turned into access changes/);
    // Clear: no stack trace, nothing that can forge a line or reorder the terminal's text.
    expect(r.err).not.toMatch(/\n\s+at /);
    // eslint-disable-next-line no-control-regex -- control characters must not reach the terminal
    expect(r.err).not.toMatch(/[\u0000-\u0008\u000B-\u001F\u202A-\u202E\u2066-\u2069]/);
    table.add({
      id: c.id,
      boundary: 'CLI arguments',
      input: c.input,
      outcome: `exit ${r.code}`,
      message: r.err || r.out.split('\n')[0]!,
    });
  });
});

describe('the table', () => {
  test('every case is in the table, and with the workflow file there are at least 200', () => {
    expect(table.rows.length).toBe(DOCS.length + VALUES.length + FILES.length + 2 + CLI.length);
    expect(table.rows.length).toBeGreaterThanOrEqual(150);
    expect(table.rows.length + WORKFLOW_CASES.length).toBeGreaterThanOrEqual(200);
    for (const r of table.rows) expect(r.message).not.toBe('');
    process.stdout.write(
      `  hostile input: ${table.rows.length} pure cases here, ${WORKFLOW_CASES.length} in test/hostile/workflows.test.ts: ${table.rows.length + WORKFLOW_CASES.length} in all\n`,
    );
  });
});
