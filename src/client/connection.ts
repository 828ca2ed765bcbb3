/**
 * Where Temporal is: the standard Temporal environment configuration (TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE and the TOML
 * profile file), so the same settings serve our CLI, the worker and `temporal` itself.
 * Default: the local dev server on localhost:7233, namespace `default`.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';

export interface TemporalTarget {
  address: string;
  namespace: string;
  connectionOptions: NativeConnectionOptions;
}

export function temporalTarget(
  overrides: { address?: string; namespace?: string; profile?: string } = {},
): TemporalTarget {
  const cfg = loadClientConnectConfig(overrides.profile ? { profile: overrides.profile } : {});
  const address = overrides.address ?? cfg.connectionOptions.address ?? 'localhost:7233';
  return {
    address,
    namespace: overrides.namespace ?? cfg.namespace ?? 'default',
    connectionOptions: { ...cfg.connectionOptions, address },
  };
}
