/** Every real server a test run starts. Add one line per server module. */
import type { TestServer } from '../server';

export const servers: TestServer[] = [
];
