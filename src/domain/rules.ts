/**
 * The rules language: a YAML document, zod-validated, compiled once into an indexed Ruleset.
 *
 *   version: 1
 *   targets: [idp, warehouse]              # the targets rules may address, in plan order
 *   maps:
 *     role:   { admin: { idp: "{customer}-admins", warehouse: app_admin }, ... }
 *     module: { "*": { idp: "{customer}-mod-{module}" } }     # "*" = any module
 *   validations:                           # any that holds makes the amendment invalid
 *     - id: seats-cover-named-users
 *       when: size(after.namedUsers) > after.seats
 *       message: "{size(after.namedUsers)} named users exceed the {after.seats} seats"
 *   rules:
 *     - id: named-user-added
 *       on: { clause: namedUsers, kind: added }   # or a list; omitted = every change
 *       when: after.status == "active"            # CEL over change, before, after, user, module ...
 *       actions:
 *         - { target: idp, action: joinGroup, subject: "{user.email}", group: "{maps.role[user.role].idp}" }
 *         - { target: idp, action: joinGroup, subject: "{user.email}", forEach: after.modules, as: m,
 *             group: "{maps.module[m].idp}" }
 *       approval: never | always | { when: <CEL over plan and rule>, message: <template> }
 *
 * Conditions are CEL; `{...}` in any text is a CEL expression too. Errors name the file,
 * the rule id and the field path. Pure: the caller reads the file.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { z } from 'zod';
import {
  CEL_VARIABLES,
  CelCompileError,
  type CompiledExpression,
  type Template,
  compileCel,
  compileTemplate,
} from './cel';
import { RoleSchema } from './contract';
import { parseStructuredText } from './document';
import { type InputIssue, InputError, formatPath } from './errors';
import { canonicalJson } from './json';
import { ACTIONS, type Action, type ClauseName, RiskSchema, type Risk } from './plan';

const CLAUSES = [
  'customer',
  'status',
  'tier',
  'seats',
  'modules',
  'namedUsers',
  'term',
  'region',
  'custom',
] as const satisfies readonly ClauseName[];
const KINDS = ['added', 'removed', 'modified'] as const;
const Identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an identifier (letters, digits, "_")');
const RuleId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/, 'a rule id: letters, digits, ".", "_", ":" and "-"');
const Text = z.string().min(1);

const SelectorSchema = z
  .object({
    clause: z.enum(CLAUSES),
    kind: z.union([z.enum(KINDS), z.array(z.enum(KINDS)).min(1)]).optional(),
    /** A field of a keyed item or of a structured clause: `role`, `name`, `end`. */
    field: z.string().min(1).optional(),
    /** One item: a module name, a custom key, a named user's email. */
    key: z.string().min(1).optional(),
  })
  .strict();

const ActionSpecSchema = z
  .object({
    target: z.string().min(1),
    action: z.enum(ACTIONS),
    subject: Text,
    group: Text.optional(),
    role: Text.optional(),
    attributes: z.record(z.string(), z.string()).optional(),
    forEach: Text.optional(),
    as: Identifier.optional(),
    when: Text.optional(),
    /** A risk level, or a template giving one. Default by action. */
    risk: z.string().optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    const needs: Partial<Record<Action, 'group' | 'role' | 'attributes'>> = {
      joinGroup: 'group',
      leaveGroup: 'group',
      grantRole: 'role',
      revokeRole: 'role',
      ensureAccount: 'attributes',
      updateAttributes: 'attributes',
    };
    const need = needs[a.action];
    if (need && a[need] === undefined)
      ctx.addIssue({ code: 'custom', path: [need], message: `${a.action} needs "${need}"` });
    for (const f of ['group', 'role', 'attributes'] as const) {
      if (a[f] !== undefined && f !== need)
        ctx.addIssue({ code: 'custom', path: [f], message: `${a.action} takes no "${f}"` });
    }
    if (a.as !== undefined && a.forEach === undefined)
      ctx.addIssue({ code: 'custom', path: ['as'], message: '"as" names the item of "forEach", which is missing' });
  });

const ApprovalSchema = z.union([
  z.enum(['never', 'always']),
  z.object({ when: Text.optional(), message: Text.optional() }).strict(),
]);

const RuleSchema = z
  .object({
    id: RuleId,
    description: z.string().optional(),
    on: z.union([SelectorSchema, z.array(SelectorSchema).min(1)]).optional(),
    when: Text.optional(),
    actions: z.array(ActionSpecSchema).default([]),
    approval: ApprovalSchema.default('never'),
  })
  .strict();

const ValidationSchema = z
  .object({
    id: RuleId,
    description: z.string().optional(),
    forEach: Text.optional(),
    as: Identifier.optional(),
    when: Text,
    message: Text,
  })
  .strict();

const TargetMapSchema = z.record(z.string().min(1), Text);

