/** A real server the test run needs: started once per run by global-setup, stopped by global-teardown. */
export interface RunningServer {
  /** Variables the tests read through testEnv(): addresses, ports, paths. Credentials only for test-owned servers. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export interface TestServer {
  name: string;
  start(): Promise<RunningServer>;
}
