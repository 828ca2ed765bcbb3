/**
 * Offline checks of the deployment (issue 14, point 4): each takes parsed documents and returns the
 * problems found, one line each, so a test asserts [] for the real files and the exact lines for a
 * broken copy. No Docker engine and no cluster: schemas are pinned (deploy/schemas/compose-spec.json,
 * the npm package kubernetes-models), and what a container needs comes from the code
 * (src/worker/env.ts: WORKER_ENV, API_ENV, fileEnvNeeds of the policy files it reads).
 */
import { readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { parse, parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { API_ENV, describeNeed, fileEnvNeeds, unmetEnv, WORKER_ENV, type EnvNeed } from '../../src/worker/env';
import { PROJECT_ROOT, workerFiles } from '../../src/worker/config';

export const ROOT = PROJECT_ROOT;
export const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;

/** A secret written into a file: a variable named like one, given a value instead of NAME_FILE or a secretKeyRef. */
const SECRET_NAME = /(PASSWORD|PWD|TOKEN|SECRET|API_KEY|CODEC_KEYS)$/;

// ------------------------------------------------------------------------------------------ Dockerfile

export interface Stage {
  name: string | undefined;
  from: string;
  instructions: Array<{ op: string; args: string }>;
}

/** FROM stages with their instructions: continuation lines joined, comments dropped, ARG defaults before the first FROM substituted. */
export function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const op = m[1]!.toUpperCase();
    const rest = m[2]!.replace(/\s+/g, ' ');
    if (op === 'FROM') {
      const [image = '', as, name] = rest.split(' ');
      stages.push({
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        from: image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_s, a?: string, b?: string) => args.get((a ?? b)!) ?? ''),
        instructions: [],
      });
    } else if (stages.length === 0) {
      if (op === 'ARG') {
        const [k, v] = rest.split('=', 2);
        if (k && v !== undefined) args.set(k, v);
      }
    } else stages[stages.length - 1]!.instructions.push({ op, args: rest });
  }
  return stages;
}

/** ENV of a stage (`ENV A=b C=d` and `ENV A b`). */
export function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.instructions.filter((x) => x.op === 'ENV')) {
    if (!i.args.includes('=')) {
      const [k, ...v] = i.args.split(' ');
      env[k!] = v.join(' ');
    } else
      for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g))
        env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return env;
}

/** Paths the image has: each COPY destination of the last stage, under its WORKDIR. */
export function imagePaths(stage: Stage): string[] {
  let workdir = '/';
  const paths: string[] = [];
  for (const i of stage.instructions) {
    if (i.op === 'WORKDIR') workdir = posix.resolve(workdir, i.args);
    if (i.op === 'COPY') {
      const parts = i.args.split(' ').filter((p) => !p.startsWith('--'));
      const dest = parts[parts.length - 1]!;
      const sources = parts.slice(0, -1);
      const to = posix.resolve(workdir, dest);
      if (sources.length > 1 || dest.endsWith('/'))
        paths.push(...sources.map((src) => posix.join(to, posix.basename(src))));
      else paths.push(to);
    }
  }
  return paths;
}

const execForm = (args: string): string[] | undefined => {
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
};