export const RulesetDocumentSchema = z
  .object({
    version: z.literal(1),
    description: z.string().optional(),
    targets: z.array(z.string().regex(/^[a-z][a-z0-9_-]*$/, 'a target name (a-z, 0-9, "_", "-")')).min(1),
    maps: z
      .object({
        role: z.partialRecord(RoleSchema, TargetMapSchema).default({}),
        module: z.record(z.string().min(1), TargetMapSchema).default({}),
      })
      .strict()
      .default({ role: {}, module: {} }),
    validations: z.array(ValidationSchema).default([]),
    rules: z.array(RuleSchema).default([]),
  })
  .strict();
export type RulesetDocument = z.output<typeof RulesetDocumentSchema>;
export type RuleDocument = RulesetDocument['rules'][number];

export interface CompiledAction {
  target: string;
  action: Action;
  subject: Template;
  group?: Template;
  role?: Template;
  attributes?: Array<[string, Template]>;
  forEach?: CompiledExpression;
  as: string;
  when?: CompiledExpression;
  risk?: Template;
}

export interface CompiledRule {
  id: string;
  /** Position in the document: the order rules are applied and reported in. */
  index: number;
  description?: string;
  when?: CompiledExpression;
  actions: CompiledAction[];
  approval:
    | { mode: 'never' }
    | { mode: 'always'; message?: Template }
    | { mode: 'when'; when: CompiledExpression; message?: Template };
}

export interface CompiledValidation {
  id: string;
  forEach?: CompiledExpression;
  as: string;
  when: CompiledExpression;
  message: Template;
}

export interface Ruleset {
  /** sha256 of the canonical JSON of the validated document: comments and key order do not count. */
  hash: string;
  file: string;
  document: RulesetDocument;
  targets: string[];
  roleMap: Map<string, Map<string, Template>>;
  moduleMap: Map<string, Map<string, Template>>;
  rules: CompiledRule[];
  validations: CompiledValidation[];
  /** Rules by `${clause}|${kind}|${field}|${key}`, `*` for any: planning never scans every rule. */
  index: Map<string, CompiledRule[]>;
}

export const ANY = '*';
export const NONE = '-';

export function indexKey(clause: string, kind: string, field: string, key: string): string {
  return `${clause}|${kind}|${field}|${key}`;
}

/** Parse, validate and compile a ruleset. Throws InputError naming the file, the rule and the field. */
export function loadRuleset(text: string, file: string): Ruleset {
  const raw = parseStructuredText(text, file);
  const parsed = RulesetDocumentSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InputError(
      'invalid rules',
      parsed.error.issues.flatMap((i) => {
        if (i.code === 'unrecognized_keys')
          return i.keys.map((k) => issueAt(file, raw, [...i.path, k], 'unknown field'));
        if (i.code === 'invalid_key' && i.issues[0])
          return [issueAt(file, raw, i.path, `invalid name: ${i.issues[0].message}`)];
        return [issueAt(file, raw, i.path, i.message)];
      }),
    );
  }
  return compileRuleset(parsed.data, file);
}

