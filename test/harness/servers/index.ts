/** Every real server a test run starts. Add one line per server module. */
import type { TestServer } from '../server';
import { ldapServer } from './ldap';
import { motoServer } from './moto';

export const servers: TestServer[] = [
  ldapServer,
  motoServer,
];