export function dockerfileProblems(text: string): string[] {
  const stages = parseDockerfile(text);
  const problems: string[] = [];
  if (stages.length < 2) problems.push(`not multi-stage: ${stages.length} FROM`);
  const last = stages[stages.length - 1];
  if (!last) return problems;
  const build = stages.slice(0, -1);
  const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
  if (!build.some((s) => runs(s).some((r) => /\bnpm ci\b/.test(r)) && runs(s).some((r) => /\bnpm run build\b/.test(r))))
    problems.push('no build stage runs npm ci and npm run build');
  if (!/^node:20(\.\d+){2}-(bookworm-)?slim$/.test(last.from))
    problems.push(`runtime stage: base image ${last.from || '(none)'} is not node:20.x.y-slim or -bookworm-slim`);
  if (!runs(last).some((r) => /\bnpm ci\b.*--omit=dev\b/.test(r))) problems.push('runtime stage: no npm ci --omit=dev');
  if (runs(last).some((r) => /\bnpm run build\b|\btsc\b/.test(r)))
    problems.push('runtime stage: builds (npm run build or tsc)');
  const fromBuild = last.instructions.filter(
    (i) => i.op === 'COPY' && build.some((s) => s.name && i.args.includes(`--from=${s.name}`)),
  );
  if (!fromBuild.some((i) => /\blib\b/.test(i.args)))
    problems.push('runtime stage: lib/ is not copied from the build stage');
  if (last.instructions.some((i) => i.op === 'COPY' && /(^| )(\.\/)?src\/?( |$)/.test(i.args)))
    problems.push('runtime stage: copies src/');
  const user = last.instructions.filter((i) => i.op === 'USER').pop()?.args;
  if (!user) problems.push('runtime stage: no USER');
  else if (!/^[1-9]\d*(:\d+)?$/.test(user)) problems.push(`runtime stage: USER ${user} is not a numeric non-root uid`);
  for (const op of ['ENTRYPOINT', 'CMD']) {
    const i = last.instructions.filter((x) => x.op === op).pop();
    const argv = i && execForm(i.args);
    if (!i) problems.push(`runtime stage: no ${op}`);
    else if (!argv) problems.push(`runtime stage: ${op} is not in exec form`);
    else if (argv.some((a) => /\bnpm\b|\btsc\b/.test(a))) problems.push(`runtime stage: ${op} runs ${argv.join(' ')}`);
  }
  const entry = execForm(last.instructions.filter((x) => x.op === 'ENTRYPOINT').pop()?.args ?? '');
  if (entry && entry.join(' ') !== 'node bin/amendctl')
    problems.push(`runtime stage: ENTRYPOINT is ${JSON.stringify(entry)}, not ["node", "bin/amendctl"]`);
  const cmd = execForm(last.instructions.filter((x) => x.op === 'CMD').pop()?.args ?? '');
  if (cmd && cmd.join(' ') !== 'worker') problems.push(`runtime stage: CMD is ${JSON.stringify(cmd)}, not ["worker"]`);
  return problems;
}

/** The image's runtime stage: its ENV (every amendctl container has it) and the paths it holds. */
export function image(text = read('Dockerfile')): { env: Record<string, string>; paths: string[] } {
  const last = parseDockerfile(text).pop()!;
  return { env: stageEnv(last), paths: imagePaths(last) };
}

// ------------------------------------------------------------------------------------------ what a container needs

export type Role = 'worker' | 'api';

/** The role of an amendctl container from its arguments (none: the image's CMD, `worker`). */
export function roleOf(argv: readonly string[]): Role | undefined {
  const first = argv[0] ?? 'worker';
  return first === 'worker' ? 'worker' : first === 'serve' ? 'api' : undefined;
}

const flag = (argv: readonly string[], name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};

/** Where the policy file a need list depends on is, in the container, and its container path. */
export function policyFile(role: Role, argv: readonly string[], env: Record<string, string>): string | undefined {
  if (role === 'worker')
    return (
      env.AMENDCTL_TARGETS ?? posix.join('/app', relative(ROOT, workerFiles({}).targetsFile).split('\\').join('/'))
    );
  return flag(argv, '--sources') ?? env.AMENDCTL_API_SOURCES;
}

/** The needs of a container, given a way to read a file as the container sees it. */
export function needsOf(
  role: Role,
  argv: readonly string[],
  env: Record<string, string>,
  readIn: (path: string) => string | undefined,
): { needs: EnvNeed[]; problems: string[] } {
  const base = role === 'worker' ? WORKER_ENV : API_ENV;
  const file = policyFile(role, argv, env);
  if (!file) return { needs: [...base], problems: [] };
  const text = readIn(file);
  if (text === undefined) return { needs: [...base], problems: [`cannot read ${file} as the container sees it`] };
  return { needs: [...base, ...fileEnvNeeds(text, file)], problems: [] };
}

/** Absolute paths a container is told about (argument values and variable values). */
function pathsNamed(argv: readonly string[], env: Record<string, string>): string[] {
  return [...argv, ...Object.values(env)].filter((v) => /^\/[^\s:]+$/.test(v));
}

const under = (path: string, dir: string): boolean =>
  path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

// ------------------------------------------------------------------------------------------ Compose

