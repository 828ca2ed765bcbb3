/**
 * Credentials are named in target configuration, never written there: an environment
 * variable or a file (a mounted secret). They are read in the worker, on use.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { PermanentTargetError } from './types';

export const SecretRefSchema = z.union([
  z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }).strict(),
  z.object({ file: z.string().min(1) }).strict(),
]);
export type SecretRef = z.infer<typeof SecretRefSchema>;

export function secretFrom(ref: SecretRef, what: string, env: NodeJS.ProcessEnv = process.env): string {
  if ('env' in ref) {
    const v = env[ref.env];
    if (v === undefined || v === '') throw new PermanentTargetError('TargetMisconfigured', `${what}: environment variable ${ref.env} is not set`);
    return v;
  }
  try {
    return readFileSync(ref.file, 'utf8').trim();
  } catch (err) {
    throw new PermanentTargetError('TargetMisconfigured', `${what}: cannot read ${ref.file}: ${(err as Error).message}`);
  }
}
