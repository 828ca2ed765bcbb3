/** The notifications file: what it accepts, and errors that name the file and field. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endpointsFor, loadNotifications, parseNotifications } from '../../src/notify/config';
import { InputError } from '../../src/domain/errors';
import { newSecret } from './receiver';

const FILE = '/etc/amendctl/notifications.yaml';
const env = { OPS_SECRET: newSecret(), HOOK_HOST: 'hooks.example.com' };

function issues(text: string, e: NodeJS.ProcessEnv = env): string[] {
  try {
    parseNotifications(text, FILE, e);
  } catch (err) {
    if (err instanceof InputError) return err.issues.map((i) => `${i.file}: ${i.path}: ${i.message}`);
    throw err;
  }
  throw new Error('expected the file to be refused');
}

test('a valid file: defaults, ${VAR} in addresses, env: and file: references (relative to the file)', () => {
  const cfg = parseNotifications(
    `endpoints:
  - name: ops
    url: https://\${HOOK_HOST}/amendctl
    secret: env:OPS_SECRET
    inboxUrl: https://amendctl.example.com/
  - name: audit
    url: http://127.0.0.1:9000/hook
    events: [decided, decided]
    secret: { file: secrets/audit }
    timeoutMs: 2000
  - name: slack
    url: https://hooks.slack.example/services/T/B/X
    unsigned: true
    events: [requested, escalated]
`,
    FILE,
    env,
    { checkSecrets: false },
  );
  expect(cfg.endpoints).toEqual([
    {
      name: 'ops',
      url: 'https://hooks.example.com/amendctl',
      events: ['requested', 'reminded', 'escalated', 'decided'],
      secret: { env: 'OPS_SECRET' },
      inboxUrl: 'https://amendctl.example.com',
      timeoutMs: 10_000,
    },
    {
      name: 'audit',
      url: 'http://127.0.0.1:9000/hook',
      events: ['decided'],
      secret: { file: '/etc/amendctl/secrets/audit' },
      timeoutMs: 2000,
    },
    {
      name: 'slack',
      url: 'https://hooks.slack.example/services/T/B/X',
      events: ['requested', 'escalated'],
      timeoutMs: 10_000,
    },
  ]);
  expect(endpointsFor(cfg, 'reminded')).toEqual(['ops']);
  expect(endpointsFor(cfg, 'decided')).toEqual(['ops', 'audit']);
  expect(endpointsFor(cfg, 'escalated')).toEqual(['ops', 'slack']);
});

test('field errors name the file and the field', () => {
  expect(
    issues(`endpoints:
  - name: Ops
    url: ftp://example.com/x
    events: [requested, approved]
    secret: hunter2
    colour: red
  - name: b
    url: https://example.com
    secret: env:1BAD
    timeoutMs: 5
`),
  ).toEqual([
    `${FILE}: endpoints[0].name: an endpoint name: a-z first, then a-z, 0-9, "-" (at most 40)`,
    `${FILE}: endpoints[0].url: an http or https URL`,
    `${FILE}: endpoints[0].events[1]: one of requested, reminded, escalated, decided`,
    `${FILE}: endpoints[0].secret: a secret reference: env:NAME, file:PATH, { env: NAME } or { file: PATH } (never the secret itself)`,
    `${FILE}: endpoints[0].colour: unknown field`,
    `${FILE}: endpoints[1].secret: env:1BAD is not an environment variable name`,
    `${FILE}: endpoints[1].timeoutMs: Too small: expected number to be >=100`,
  ]);
});

test('a missing secret, credentials in a URL, no events, a duplicate name', () => {
  expect(
    issues(`endpoints:
  - name: b
    url: https://example.com
  - name: b
    url: https://u:p@example.com
    secret: env:OPS_SECRET
    unsigned: true
    events: []
`),
  ).toEqual([
    `${FILE}: endpoints[0].secret: required: a secret reference: env:NAME, file:PATH, { env: NAME } or { file: PATH } (never the secret itself); or unsigned: true for a receiver that verifies no signature`,
    `${FILE}: endpoints[1].url: no user or password in the URL`,
    `${FILE}: endpoints[1].events: at least one event (leave the field out for all four)`,
    `${FILE}: endpoints[1].unsigned: an endpoint with a secret is signed: leave out unsigned`,
    `${FILE}: endpoints[1].name: "b" names an earlier endpoint too`,
  ]);
});

test('secrets are checked at load: unset, unreadable, too short, not base64, never shown', () => {
  const found = issues(
    `endpoints:
  - { name: a, url: "https://example.com", secret: env:MISSING }
  - { name: b, url: "https://example.com", secret: env:SHORT }
  - { name: c, url: "https://example.com", secret: "file:nope/x" }
  - { name: d, url: "https://example.com", secret: env:PLAIN }
  - { name: e, url: "https://example.com", secret: env:OPS_SECRET }
`,
    { ...env, SHORT: 'whsec_AAAA', PLAIN: 'correct horse battery staple' },
  );
  expect(found).toEqual([
    `${FILE}: endpoints[0].secret: environment variable MISSING is not set`,
    `${FILE}: endpoints[1].secret: the key is 3 bytes; at least 16 are needed (Standard Webhooks secrets are 24 to 64 random bytes)`,
    expect.stringMatching(
      /^\/etc\/amendctl\/notifications\.yaml: endpoints\[2\]\.secret: cannot read \/etc\/amendctl\/nope\/x: ENOENT/,
    ),
    `${FILE}: endpoints[3].secret: not a Standard Webhooks secret: expected whsec_ followed by base64`,
  ]);
  expect(found.join('\n')).not.toContain('horse');
});

test('AMENDCTL_NOTIFICATIONS: unset means none; a JSON file loads; a missing file is named', () => {
  expect(loadNotifications({}).endpoints).toEqual([]);
  const dir = mkdtempSync(join(tmpdir(), 'amendctl-notify-'));
  writeFileSync(join(dir, 'key'), `${env.OPS_SECRET}\n`);
  const file = join(dir, 'notifications.json');
  writeFileSync(
    file,
    JSON.stringify({ endpoints: [{ name: 'ops', url: 'http://127.0.0.1:1/x', secret: 'file:key' }] }),
  );
  expect(loadNotifications({ AMENDCTL_NOTIFICATIONS: file }).endpoints[0]).toMatchObject({
    name: 'ops',
    secret: { file: join(dir, 'key') },
  });
  expect(() => loadNotifications({ AMENDCTL_NOTIFICATIONS: join(dir, 'none.yaml') })).toThrow(
    /cannot read the notifications file \(AMENDCTL_NOTIFICATIONS\):\n.*none\.yaml: \(root\): no such file/,
  );
  writeFileSync(file, '{"endpoints": [{"name": "ops", "url": "http://x", "secret": "env:X", "secret": "env:Y"}]}');
  expect(() => loadNotifications({ AMENDCTL_NOTIFICATIONS: file })).toThrow(/duplicate key/);
});

test('the reference example is valid', () => {
  const file = join(__dirname, '..', '..', 'examples', 'reference', 'notifications.yaml');
  const cfg = loadNotifications({ AMENDCTL_NOTIFICATIONS: file, AMENDCTL_NOTIFY_SECRET: env.OPS_SECRET });
  expect(cfg.endpoints.map((e) => [e.name, e.events.length, e.secret !== undefined])).toEqual([
    ['approvals', 4, true],
    ['slack', 3, false],
  ]);
});