export const COMPOSE_SPEC = {
  module: 'github.com/compose-spec/compose-go/v2',
  version: 'v2.17.0',
  file: 'deploy/schemas/compose-spec.json',
  sha256: '49eb9a1e1de41315949f302f8e6221bb42acd6038977f7c0974e38596ec4cdf6',
};

export const parseCompose = (text: string): Obj => obj(parse(text, { merge: true }));

let composeValidator: ReturnType<Ajv2020['compile']> | undefined;
export function composeSchemaErrors(doc: unknown): string[] {
  // The schema is draft 2020-12 and not written for Ajv's strict mode (types left implicit).
  composeValidator ??= new Ajv2020({ allErrors: true, strict: false }).compile(
    JSON.parse(read(COMPOSE_SPEC.file)) as object,
  );
  if (composeValidator(doc)) return [];
  const errors = composeValidator.errors ?? [];
  // A failed subschema leaves its siblings unevaluated: Ajv then reports every property of the
  // object as "unevaluated". Keep the errors below it instead (compose-go reports the most specific).
  const below = (path: string) => errors.some((e) => e.instancePath.startsWith(`${path}/`));
  return errors
    .filter((e) => !(e.keyword === 'unevaluatedProperties' && below(e.instancePath)))
    .map((e) => {
      const p = e.params as { additionalProperty?: string; unevaluatedProperty?: string; allowedValues?: unknown[] };
      const extra = p.additionalProperty ?? p.unevaluatedProperty;
      return `${e.instancePath || '/'} ${e.message}${extra ? `: ${extra}` : ''}${p.allowedValues ? ` (${p.allowedValues.join(', ')})` : ''}`;
    });
}

function composeEnv(svc: Obj): Record<string, string> {
  const e = svc.environment;
  const out: Record<string, string> = {};
  if (Array.isArray(e)) {
    for (const item of e) {
      const [k, ...v] = String(item).split('=');
      if (v.length > 0) out[k!] = v.join('=');
    }
  } else for (const [k, v] of Object.entries(obj(e))) if (str(v) !== undefined) out[k] = str(v)!;
  return out;
}

const composeArgv = (svc: Obj): string[] =>
  Array.isArray(svc.command)
    ? svc.command.map(String)
    : typeof svc.command === 'string'
      ? svc.command.split(/\s+/)
      : [];
const isAmendctl = (svc: Obj): boolean => svc.build !== undefined || /^amendctl(:|$)/.test(str(svc.image) ?? '');

