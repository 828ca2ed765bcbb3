/**
 * `${VAR}` / `${VAR:-default}` in policy files (issue 15, point 5): replaced after the file is
 * parsed, in string values only, so what a variable holds cannot change the document's
 * structure. The targets file, the notifications file and the webhook sources file. Pure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnvTyped, parseWithEnv, substituteEnv } from '../../src/connectors/interpolate';
import { ProvisioningSchema, parseTargets } from '../../src/connectors/registry';
import { parseWebhookSources } from '../../src/api/webhooks';
import { InputError } from '../../src/domain/errors';
import { parseNotifications } from '../../src/notify/config';
import { fileEnvNeeds } from '../../src/worker/env';
import { ROOT } from '../domain/support/reference';

const FILE = '/etc/amendctl/targets.yaml';

const TARGETS = `targets:
  idp:
    type: scim
    baseUrl: \${IDP_URL:-http://127.0.0.1:8280/v2}
    auth: { bearerTokenEnv: TOKEN }
  warehouse:
    type: postgres
    host: 127.0.0.1
    database: \${DB}
    user: amendctl
    managedRolePrefix: app_
    password: { env: PGPASSWORD }
`;

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('expected an InputError');
}

const issuesOf = (err: InputError): string[] => err.issues.map((i) => `${i.file}: ${i.path}: ${i.message}`);

describe('the targets file', () => {
  const baseline = parseTargets(TARGETS, FILE, { DB: 'warehouse' });

  test.each([
    ['": " (a mapping)', 'ware: house'],
    ['" #" (a comment)', 'warehouse # not a comment'],
    ['a line break that writes keys', 'warehouse\n    ssl: true\n    managedRolePrefix: ""'],
    ['a YAML flow mapping', '{a: 1}'],
    ['a flow sequence', '[1, 2]'],
    ['a leading * (an alias)', '*anchor'],
    ['a leading & (an anchor)', '&anchor value'],
    ['quotes', `it's "quoted"`],
    ['a leading "- " (a list item)', '- x'],
    ['a number', '5432'],
    ['a YAML null', 'null'],
    ['a YAML boolean', 'true'],
    ['another placeholder', '${OTHER}'],
  ])('a value with %s is that string; the structure is as it was', (_what, value) => {
    const t = parseTargets(TARGETS, FILE, { DB: value, OTHER: 'nope' });
    expect(Object.keys(t.targets)).toEqual(['idp', 'warehouse']);
    expect(t.targets.warehouse!.config).toEqual({ ...(baseline.targets.warehouse!.config as object), database: value });
    expect(t.targets.idp).toEqual(baseline.targets.idp);
  });

  test('inside a longer value, and in a list, each placeholder is replaced by its text', () => {
    const doc = parseWithEnv(
      'a: x ${A}-${B:-b} y\nlist: ["${A}", "${B:-d: e}"]\nblock:\n  - ${A}\n',
      { A: '#1: {' },
      FILE,
    );
    expect(doc.value).toEqual({ a: 'x #1: {-b y', list: ['#1: {', 'd: e'], block: ['#1: {'] });
  });

  test('inside { } or [ ] a placeholder is quoted: unquoted, the syntax error says so', () => {
    const err = inputError(() => parseWithEnv('targets:\n  idp: { type: scim, baseUrl: ${URL} }\n', {}, FILE));
    expect(err.message).toMatch(/^not valid YAML:/);
    expect(err.issues[0]).toMatchObject({
      file: FILE,
      path: 'line 2, column 32',
      message: expect.stringMatching(/\(a \$\{VAR\} inside \{ \} or \[ \] is written in quotes: "\$\{VAR\}"\)$/),
    });
  });

  test('keys are never substituted', () => {
    expect(substituteEnv({ '${K}': '${K}', nested: { '${K:-d}': ['${K}'] } }, { K: 'v' }, FILE).value).toEqual({
      '${K}': 'v',
      nested: { '${K:-d}': ['v'] },
    });
    const err = inputError(() =>
      parseTargets('targets:\n  ${T}:\n    type: scim\n    baseUrl: http://idp.example/v2\n', FILE, { T: 'idp' }),
    );
    expect(issuesOf(err)).toEqual([`${FILE}: targets["\${T}"]: invalid name: a target name: a-z, 0-9, "-"`]);
  });

  test('an unset variable without a default is an error naming the file, the path of the value and the variable', () => {
    const err = inputError(() =>
      parseTargets(TARGETS.replace('${IDP_URL:-http://127.0.0.1:8280/v2}', '${IDP_URL}'), FILE, {}),
    );
    expect(err.message).toMatch(/^targets file names unset environment variables:/);
    expect(issuesOf(err)).toEqual([
      `${FILE}: targets.idp.baseUrl: \${IDP_URL} is not set`,
      `${FILE}: targets.warehouse.database: \${DB} is not set`,
    ]);
    // An empty variable is unset too.
    expect(issuesOf(inputError(() => parseTargets(TARGETS, FILE, { DB: '' })))).toEqual([
      `${FILE}: targets.warehouse.database: \${DB} is not set`,
    ]);
  });

  test('${VAR:-default}: the default when the variable is unset or empty, else the variable', () => {
    const url = (env: NodeJS.ProcessEnv) =>
      (parseTargets(TARGETS, FILE, { DB: 'w', ...env }).targets.idp!.config as { baseUrl: string }).baseUrl;
    expect(url({})).toBe('http://127.0.0.1:8280/v2');
    expect(url({ IDP_URL: '' })).toBe('http://127.0.0.1:8280/v2');
    expect(url({ IDP_URL: 'https://idp.example/scim/v2' })).toBe('https://idp.example/scim/v2');
    expect(parseWithEnv('a: ${X:-}\n', {}, FILE).value).toEqual({ a: '' });
  });

  test('a value that is exactly one placeholder stays a string; where the schema wants a number or a boolean, its text is read as one', () => {
    expect(parseWithEnv('port: ${PORT}\nssl: ${SSL:-false}\n', { PORT: '5432' }, FILE).value).toEqual({
      port: '5432',
      ssl: 'false',
    });
    const text =
      `${TARGETS}    port: \${PORT}\n    ssl: \${SSL:-false}\n    poolSize: \${POOL:-4}\n    rateLimit: { perSecond: "\${RATE:-50}", burst: "\${BURST:-5}" }\n    provisioning:\n      batchSize: \${BATCH:-100}\n`.replace(
        'auth: { bearerTokenEnv: TOKEN }',
        'auth: { bearerTokenEnv: TOKEN }\n    rateLimit:\n      perSecond: ${IDP_RATE:-2.5}',
      );
    const t = parseTargets(text, FILE, { DB: 'w', PORT: '6543', SSL: 'true' });
    expect(t.targets.warehouse!.config).toMatchObject({
      port: 6543,
      ssl: true,
      poolSize: 4,
      rateLimit: { perSecond: 50, burst: 5 },
    });
    expect(t.targets.warehouse!.provisioning).toMatchObject({ batchSize: 100 });
    expect(t.targets.idp!.config).toMatchObject({ rateLimit: { perSecond: 2.5 } });
    // Text that is no number, or no boolean, names the variable and what it holds.
    expect(
      issuesOf(
        inputError(() =>
          parseTargets(text, FILE, { DB: 'w', PORT: 'abc', SSL: 'yes', RATE: '1e3x', BATCH: '0', IDP_RATE: ' 5' }),
        ),
      ),
    ).toEqual([
      `${FILE}: targets.idp.rateLimit.perSecond: \${IDP_RATE} is " 5", not a number`,
      `${FILE}: targets.warehouse.provisioning.batchSize: Too small: expected number to be >=1`,
      `${FILE}: targets.warehouse.port: \${PORT} is "abc", not a number`,
      `${FILE}: targets.warehouse.ssl: \${SSL} is "yes", not a boolean (true or false)`,
      `${FILE}: targets.warehouse.rateLimit.perSecond: \${RATE} is "1e3x", not a number`,
    ]);
    // Only a whole placeholder is read as a number: a string written in the file stays one.
    expect(issuesOf(inputError(() => parseTargets(`${TARGETS}    poolSize: "4"\n`, FILE, { DB: 'w' })))).toEqual([
      `${FILE}: targets.warehouse.poolSize: Invalid input: expected number, received string`,
    ]);
  });

  test('parseEnvTyped on its own: paths are relative to the value, the variable found under `at`', () => {
    const doc = parseWithEnv('p: { lanes: "${L}" }\n', { L: '3' }, FILE);
    expect(parseEnvTyped(ProvisioningSchema, (doc.value as { p: unknown }).p, doc.sole, FILE, ['p'])).toEqual({
      success: true,
      data: { batchSize: 250, concurrency: 8, lanes: 3, lookupBatch: 1 },
    });
  });

  test('a variable that is not clean text is refused, naming the variable and the value', () => {
    expect(issuesOf(inputError(() => parseTargets(TARGETS, FILE, { DB: 'ware\u0000house' })))).toEqual([
      `${FILE}: targets.warehouse.database: \${DB} contains the control character U+0000 at character 5`,
    ]);
  });

  test('fileEnvNeeds names the placeholders of values, not those of keys or comments', () => {
    const needs = fileEnvNeeds('# ${IN_A_COMMENT}\ntargets:\n  ${IN_A_KEY}: x\n  a: ${IN_A_VALUE}\n', FILE);
    expect(needs.map((n) => n.anyOf.join(','))).toEqual(['IN_A_VALUE']);
  });

  test('the reference and directory targets files load with their defaults (numbers from placeholders as numbers)', () => {
    const load = (dir: string) =>
      parseTargets(readFileSync(join(ROOT, 'examples', dir, 'targets.yaml'), 'utf8'), `${dir}/targets.yaml`, {})
        .targets;
    const reference = load('reference');
    expect(reference.idp!.config).toMatchObject({ baseUrl: 'http://127.0.0.1:8280/v2', rateLimit: { perSecond: 50 } });
    expect(reference.warehouse!.config).toMatchObject({ host: '127.0.0.1', port: 5432, rateLimit: { perSecond: 50 } });
    const directory = load('directory');
    expect(
      Object.values(directory).map((t) => (t.config as { rateLimit?: { perSecond: number } }).rateLimit?.perSecond),
    ).toEqual([50, 20, 5]);
    expect(directory.directory!.config).toMatchObject({ usersDn: 'ou=people,dc=example,dc=com' });
  });
});

describe('the notifications file', () => {
  test('a value with ": ", "#" and "{" is that string; timeoutMs from a variable is a number; unset is an error naming the path', () => {
    const text =
      'endpoints:\n  - name: ops\n    url: ${HOOK_URL}\n    unsigned: ${UNSIGNED:-true}\n    timeoutMs: ${TIMEOUT}\n';
    const url = 'https://hooks.example.com/x?q=a: b&c={d}#frag';
    const cfg = parseNotifications(text, '/etc/amendctl/notifications.yaml', { HOOK_URL: url, TIMEOUT: '2500' });
    expect(cfg.endpoints).toEqual([
      { name: 'ops', url, events: ['requested', 'reminded', 'escalated', 'decided'], timeoutMs: 2500 },
    ]);
    const err = inputError(() => parseNotifications(text, '/etc/amendctl/notifications.yaml', { HOOK_URL: url }));
    expect(err.message).toMatch(/^notifications file names unset environment variables:/);
    expect(issuesOf(err)).toEqual(['/etc/amendctl/notifications.yaml: endpoints[0].timeoutMs: ${TIMEOUT} is not set']);
  });
});

describe('the webhook sources file', () => {
  test('a value with ": " and "#" is that string; a number from a variable; unset is an error naming the path', () => {
    const file = join(ROOT, 'examples', 'webhook', 'envsub-sources.yaml');
    const text =
      'sources:\n  ext:\n    scheme: hmac\n    secrets: [{ env: S }]\n    header: X-Sig\n    mapping: mapping.yaml\n    fetch:\n      baseUrl: ${API}\n      path: /records/{payload.id}\n      timeoutMs: ${TIMEOUT:-1500}\n';
    const seen: unknown[] = [];
    const api = 'https://api.example.com/v1?q=a: b #x';
    const sources = parseWebhookSources(
      text,
      file,
      { S: 'secret', API: api },
      { fetcher: (_s, config) => (seen.push(config), { fetch: () => Promise.reject(new Error('not here')) }) as never },
    );
    expect([...sources.keys()]).toEqual(['ext']);
    expect(seen).toEqual([{ baseUrl: api, path: '/records/{payload.id}', timeoutMs: 1500 }]);
    const err = inputError(() => parseWebhookSources(text, file, { S: 'secret' }));
    expect(err.message).toMatch(/^webhook sources file names unset environment variables:/);
    expect(issuesOf(err)).toEqual([`${file}: sources.ext.fetch.baseUrl: \${API} is not set`]);
  });
});
