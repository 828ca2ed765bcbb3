/** Every real server a test run starts. Add one line per server module. */
import type { TestServer } from '../server';
import { temporal } from './temporal';
import { postgres } from './postgres';
import { scimServer } from './scim';
import { ldapServer } from './ldap';
import { motoServer } from './moto';
import { timeSkipping } from './timeskipping';

export const servers: TestServer[] = [temporal, postgres, scimServer, ldapServer, motoServer, timeSkipping];