/** What a service reads from the host: its secrets at /run/secrets/NAME, its bind mounts. */
function composeMounts(doc: Obj, svc: Obj): { files: Map<string, string>; problems: string[] } {
  const files = new Map<string, string>();
  const problems: string[] = [];
  for (const s of arr(svc.secrets)) {
    const source = typeof s === 'string' ? s : str(obj(s).source);
    const target = typeof s === 'string' ? s : (str(obj(s).target) ?? source);
    const def = obj(obj(doc.secrets)[source ?? '']);
    if (!source || !str(def.file)) problems.push(`secret ${source} is not defined with a file`);
    else files.set(posix.resolve('/run/secrets', target!), str(def.file)!);
  }
  for (const v of arr(svc.volumes)) {
    const [src, dst] = typeof v === 'string' ? v.split(':') : [str(obj(v).source), str(obj(v).target)];
    if (src && dst && /^\.{1,2}\//.test(src)) files.set(dst, src);
  }
  return { files, problems };
}

/** Every API and worker service sets what it needs, reads secrets only from files, and has each file it is told about. */
export function composeEnvProblems(doc: Obj, img = image()): string[] {
  const problems: string[] = [];
  for (const [name, svcRaw] of Object.entries(obj(doc.services))) {
    const svc = obj(svcRaw);
    const env = composeEnv(svc);
    for (const k of Object.keys(env))
      if (SECRET_NAME.test(k))
        problems.push(`${name}: ${k} has a value in the compose file: give ${k}_FILE and a secret`);
    if (!isAmendctl(svc)) continue;
    const argv = composeArgv(svc);
    const role = roleOf(argv);
    if (!role) continue;
    const all = { ...img.env, ...env };
    const { files, problems: mountProblems } = composeMounts(doc, svc);
    problems.push(...mountProblems.map((p) => `${name}: ${p}`));
    const host = (path: string): string | undefined => {
      for (const [dst, src] of files) if (under(path, dst)) return join(ROOT, src, relative(dst, path));
      if (img.paths.some((p) => under(path, p))) return join(ROOT, relative('/app', path));
      return undefined;
    };
    for (const p of pathsNamed(argv, all))
      if (!host(p)) problems.push(`${name}: ${p} is neither in the image nor mounted`);
    const { needs, problems: needProblems } = needsOf(role, argv, all, (p) => {
      const h = host(p);
      try {
        return h ? readFileSync(h, 'utf8') : undefined;
      } catch {
        return undefined;
      }
    });
    problems.push(...needProblems.map((p) => `${name}: ${p}`));
    problems.push(...unmetEnv(needs, all).map((n) => `${name}: not set: ${describeNeed(n)}`));
  }
  return problems;
}

const seconds = (d: string | undefined): number => {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(d ?? '');
  return m ? Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : NaN;
};

/** The layout the issue asks for: pinned images, the services, two workers, healthchecks, conditions, drain time. */
export function composeLayoutProblems(doc: Obj): string[] {
  const problems: string[] = [];
  const services = obj(doc.services);
  for (const [name, svcRaw] of Object.entries(services)) {
    const svc = obj(svcRaw);
    const img = str(svc.image);
    if (img && !/^[\w./-]+:[\w.-]*\d[\w.-]*$/.test(img))
      problems.push(`${name}: image ${img} is not pinned to a version tag`);
    if (!img && svc.build === undefined) problems.push(`${name}: neither image nor build`);
    const deps = svc.depends_on;
    if (Array.isArray(deps)) problems.push(`${name}: depends_on without conditions`);
    else
      for (const [d, c] of Object.entries(obj(deps)))
        if (!str(obj(c).condition)) problems.push(`${name}: depends_on ${d} without a condition`);
  }
  const images = Object.values(services).map((s) => str(obj(s).image) ?? '');
  for (const [want, re] of [
    ['a Temporal server', /^temporalio\/(server|auto-setup):/],
    ['the Temporal UI', /^temporalio\/ui:/],
    ['admin-tools', /^temporalio\/admin-tools:/],
    ['PostgreSQL', /^postgres:/],
  ] as const)
    if (!images.some((i) => re.test(i))) problems.push(`no service runs ${want}`);
  const amendctl = Object.entries(services).filter(([, s]) => isAmendctl(obj(s)));
  const byRole = (role: Role) => amendctl.filter(([, s]) => roleOf(composeArgv(obj(s))) === role);
  const workers = byRole('worker').reduce((n, [, s]) => n + Number(obj(obj(s).deploy).replicas ?? 1), 0);
  if (workers < 2) problems.push(`${workers} worker(s), not two`);
  if (byRole('api').length < 1) problems.push('no API service (serve)');
  for (const [name, s] of amendctl) {
    const svc = obj(s);
    if (svc.build === undefined) problems.push(`${name}: not built from the Dockerfile (build: .)`);
    const test = arr(obj(svc.healthcheck).test).map(String).join(' ');
    if (!/\/healthz\b/.test(test)) problems.push(`${name}: no healthcheck on /healthz`);
    const env = composeEnv(svc);
    if (roleOf(composeArgv(svc)) === 'worker') {
      const grace = seconds(env.AMENDCTL_SHUTDOWN_GRACE);
      const stop = seconds(str(svc.stop_grace_period) ?? '10s');
      if (!(stop > (Number.isNaN(grace) ? 0 : grace)))
        problems.push(
          `${name}: stop_grace_period ${str(svc.stop_grace_period) ?? '10s (default)'} leaves no time beyond AMENDCTL_SHUTDOWN_GRACE ${env.AMENDCTL_SHUTDOWN_GRACE ?? '(unset)'}`,
        );
    }
  }
  return problems;
}

// ------------------------------------------------------------------------------------------ Kubernetes

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

export interface Manifest {
  file: string;
  index: number;
  doc: Obj;
}

export function parseManifests(file: string, text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d, index) => {
      if (d.errors.length > 0) throw new Error(`${file}#${index}: ${d.errors[0]!.message}`);
      return { file, index, doc: obj(d.toJS()) };
    })
    .filter((m) => Object.keys(m.doc).length > 0);
}

