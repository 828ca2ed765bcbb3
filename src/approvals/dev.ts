/**
 * The approval keys of the embedded default (`amendctl dev`), made once in .data/ (mode 0600) and
 * reused: the dev API's key, which vouches for the people it signs in (the inbox), and the demo
 * approver's own key (`amendctl approve --key .data/demo-approver.key`). The trust file the dev
 * worker reads is written from them on every start. A real deployment makes its keys with
 * `amendctl approval-key new` and keeps the private halves where only their holders read them.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { ensureSecretFile, PROJECT_ROOT } from '../codec';
import { newSigningKey, readSigningKeyFile, trustEntry } from './token';

const DATA = resolve(PROJECT_ROOT, '.data');
export const DEV_APPROVAL_FILES = {
  /** The dev API's key (a service's: it vouches for whom it signed in). */
  api: resolve(DATA, 'approval-api.key'),
  /** demo-approver's own key: the demo and a newcomer approve with it. */
  demoApprover: resolve(DATA, 'demo-approver.key'),
  /** What the dev worker trusts (AMENDCTL_APPROVAL_KEYS). */
  trust: resolve(DATA, 'approval-keys.yaml'),
} as const;

export const DEMO_APPROVER = 'demo-approver';

export function ensureDevApprovalKeys(): typeof DEV_APPROVAL_FILES {
  const f = DEV_APPROVAL_FILES;
  ensureSecretFile(f.api, () => stringify(newSigningKey('dev-api').file).trimEnd());
  ensureSecretFile(f.demoApprover, () => stringify(newSigningKey('dev-demo-approver', DEMO_APPROVER).file).trimEnd());
  const keys = [f.api, f.demoApprover].map((file) => trustEntry(readSigningKeyFile(file)));
  writeFileSync(
    f.trust,
    `# Written by amendctl dev: the keys whose signatures prove an approver to the dev worker.\n${stringify({ keys })}`,
  );
  return f;
}