/** Compile a validated document (throws InputError for expressions that do not compile). */
export function compileRuleset(doc: RulesetDocument, file: string): Ruleset {
  const issues: InputIssue[] = [];
  const at = (path: Array<string | number>, message: string): void => {
    issues.push(issueAt(file, doc, path, message));
  };
  const cel = (
    path: Array<string | number>,
    src: string | undefined,
    extra: string[] = [],
  ): CompiledExpression | undefined => {
    if (src === undefined) return undefined;
    try {
      return compileCel(src, extra);
    } catch (err) {
      at(path, `expected a CEL expression: ${(err as Error).message}`);
      return undefined;
    }
  };
  const tpl = (path: Array<string | number>, src: string | undefined, extra: string[] = []): Template | undefined => {
    if (src === undefined) return undefined;
    try {
      return compileTemplate(src, extra);
    } catch (err) {
      at(path, `expected a template with CEL in {...}: ${err instanceof CelCompileError ? err.message : String(err)}`);
      return undefined;
    }
  };

  const targets = doc.targets;
  const mapOf = (name: 'role' | 'module', extra: string[]): Map<string, Map<string, Template>> => {
    const out = new Map<string, Map<string, Template>>();
    for (const [k, perTarget] of Object.entries(doc.maps[name])) {
      const m = new Map<string, Template>();
      for (const [target, src] of Object.entries(perTarget ?? {})) {
        if (!targets.includes(target))
          at(['maps', name, k, target], `unknown target "${target}" (expected one of ${targets.join(', ')})`);
        const t = tpl(['maps', name, k, target], src, extra);
        if (t) m.set(target, t);
      }
      out.set(k, m);
    }
    return out;
  };
  const roleMap = mapOf('role', []);
  const moduleMap = mapOf('module', ['module']);

  const seen = new Set<string>();
  const rules: CompiledRule[] = doc.rules.map((r, ri) => {
    if (seen.has(r.id)) at(['rules', ri, 'id'], `duplicate rule id "${r.id}"`);
    seen.add(r.id);
    const actions = r.actions.map((a, ai): CompiledAction => {
      const p = (f: string): Array<string | number> => ['rules', ri, 'actions', ai, f];
      if (!targets.includes(a.target))
        at(p('target'), `unknown target "${a.target}" (expected one of ${targets.join(', ')})`);
      const as = a.as ?? 'item';
      const extra = [as];
      if (a.risk !== undefined && !a.risk.includes('{') && !RiskSchema.safeParse(a.risk).success)
        at(p('risk'), 'expected low, medium, high or a template giving one');
      const out: CompiledAction = {
        target: a.target,
        action: a.action,
        subject: tpl(p('subject'), a.subject, extra)!,
        as,
      };
      const group = tpl(p('group'), a.group, extra);
      if (group) out.group = group;
      const role = tpl(p('role'), a.role, extra);
      if (role) out.role = role;
      if (a.attributes)
        out.attributes = Object.entries(a.attributes).flatMap(([k, v]) => {
          const t = tpl(['rules', ri, 'actions', ai, 'attributes', k], v, extra);
          return t ? [[k, t] as [string, Template]] : [];
        });
      const forEach = cel(p('forEach'), a.forEach);
      if (forEach) out.forEach = forEach;
      const when = cel(p('when'), a.when, extra);
      if (when) out.when = when;
      const risk = tpl(p('risk'), a.risk, extra);
      if (risk) out.risk = risk;
      return out;
    });
    const rule: CompiledRule = { id: r.id, index: ri, actions, approval: { mode: 'never' } };
    if (r.description !== undefined) rule.description = r.description;
    const when = cel(['rules', ri, 'when'], r.when);
    if (when) rule.when = when;
    const ap = r.approval;
    if (ap === 'always') rule.approval = { mode: 'always' };
    else if (typeof ap === 'object') {
      const message = tpl(['rules', ri, 'approval', 'message'], ap.message);
      if (ap.when === undefined) rule.approval = message ? { mode: 'always', message } : { mode: 'always' };
      else {
        const w = cel(['rules', ri, 'approval', 'when'], ap.when);
        if (w) rule.approval = message ? { mode: 'when', when: w, message } : { mode: 'when', when: w };
      }
    }
    return rule;
  });

  const validations: CompiledValidation[] = doc.validations.map((v, vi) => {
    if (seen.has(v.id)) at(['validations', vi, 'id'], `duplicate rule id "${v.id}"`);
    seen.add(v.id);
    const as = v.as ?? 'item';
    return {
      id: v.id,
      as,
      when: cel(['validations', vi, 'when'], v.when, [as])!,
      message: tpl(['validations', vi, 'message'], v.message, [as])!,
      ...(v.forEach !== undefined ? { forEach: cel(['validations', vi, 'forEach'], v.forEach)! } : {}),
    };
  });

  if (issues.length > 0) throw new InputError('invalid rules', issues);

  const index = new Map<string, CompiledRule[]>();
  doc.rules.forEach((r, ri) => {
    const selectors = r.on === undefined ? [undefined] : Array.isArray(r.on) ? r.on : [r.on];
    for (const s of selectors) {
      const kinds = s?.kind === undefined ? [ANY] : Array.isArray(s.kind) ? s.kind : [s.kind];
      for (const kind of kinds) {
        const k = indexKey(s?.clause ?? ANY, kind, s?.field ?? ANY, s?.key ?? ANY);
        const list = index.get(k) ?? [];
        if (!list.includes(rules[ri]!)) list.push(rules[ri]!);
        index.set(k, list);
      }
    }
  });

  return {
    hash: bytesToHex(sha256(utf8ToBytes(canonicalJson(doc)))),
    file,
    document: doc,
    targets,
    roleMap,
    moduleMap,
    rules,
    validations,
    index,
  };
}

/** An issue at a document path, with the rule id named when the path is inside a rule. */
function issueAt(file: string, doc: unknown, path: ReadonlyArray<PropertyKey>, message: string): InputIssue {
  let prefix = '';
  if ((path[0] === 'rules' || path[0] === 'validations') && typeof path[1] === 'number') {
    const list = (doc as Record<string, unknown> | null)?.[path[0]];
    const id = Array.isArray(list) ? (list[path[1]] as { id?: unknown } | undefined)?.id : undefined;
    if (typeof id === 'string') prefix = `${path[0] === 'rules' ? 'rule' : 'validation'} "${id}": `;
  }
  return { file, path: formatPath(path), message: prefix + message };
}

/** The variables a rule expression can use (for documentation and `rules validate`). */
export const RULE_VARIABLES: readonly string[] = CEL_VARIABLES;

export function isRisk(v: string): v is Risk {
  return RiskSchema.safeParse(v).success;
}