const label = (m: Manifest): string =>
  `${m.file}#${m.index} ${str(m.doc.kind) ?? '?'}/${str(obj(m.doc.metadata).name) ?? '?'}`;

/** Each document against the Kubernetes schema of its apiVersion and kind. */
export function kubernetesSchemaErrors(manifests: readonly Manifest[]): string[] {
  return manifests.flatMap((m) => {
    const Model = MODELS[`${str(m.doc.apiVersion)}/${str(m.doc.kind)}`];
    if (!Model) return [`${label(m)}: no schema for ${str(m.doc.apiVersion)} ${str(m.doc.kind)}`];
    try {
      new Model(m.doc as never).validate();
      return [];
    } catch (err) {
      const errors = (err as { errors?: Array<{ instancePath: string; message?: string }> }).errors;
      return errors?.length
        ? errors.map((e) => `${label(m)}: ${e.instancePath || '/'} ${e.message}`)
        : [`${label(m)}: ${(err as Error).message}`];
    }
  });
}

const ofKind = (ms: readonly Manifest[], kind: string) => ms.filter((m) => m.doc.kind === kind);
const named = (ms: readonly Manifest[], kind: string, name: string) =>
  ofKind(ms, kind).find((m) => obj(m.doc.metadata).name === name);
/** A ConfigMap's data, or a Secret's data and stringData (the templates: what keys exist). */
function keysOf(ms: readonly Manifest[], kind: 'ConfigMap' | 'Secret', name: string): Obj | undefined {
  const m = named(ms, kind, name);
  return m ? { ...obj(m.doc.data), ...obj(m.doc.stringData) } : undefined;
}

interface Container {
  deployment: string;
  pod: Obj;
  podMeta: Obj;
  c: Obj;
}

function containers(ms: readonly Manifest[]): Container[] {
  return ofKind(ms, 'Deployment').flatMap((m) => {
    const template = obj(obj(m.doc.spec).template);
    const pod = obj(template.spec);
    return arr(pod.containers).map((c) => ({
      deployment: str(obj(m.doc.metadata).name)!,
      pod,
      podMeta: obj(template.metadata),
      c: obj(c),
    }));
  });
}

const isAmendctlImage = (image: string | undefined): boolean => /(^|\/)amendctl:/.test(image ?? '');

/** A container's environment as Kubernetes would set it; an optional reference counts as unset. */
function podEnv(ms: readonly Manifest[], c: Obj, problems: string[], who: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of arr(c.envFrom).map(obj)) {
    const kind = from.configMapRef ? 'ConfigMap' : 'Secret';
    const ref = obj(from.configMapRef ?? from.secretRef);
    const data = keysOf(ms, kind, str(ref.name) ?? '');
    if (!data) {
      if (!ref.optional) problems.push(`${who}: envFrom ${kind} ${str(ref.name)} is not among the manifests`);
      continue;
    }
    for (const [k, v] of Object.entries(data)) env[k] = str(v) ?? '';
  }
  for (const e of arr(c.env).map(obj)) {
    const name = str(e.name)!;
    if (e.value !== undefined) {
      if (SECRET_NAME.test(name)) problems.push(`${who}: ${name} has a value in the manifest: take it from a Secret`);
      env[name] = str(e.value)!;
      continue;
    }
    const vf = obj(e.valueFrom);
    const kind = vf.secretKeyRef ? 'Secret' : vf.configMapKeyRef ? 'ConfigMap' : undefined;
    if (!kind) continue;
    const ref = obj(vf.secretKeyRef ?? vf.configMapKeyRef);
    if (ref.optional === true) continue;
    const data = keysOf(ms, kind, str(ref.name) ?? '');
    if (!data || !(str(ref.key)! in data))
      problems.push(
        `${who}: ${name} from ${kind} ${str(ref.name)} key ${str(ref.key)}, which the manifests do not define`,
      );
    else env[name] = str(data[str(ref.key)!]) ?? '';
  }
  return env;
}

