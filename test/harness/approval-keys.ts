/**
 * The approval keys of a test run (issue 12): a key trusted to vouch for any approver, as the
 * API server's is, whose private half the tests' clients sign with (AMENDCTL_APPROVER_KEY), and
 * the trust file every worker of the run reads (AMENDCTL_APPROVAL_KEYS). Tests about forged or
 * personal proofs make keys of their own.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { newSigningKey } from '../../src/approvals/token';

export function writeApprovalKeys(dir: string): { AMENDCTL_APPROVAL_KEYS: string; AMENDCTL_APPROVER_KEY: string } {
  mkdirSync(dir, { recursive: true });
  const { file, trust } = newSigningKey('test-harness');
  const keyFile = join(dir, 'approval-signing.key');
  const trustFile = join(dir, 'approval-keys.yaml');
  writeFileSync(keyFile, stringify(file), { mode: 0o600 });
  writeFileSync(trustFile, stringify({ keys: [trust] }));
  return { AMENDCTL_APPROVAL_KEYS: trustFile, AMENDCTL_APPROVER_KEY: keyFile };
}
