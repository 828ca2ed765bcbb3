import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../src/domain/errors';
import { amendmentFromWebhook, loadWebhookMapping } from '../../src/api/webhooks/mapping';
import { ROOT } from '../domain/support/reference';

const mapping = loadWebhookMapping(
  readFileSync(join(ROOT, 'examples/webhook/mapping.yaml'), 'utf8'),
  'examples/webhook/mapping.yaml',
);
const payload = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(ROOT, 'examples/webhook', name), 'utf8')) as Record<string, unknown>;

describe('webhook payload mapped into an amendment', () => {
  it('an amendment record (linked to its parent) becomes set edits', () => {
    const a = amendmentFromWebhook(payload('amendment-02.json'), mapping, 'amendment-02.json');
    expect(a).toMatchObject({
      amendmentId: 'acme-msa-002',
      contractId: 'acme-msa',
      sequence: 2,
      submittedBy: 'ironclad',
    });
    expect(a.changes).toEqual([
      { op: 'set', path: 'modules', value: ['analytics', 'billing'] },
      {
        op: 'set',
        path: 'namedUsers',
        value: [
          { email: 'alice@acme.com', name: 'Alice Adams', role: 'admin' },
          { email: 'bob@acme.com', name: 'Bob Brown', role: 'member' },
          { email: 'carol@acme.com', name: 'Carol Clark', role: 'viewer' },
          { email: 'dave@acme.com', name: 'Dave Davis', role: 'member' },
        ],
      },
    ]);
  });

  it('a baseline record (sequence 1, no parent) becomes the whole contract', () => {
    const a = amendmentFromWebhook(payload('baseline.json'), mapping);
    expect(a.contractId).toBe('acme-msa');
    expect(a.contract).toMatchObject({
      customer: { id: 'acme', name: 'Acme Corp' },
      status: 'active',
      tier: 'professional',
      seats: 5,
      modules: ['analytics'],
      term: { start: '2025-01-01', end: '2026-12-31' },
      region: 'eu',
    });
  });

  it('a property of the wrong type or an unmapped value is refused with the file and path', () => {
    const p = payload('amendment-02.json');
    const props = p['properties'] as Record<string, unknown>;
    props['licensedSeats'] = { type: 'string', value: 'ten' };
    props['contractStatus'] = { type: 'string', value: 'Paused' };
    let err: unknown;
    try {
      amendmentFromWebhook(p, mapping, 'hook.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues).toEqual([
      {
        file: 'hook.json',
        path: 'properties.contractStatus.value',
        message: 'expected one of Active, Suspended, Terminated for status, got "Paused"',
      },
      {
        file: 'hook.json',
        path: 'properties.licensedSeats.type',
        message: 'expected a number property for seats, got string',
      },
    ]);
  });

  it('a malformed mapping is refused with the file and path', () => {
    expect(() => loadWebhookMapping('amendmentId: { from: id }\nfields: []\n', 'm.yaml')).toThrow(
      /m\.yaml: contractId/,
    );
  });
});