/** Every API and worker container sets what it needs and has each file it is told about. */
export function kubernetesEnvProblems(ms: readonly Manifest[], img = image()): string[] {
  const problems: string[] = [];
  for (const { deployment, pod, c } of containers(ms)) {
    if (!isAmendctlImage(str(c.image))) continue;
    const who = `${deployment}/${str(c.name)}`;
    const argv = [...arr(c.command), ...arr(c.args)].map(String);
    const role = roleOf(argv);
    if (!role) continue;
    const env = { ...img.env, ...podEnv(ms, c, problems, who) };
    const volumes = new Map(arr(pod.volumes).map((v) => [str(obj(v).name)!, obj(v)]));
    const mounts = arr(c.volumeMounts).map(obj);
    /** A file as the container sees it: a key of a mounted ConfigMap or Secret (null: mounted, not one of them), or an image file. */
    const mounted = (path: string): string | null | undefined => {
      for (const mnt of mounts) {
        const dir = str(mnt.mountPath)!;
        if (!under(path, dir)) continue;
        const vol = volumes.get(str(mnt.name)!) ?? {};
        const kind = vol.configMap ? 'ConfigMap' : vol.secret ? 'Secret' : undefined;
        const ref = obj(vol.configMap ?? vol.secret);
        const data = kind && keysOf(ms, kind, str(ref.name ?? ref.secretName) ?? '');
        const key = relative(dir, path);
        return data && key in data ? (str(data[key]) ?? '') : vol.emptyDir ? null : undefined;
      }
      return undefined;
    };
    const inImage = (path: string): boolean => img.paths.some((p) => under(path, p));
    const readIn = (path: string): string | undefined => {
      const m = mounted(path);
      if (typeof m === 'string') return m;
      if (m === null || !inImage(path)) return undefined;
      try {
        return readFileSync(join(ROOT, relative('/app', path)), 'utf8');
      } catch {
        return undefined;
      }
    };
    for (const p of pathsNamed(argv, env))
      if (mounted(p) === undefined && !inImage(p))
        problems.push(`${who}: ${p} is neither in the image nor in a mounted ConfigMap or Secret`);
    const { needs, problems: needProblems } = needsOf(role, argv, env, readIn);
    problems.push(...needProblems.map((p) => `${who}: ${p}`));
    problems.push(...unmetEnv(needs, env).map((n) => `${who}: not set: ${describeNeed(n)}`));
  }
  return problems;
}

const quantity = (q: string | undefined): number => {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q ?? '');
  if (!m) return NaN;
  const unit =
    { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] as 'Ki'] ?? 1;
  return Number(m[1]) * unit;
};

