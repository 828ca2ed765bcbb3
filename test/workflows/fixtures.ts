/** Amendment documents for workflow tests: one customer (and email domain) per test, so tests never share accounts. */
import { randomBytes } from 'node:crypto';
import type { AmendmentInput } from '../../src/domain/amendment';
import type { Role } from '../../src/domain/contract';

export interface Customer {
  id: string;
  contractId: string;
  domain: string;
  email(local: string): string;
}

export function customer(tag: string): Customer {
  const id = `${tag}-${randomBytes(3).toString('hex')}`;
  const domain = `${id}.test`;
  return { id, contractId: `${id}-msa`, domain, email: (local) => `${local}@${domain}` };
}

export function baseline(
  c: Customer,
  users: Array<[string, Role]>,
  opts: { modules?: string[]; seats?: number; amendmentId?: string; submittedBy?: string } = {},
): AmendmentInput {
  return {
    amendmentId: opts.amendmentId ?? `${c.id}-001`,
    contractId: c.contractId,
    sequence: 1,
    submittedBy: opts.submittedBy ?? 'contracts-system',
    contract: {
      customer: { id: c.id, name: `Customer ${c.id}` },
      status: 'active',
      tier: 'professional',
      seats: opts.seats ?? 10,
      modules: opts.modules ?? ['analytics'],
      namedUsers: users.map(([local, role]) => ({
        email: c.email(local),
        name: local[0]!.toUpperCase() + local.slice(1),
        role,
      })),
      term: { start: '2026-01-01' },
      region: 'eu',
      custom: {},
    },
  };
}

export function changes(
  c: Customer,
  sequence: number,
  ops: NonNullable<AmendmentInput['changes']>,
  opts: { submittedBy?: string; amendmentId?: string } = {},
): AmendmentInput {
  return {
    amendmentId: opts.amendmentId ?? `${c.id}-${String(sequence).padStart(3, '0')}`,
    contractId: c.contractId,
    sequence,
    submittedBy: opts.submittedBy ?? 'contracts-system',
    changes: ops,
  };
}
