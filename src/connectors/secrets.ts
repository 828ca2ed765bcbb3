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
    if (v === undefined || v === '')
      throw new PermanentTargetError('TargetMisconfigured', `${what}: environment variable ${ref.env} is not set`);
    return v;
  }
  try {
    return readFileSync(ref.file, 'utf8').trim();
  } catch (err) {
    throw new PermanentTargetError(
      'TargetMisconfigured',
      `${what}: cannot read ${ref.file}: ${(err as Error).message}`,
    );
  }
}

/** A credential, read each time it is called (a rotated file is picked up); a permanent TargetMisconfigured when it cannot be read. */
export type Secret = () => string;

/**
 * Where the connectors' credentials come from: the one place they are read. The registry makes
 * one over the worker's environment and hands each client the readers of its credentials, so no
 * connector or client reads the environment or a secret file itself.
 */
export interface SecretSource {
  /** The reader of the credential `ref` names; `what` says whose it is in messages (never the value). */
  reader(ref: SecretRef, what: string): Secret;
}

/** Credentials from `env` (the worker's environment by default) and files. */
export function secretSource(env: NodeJS.ProcessEnv = process.env): SecretSource {
  return { reader: (ref, what) => () => secretFrom(ref, what, env) };
}