/** Probes, scrape annotations, security context, resources, replicas, disruption budget, drain time. */
export function kubernetesLayoutProblems(ms: readonly Manifest[]): string[] {
  const problems: string[] = [];
  const want: Record<Role, { replicas: number; seen: boolean }> = {
    api: { replicas: 2, seen: false },
    worker: { replicas: 3, seen: false },
  };
  for (const m of ofKind(ms, 'Deployment')) {
    const spec = obj(m.doc.spec);
    const template = obj(spec.template);
    const pod = obj(template.spec);
    const ann = obj(obj(template.metadata).annotations);
    const podLabels = obj(obj(template.metadata).labels);
    for (const c of arr(pod.containers).map(obj)) {
      if (!isAmendctlImage(str(c.image))) continue;
      const who = `${str(obj(m.doc.metadata).name)}/${str(c.name)}`;
      const argv = [...arr(c.command), ...arr(c.args)].map(String);
      const role = roleOf(argv);
      if (!role) continue;
      want[role].seen = true;
      if (Number(spec.replicas ?? 1) !== want[role].replicas)
        problems.push(`${who}: ${str(spec.replicas) ?? 1} replicas, not ${want[role].replicas}`);
      const envValue = (k: string) =>
        str(
          obj(
            arr(c.env)
              .map(obj)
              .find((e) => e.name === k),
          ).value,
        );
      const port = Number(role === 'api' ? (flag(argv, '--port') ?? 8080) : envValue('AMENDCTL_METRICS_PORT'));
      const ports = arr(c.ports).map(obj);
      const portNumber = (p: unknown): number =>
        typeof p === 'number' ? p : Number(ports.find((x) => x.name === p)?.containerPort);
      for (const [probe, path] of [
        ['livenessProbe', '/healthz'],
        ['readinessProbe', '/readyz'],
      ] as const) {
        const get = obj(obj(c[probe]).httpGet);
        if (get.path !== path || portNumber(get.port) !== port)
          problems.push(`${who}: ${probe} is not GET ${path} on port ${port}`);
      }
      if (
        ann['prometheus.io/scrape'] !== 'true' ||
        ann['prometheus.io/port'] !== String(port) ||
        ann['prometheus.io/path'] !== '/metrics'
      )
        problems.push(
          `${who}: the pod's prometheus.io annotations do not say scrape "true", port "${port}", path /metrics`,
        );
      const sc = obj(c.securityContext);
      const psc = obj(pod.securityContext);
      if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) problems.push(`${who}: runAsNonRoot is not true`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${who}: readOnlyRootFilesystem is not true`);
      if (!arr(obj(sc.capabilities).drop).includes('ALL')) problems.push(`${who}: capabilities do not drop ALL`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${who}: allowPrivilegeEscalation is not false`);
      const res = obj(c.resources);
      for (const k of ['cpu', 'memory']) {
        if (!obj(res.requests)[k]) problems.push(`${who}: no ${k} request`);
        if (!obj(res.limits)[k]) problems.push(`${who}: no ${k} limit`);
      }
      if (role === 'worker') {
        const mem = str(obj(res.limits).memory);
        if (quantity(mem) !== 2 ** 30) problems.push(`${who}: memory limit ${mem}, not 1Gi`);
        const grace = seconds(envValue('AMENDCTL_SHUTDOWN_GRACE'));
        const period = Number(pod.terminationGracePeriodSeconds ?? 30);
        if (!(period >= (Number.isNaN(grace) ? 0 : grace) + 15))
          problems.push(
            `${who}: terminationGracePeriodSeconds ${period} leaves under 15 s beyond AMENDCTL_SHUTDOWN_GRACE ${envValue('AMENDCTL_SHUTDOWN_GRACE') ?? '(unset)'}`,
          );
        const selects = (sel: Obj) => Object.entries(obj(sel.matchLabels)).every(([k, v]) => podLabels[k] === v);
        if (!ofKind(ms, 'PodDisruptionBudget').some((p) => selects(obj(obj(p.doc.spec).selector))))
          problems.push(`${who}: no PodDisruptionBudget selects its pods`);
      }
      if (
        !ofKind(ms, 'Service').some(
          (s) =>
            Object.entries(obj(obj(s.doc.spec).selector)).every(([k, v]) => podLabels[k] === v) &&
            Object.keys(obj(obj(s.doc.spec).selector)).length > 0,
        )
      )
        problems.push(`${who}: no Service selects its pods`);
    }
  }
  for (const [role, w] of Object.entries(want)) if (!w.seen) problems.push(`no ${role} Deployment`);
  return problems;
}

/** kustomization.yaml lists every manifest file but the Secret templates, and only files that exist. */
export function kustomizationProblems(kustomization: Obj, files: readonly string[]): string[] {
  const listed = arr(kustomization.resources).map(String);
  const problems = listed
    .filter((f) => !files.includes(f))
    .map((f) => `kustomization.yaml lists ${f}, which does not exist`);
  for (const f of files)
    if (!/\.template\.yaml$/.test(f) && f !== 'kustomization.yaml' && !listed.includes(f))
      problems.push(`kustomization.yaml does not list ${f}`);
  for (const f of listed)
    if (/\.template\.yaml$/.test(f))
      problems.push(`kustomization.yaml lists ${f}: applying it would overwrite the real Secrets`);
  return problems;
}

/** Secret templates hold no value: every one says REPLACE or is an empty list. */
export function secretTemplateProblems(ms: readonly Manifest[]): string[] {
  return ofKind(ms, 'Secret').flatMap((m) =>
    Object.entries({ ...obj(m.doc.data), ...obj(m.doc.stringData) })
      .filter(([, v]) => !/REPLACE|^\{ "keys": \[\] \}$/.test(String(v)))
      .map(([k]) => `${label(m)}: ${k} holds a value, not a placeholder`),
  );
}
