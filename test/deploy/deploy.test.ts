/**
 * The deployment, checked offline (issue 14, point 4): the Dockerfile, docker-compose.yml against
 * the pinned Compose Specification schema, the Kubernetes manifests against the Kubernetes schemas
 * (kubernetes-models), and that every API and worker container sets what the code says it needs
 * (src/worker/env.ts). Each check is also run on a broken copy, to show it can fail. Starts no server.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parse } from 'yaml';
import { loadCodecKeys } from '../../src/codec';
import { parseWebhookSources } from '../../src/api/webhooks';
import { loadApiKeys } from '../../src/api/auth';
import { main } from '../../src/cli/main';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/definitions';
import { applyFileEnv, describeNeed, fileEnvNeeds, unmetEnv, WORKER_ENV } from '../../src/worker/env';
import {
  COMPOSE_SPEC,
  composeEnvProblems,
  composeLayoutProblems,
  composeSchemaErrors,
  dockerfileProblems,
  kubernetesEnvProblems,
  kubernetesLayoutProblems,
  kubernetesSchemaErrors,
  kustomizationProblems,
  type Manifest,
  parseCompose,
  parseManifests,
  read,
  ROOT,
  secretTemplateProblems,
} from './checks';

const clone = <T>(v: T): T => structuredClone(v);
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- editing parsed YAML in broken copies

describe('the environment a worker needs, from the code', () => {
  test('the reference targets file names its credentials and its addresses on this machine', () => {
    const needs = fileEnvNeeds(read('examples/reference/targets.yaml'), 'targets.yaml');
    expect(needs.map((n) => [n.anyOf.join(','), n.required, n.secret ?? false])).toEqual([
      ['AMENDCTL_IDP_URL', false, false],
      ['AMENDCTL_WAREHOUSE_HOST', false, false],
      ['AMENDCTL_IDP_TOKEN', true, true],
      ['AMENDCTL_WAREHOUSE_PASSWORD', true, true],
    ]);
    expect(
      unmetEnv([...WORKER_ENV, ...needs], {
        TEMPORAL_ADDRESS: 't:7233',
        AMENDCTL_CODEC_KEY_FILE: '/k',
        AMENDCTL_WAREHOUSE_HOST: 'db',
        AMENDCTL_IDP_URL: 'http://idp',
        AMENDCTL_IDP_TOKEN_FILE: '/t',
      }).map(describeNeed),
    ).toEqual([
      "AMENDCTL_AUDIT_DATABASE_URL or AMENDCTL_AUDIT_DATABASE_URL_FILE or AMENDCTL_AUDIT_PASSWORD or AMENDCTL_AUDIT_PASSWORD_FILE or AMENDCTL_WAREHOUSE_PASSWORD or AMENDCTL_WAREHOUSE_PASSWORD_FILE: the amendctl database's password",
      'AMENDCTL_APPROVAL_KEYS: the approval keys file (else no approval counts)',
      'AMENDCTL_WAREHOUSE_PASSWORD or AMENDCTL_WAREHOUSE_PASSWORD_FILE: the credential targets.warehouse.password in targets.yaml',
    ]);
  });

  test('NAME_FILE gives NAME from a file; a file that cannot be read is an error naming the variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amendctl-env-'));
    try {
      writeFileSync(join(dir, 'token'), 's3cret\n');
      const env: NodeJS.ProcessEnv = {
        AMENDCTL_IDP_TOKEN_FILE: join(dir, 'token'),
        AMENDCTL_AUDIT_PASSWORD: 'kept',
        AMENDCTL_AUDIT_PASSWORD_FILE: join(dir, 'token'),
      };
      applyFileEnv(env, ['AMENDCTL_IDP_TOKEN', 'AMENDCTL_AUDIT_PASSWORD', 'AMENDCTL_OTHER']);
      expect(env.AMENDCTL_IDP_TOKEN).toBe('s3cret');
      expect(env.AMENDCTL_AUDIT_PASSWORD).toBe('kept');
      expect(() => applyFileEnv({ X_FILE: join(dir, 'none') }, ['X'])).toThrow(
        `X_FILE: cannot read ${join(dir, 'none')}: ENOENT`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('amendctl worker refuses to start without a credential its targets file names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amendctl-env-'));
    const saved = { ...process.env };
    try {
      const targets = join(dir, 'targets.yaml');
      writeFileSync(
        targets,
        'targets:\n  idp:\n    type: scim\n    baseUrl: ${AMENDCTL_T_URL:-http://127.0.0.1:1/v2}\n    auth: { bearerTokenEnv: AMENDCTL_T_TOKEN }\n',
      );
      process.env.AMENDCTL_TARGETS = targets;
      delete process.env.AMENDCTL_T_TOKEN;
      const err: string[] = [];
      const code = await main(['worker', '--address', '127.0.0.1:1'], {
        out: () => {},
        err: (s: string) => err.push(s),
      } as never);
      expect(code).toBe(2);
      expect(err.join('\n')).toBe(
        `amendctl worker: the environment lacks what this worker needs:\n  AMENDCTL_T_TOKEN or AMENDCTL_T_TOKEN_FILE: the credential targets.idp.auth.bearerTokenEnv in ${targets}`,
      );
    } finally {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Dockerfile', () => {
  test('multi-stage; the runtime stage: production dependencies, the prebuilt lib/, a numeric non-root USER, nothing built at start', () => {
    expect(dockerfileProblems(read('Dockerfile'))).toEqual([]);
  });

  test('a Dockerfile that builds at start as root in one stage is refused', () => {
    const broken = [
      'FROM node:20',
      'WORKDIR /app',
      'COPY . .',
      'RUN npm ci',
      'CMD ["sh", "-c", "npm run build && node bin/amendctl worker"]',
    ].join('\n');
    expect(dockerfileProblems(broken)).toEqual([
      'not multi-stage: 1 FROM',
      'no build stage runs npm ci and npm run build',
      'runtime stage: base image node:20 is not node:20.x.y-slim or -bookworm-slim',
      'runtime stage: no npm ci --omit=dev',
      'runtime stage: lib/ is not copied from the build stage',
      'runtime stage: no USER',
      'runtime stage: no ENTRYPOINT',
      'runtime stage: CMD runs sh -c npm run build && node bin/amendctl worker',
      'runtime stage: CMD is ["sh","-c","npm run build && node bin/amendctl worker"], not ["worker"]',
    ]);
    const asRoot = read('Dockerfile').replace('USER 10001:10001', 'USER root').replace('CMD ["worker"]', 'CMD worker');
    expect(dockerfileProblems(asRoot)).toEqual([
      'runtime stage: USER root is not a numeric non-root uid',
      'runtime stage: CMD is not in exec form',
    ]);
  });

  test('.dockerignore keeps local builds, dependencies and the secrets out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const p of ['.git', 'node_modules', 'lib', '.data', 'deploy']) expect(ignored).toContain(p);
  });
});

describe('docker-compose.yml', () => {
  const compose = parseCompose(read('docker-compose.yml'));

  test(`the Compose Specification schema is pinned: ${COMPOSE_SPEC.module}@${COMPOSE_SPEC.version}`, () => {
    expect(
      createHash('sha256')
        .update(readFileSync(join(ROOT, COMPOSE_SPEC.file)))
        .digest('hex'),
    ).toBe(COMPOSE_SPEC.sha256);
    expect(read('deploy/schemas/README.md')).toContain(`${COMPOSE_SPEC.module}\` at **${COMPOSE_SPEC.version}**`);
    expect((JSON.parse(read(COMPOSE_SPEC.file)) as { $schema: string }).$schema).toBe(
      'https://json-schema.org/draft/2020-12/schema',
    );
  });

  test('validates against the Compose Specification schema', () => {
    expect(composeSchemaErrors(compose)).toEqual([]);
  });

  test('a broken copy does not', () => {
    const broken: Obj = clone(compose);
    broken.services.api.helthcheck = broken.services.api.healthcheck;
    broken.services.worker.stop_grace_period = 90;
    broken.services.temporal.depends_on['temporal-schema'].condition = 'service_ready';
    broken.volume = {};
    expect(composeSchemaErrors(broken)).toEqual([
      '/ must NOT have additional properties: volume',
      '/services/temporal/depends_on must be array',
      '/services/temporal/depends_on/temporal-schema/condition must be equal to one of the allowed values (service_started, service_healthy, service_completed_successfully)',
      '/services/temporal/depends_on must match exactly one schema in oneOf',
      '/services/api must NOT have unevaluated properties: helthcheck',
      '/services/worker/stop_grace_period must be string',
    ]);
  });

  test('the API and the workers set every variable they need; secrets come only from Compose secrets', () => {
    expect(composeEnvProblems(compose)).toEqual([]);
  });

  test('a copy that lost a credential, a mount and the codec keys, and holds a password, is refused', () => {
    const broken: Obj = clone(compose);
    const w = broken.services.worker;
    delete w.environment.AMENDCTL_IDP_TOKEN_FILE;
    delete w.environment.AMENDCTL_CODEC_KEY_FILE;
    w.environment.AMENDCTL_WAREHOUSE_PASSWORD = 'change-me';
    broken.services.api.volumes = [];
    w.secrets = w.secrets.filter((s: string) => s !== 'idp_token');
    expect(composeEnvProblems(broken)).toEqual([
      'api: /etc/amendctl/api-sources.yaml is neither in the image nor mounted',
      'api: cannot read /etc/amendctl/api-sources.yaml as the container sees it',
      'worker: AMENDCTL_WAREHOUSE_PASSWORD has a value in the compose file: give AMENDCTL_WAREHOUSE_PASSWORD_FILE and a secret',
      'worker: not set: AMENDCTL_CODEC_KEYS or AMENDCTL_CODEC_KEY_FILE: the payload encryption keys',
      'worker: not set: AMENDCTL_IDP_TOKEN or AMENDCTL_IDP_TOKEN_FILE: the credential targets.idp.auth.bearerTokenEnv in /app/examples/reference/targets.yaml',
    ]);
    const unmounted: Obj = clone(compose);
    unmounted.services.worker.secrets = ['codec_keys', 'warehouse_password', 'approval_keys'];
    expect(composeEnvProblems(unmounted)).toEqual([
      'worker: /run/secrets/idp_token is neither in the image nor mounted',
    ]);
  });

  test('Temporal on PostgreSQL with its UI and admin tools, pinned images, two workers, healthchecks on /healthz, conditions, drain time', () => {
    expect(composeLayoutProblems(compose)).toEqual([]);
  });

  test('a copy with an unpinned image, one worker, no healthcheck and too short a stop is refused', () => {
    const broken: Obj = clone(compose);
    broken.services.temporal.image = 'temporalio/server:latest';
    broken.services.worker.deploy.replicas = 1;
    delete broken.services.api.healthcheck;
    broken.services.worker.stop_grace_period = '30s';
    broken.services.api.depends_on = ['temporal'];
    expect(composeLayoutProblems(broken)).toEqual([
      'temporal: image temporalio/server:latest is not pinned to a version tag',
      'api: depends_on without conditions',
      '1 worker(s), not two',
      'api: no healthcheck on /healthz',
      'worker: stop_grace_period 30s leaves no time beyond AMENDCTL_SHUTDOWN_GRACE 60s',
    ]);
  });

  test("the API's webhook sources file loads (none configured)", () => {
    expect(parseWebhookSources(read('deploy/api-sources.yaml'), 'deploy/api-sources.yaml', {}).size).toBe(0);
    expect(() => parseWebhookSources('sources: []\n', 'broken.yaml', {})).toThrow('invalid webhook sources file');
  });

  test('the one-shot setup registers every search attribute the workflows write', () => {
    const setup = read('deploy/temporal/setup.sh');
    expect(setup).toContain('temporal operator search-attribute create');
    const loop = /for a in ([\w ]+); do/.exec(setup)?.[1]?.split(' ');
    expect(loop).toEqual(Object.keys(SEARCH_ATTRIBUTES));
    expect(new Set(Object.values(SEARCH_ATTRIBUTES))).toEqual(new Set(['Keyword']));
    expect(setup).toContain('--type Keyword');
  });

  test('scripts/compose-secrets.sh makes every secret the file mounts, keys the code reads, and keeps what exists', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amendctl-secrets-'));
    try {
      const out = join(dir, 'secrets');
      execFileSync('bash', [join(ROOT, 'scripts/compose-secrets.sh'), out], { stdio: 'pipe' });
      const files = Object.values(compose.secrets as Record<string, { file: string }>).map((s) =>
        s.file.replace('./deploy/secrets/', ''),
      );
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect(statSync(join(out, f)).mode & 0o777).toBe(0o644);
      expect(statSync(out).mode & 0o777).toBe(0o700);
      const keys = loadCodecKeys({ AMENDCTL_CODEC_KEY_FILE: join(out, 'codec-keys.json') });
      expect(keys.keys.get(keys.current)?.length).toBe(32);
      const apiKey = readFileSync(join(out, 'api-key'), 'utf8').trim();
      const [entry, ...more] = loadApiKeys(join(out, 'api-keys.json'));
      expect(more).toEqual([]);
      expect(entry).toMatchObject({
        id: 'compose-admin',
        scopes: ['submit', 'read', 'cancel', 'approve'],
        sha256: createHash('sha256').update(apiKey).digest('hex'),
      });
      const before = readFileSync(join(out, 'codec-keys.json'), 'utf8');
      const again = execFileSync('bash', [join(ROOT, 'scripts/compose-secrets.sh'), out], { encoding: 'utf8' });
      expect(again).not.toContain('created');
      expect(readFileSync(join(out, 'codec-keys.json'), 'utf8')).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  const dir = join(ROOT, 'deploy/kubernetes');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const manifests: Manifest[] = files
    .filter((f) => f !== 'kustomization.yaml')
    .flatMap((f) => parseManifests(f, readFileSync(join(dir, f), 'utf8')));
  const kinds = (ms: Manifest[]) =>
    ms.map((m) => `${m.doc.kind as string}/${(m.doc.metadata as { name: string }).name}`);

  test('every document validates against the Kubernetes schema of its kind', () => {
    expect(kinds(manifests)).toEqual([
      'Deployment/amendctl-api',
      'Service/amendctl-api',
      'PodDisruptionBudget/amendctl-api',
      'ConfigMap/amendctl-env',
      'ConfigMap/amendctl-api',
      'Namespace/amendctl',
      'ConfigMap/amendctl-policy',
      'Secret/amendctl-codec-keys',
      'Secret/amendctl-worker',
      'Secret/amendctl-api-keys',
      'Secret/amendctl-temporal',
      'Secret/amendctl-approval-signing',
      'Secret/amendctl-approval-keys',
      'Deployment/amendctl-worker',
      'Service/amendctl-worker-metrics',
      'PodDisruptionBudget/amendctl-worker',
    ]);
    expect(kubernetesSchemaErrors(manifests)).toEqual([]);
  });

  test('a broken copy does not', () => {
    const broken = clone(manifests);
    const worker = broken.find(
      (m) => m.doc.kind === 'Deployment' && (m.doc.metadata as Obj).name === 'amendctl-worker',
    )!.doc as Obj;
    worker.spec.replicas = 'three';
    worker.spec.template.spec.containers[0].ports[0].containerPort = '9464';
    delete worker.spec.selector;
    const pdb = broken.find((m) => m.doc.kind === 'PodDisruptionBudget')!.doc as Obj;
    pdb.apiVersion = 'policy/v1beta1';
    expect(kubernetesSchemaErrors(broken)).toEqual([
      'api.yaml#2 PodDisruptionBudget/amendctl-api: no schema for policy/v1beta1 PodDisruptionBudget',
      'worker.yaml#0 Deployment/amendctl-worker: /spec must have required property selector',
      'worker.yaml#0 Deployment/amendctl-worker: /spec/replicas must be integer',
      'worker.yaml#0 Deployment/amendctl-worker: /spec/template/spec/containers/0/ports/0/containerPort must be integer',
    ]);
  });

  test('the API and the workers set every variable they need, from the ConfigMaps, the Secrets and the mounted files', () => {
    expect(kubernetesEnvProblems(manifests)).toEqual([]);
  });

  test('a copy that lost the policy mount, a Secret key and a variable is refused', () => {
    const broken = clone(manifests);
    const worker = broken.find(
      (m) => m.doc.kind === 'Deployment' && (m.doc.metadata as Obj).name === 'amendctl-worker',
    )!.doc as Obj;
    const c = worker.spec.template.spec.containers[0];
    c.volumeMounts = c.volumeMounts.filter((v: Obj) => v.name !== 'policy');
    c.env = c.env.filter((e: Obj) => e.name !== 'AMENDCTL_WAREHOUSE_HOST');
    c.env.push({ name: 'AMENDCTL_AUDIT_PASSWORD', value: 'change-me' });
    const secret = broken.find((m) => m.doc.kind === 'Secret' && (m.doc.metadata as Obj).name === 'amendctl-worker')!
      .doc as Obj;
    delete secret.stringData.AMENDCTL_IDP_TOKEN;
    const env = broken.find((m) => m.doc.kind === 'ConfigMap' && (m.doc.metadata as Obj).name === 'amendctl-env')!
      .doc as Obj;
    delete env.data.TEMPORAL_ADDRESS;
    expect(kubernetesEnvProblems(broken)).toEqual([
      'amendctl-api/api: not set: TEMPORAL_ADDRESS or TEMPORAL_PROFILE or TEMPORAL_CONFIG_FILE: where Temporal is (else localhost:7233)',
      'amendctl-worker/worker: AMENDCTL_IDP_TOKEN from Secret amendctl-worker key AMENDCTL_IDP_TOKEN, which the manifests do not define',
      'amendctl-worker/worker: AMENDCTL_AUDIT_PASSWORD has a value in the manifest: take it from a Secret',
      'amendctl-worker/worker: /etc/amendctl/policy/targets.yaml is neither in the image nor in a mounted ConfigMap or Secret',
      'amendctl-worker/worker: /etc/amendctl/policy/rules.yaml is neither in the image nor in a mounted ConfigMap or Secret',
      'amendctl-worker/worker: cannot read /etc/amendctl/policy/targets.yaml as the container sees it',
      'amendctl-worker/worker: not set: TEMPORAL_ADDRESS or TEMPORAL_PROFILE or TEMPORAL_CONFIG_FILE: where Temporal is (else localhost:7233)',
    ]);
    const noHost = clone(manifests);
    const w2 = noHost.find((m) => m.doc.kind === 'Deployment' && (m.doc.metadata as Obj).name === 'amendctl-worker')!
      .doc as Obj;
    w2.spec.template.spec.containers[0].env = w2.spec.template.spec.containers[0].env.filter(
      (e: Obj) => e.name !== 'AMENDCTL_IDP_URL' && e.name !== 'AMENDCTL_IDP_TOKEN',
    );
    expect(kubernetesEnvProblems(noHost)).toEqual([
      'amendctl-worker/worker: not set: AMENDCTL_IDP_URL: ${AMENDCTL_IDP_URL} in /etc/amendctl/policy/targets.yaml defaults to http://127.0.0.1:8280/v2, this machine',
      'amendctl-worker/worker: not set: AMENDCTL_IDP_TOKEN or AMENDCTL_IDP_TOKEN_FILE: the credential targets.idp.auth.bearerTokenEnv in /etc/amendctl/policy/targets.yaml',
    ]);
  });

  test('probes on /healthz and /readyz, scrape annotations, restricted security context, resources, replicas, a PodDisruptionBudget, drain time', () => {
    expect(kubernetesLayoutProblems(manifests)).toEqual([]);
  });

  test('a copy with a wrong probe, no annotations, a writable root, no memory limit and a short grace period is refused', () => {
    const broken = clone(manifests);
    const dep = (name: string) =>
      broken.find((m) => m.doc.kind === 'Deployment' && (m.doc.metadata as Obj).name === name)!.doc as Obj;
    const worker = dep('amendctl-worker');
    const wc = worker.spec.template.spec.containers[0];
    wc.readinessProbe.httpGet.path = '/healthz';
    wc.resources.limits = { cpu: '2', memory: '2Gi' };
    worker.spec.template.spec.terminationGracePeriodSeconds = 30;
    delete dep('amendctl-api').spec.template.metadata.annotations;
    dep('amendctl-api').spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false;
    dep('amendctl-api').spec.replicas = 1;
    const withoutPdb = broken.filter(
      (m) => !(m.doc.kind === 'PodDisruptionBudget' && (m.doc.metadata as Obj).name === 'amendctl-worker'),
    );
    expect(kubernetesLayoutProblems(withoutPdb)).toEqual([
      'amendctl-api/api: 1 replicas, not 2',
      'amendctl-api/api: the pod\'s prometheus.io annotations do not say scrape "true", port "8080", path /metrics',
      'amendctl-api/api: readOnlyRootFilesystem is not true',
      'amendctl-worker/worker: readinessProbe is not GET /readyz on port 9464',
      'amendctl-worker/worker: memory limit 2Gi, not 1Gi',
      'amendctl-worker/worker: terminationGracePeriodSeconds 30 leaves under 15 s beyond AMENDCTL_SHUTDOWN_GRACE 60s',
      'amendctl-worker/worker: no PodDisruptionBudget selects its pods',
    ]);
  });

  test('kustomization.yaml lists every manifest but the Secret templates', () => {
    const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Obj;
    expect(kustomizationProblems(kustomization, files)).toEqual([]);
    expect(
      kustomizationProblems({ resources: ['namespace.yaml', 'api.yaml', 'secrets.template.yaml', 'gone.yaml'] }, files),
    ).toEqual([
      'kustomization.yaml lists gone.yaml, which does not exist',
      'kustomization.yaml does not list config.yaml',
      'kustomization.yaml does not list policy.yaml',
      'kustomization.yaml does not list worker.yaml',
      'kustomization.yaml lists secrets.template.yaml: applying it would overwrite the real Secrets',
    ]);
  });

  test('the Secret templates hold placeholders only', () => {
    expect(secretTemplateProblems(manifests)).toEqual([]);
    const leaked = clone(manifests);
    ((leaked.find((m) => m.doc.kind === 'Secret')!.doc as Obj).stringData as Obj)['codec-keys.json'] =
      '{ "current": "k1", "keys": { "k1": "AAAA" } }';
    expect(secretTemplateProblems(leaked)).toEqual([
      'secrets.template.yaml#0 Secret/amendctl-codec-keys: codec-keys.json holds a value, not a placeholder',
    ]);
  });

  test("the API's sources ConfigMap loads", () => {
    const api = manifests.find((m) => m.doc.kind === 'ConfigMap' && (m.doc.metadata as Obj).name === 'amendctl-api')!
      .doc as Obj;
    expect(parseWebhookSources(api.data['sources.yaml'], 'sources.yaml', {}).size).toBe(0);
  });

  test('the policy ConfigMap holds the reference policy (scripts/kubernetes-policy.sh writes it)', () => {
    const policy = manifests.find(
      (m) => m.doc.kind === 'ConfigMap' && (m.doc.metadata as Obj).name === 'amendctl-policy',
    )!.doc as Obj;
    expect(policy.data['targets.yaml']).toBe(read('examples/reference/targets.yaml'));
    expect(policy.data['rules.yaml']).toBe(read('examples/reference/rules.yaml'));
  });
});
