/**
 * A contract-system webhook (Ironclad-like: a record with typed `{ type, value }`
 * properties and a link to its parent contract) mapped into an Amendment through a
 * declared field mapping (YAML or JSON, zod-validated). No glue code per contract system:
 *
 *   amendmentId: { from: id }               # a payload field ...
 *   contractId:  { link: parent }           # ... a link's record id ...
 *   sequence:    { property: amendmentNumber, default: 1 }   # ... or a typed property
 *   submittedBy: { value: ironclad }        # ... or a constant
 *   effectiveAt: { property: effectiveDate }
 *   fields:
 *     - { path: seats, property: licensedSeats, type: number }
 *     - { path: modules, property: licensedModules, type: array, slug: true }
 *     - { path: namedUsers, property: namedUsers, type: array,
 *         columns: { email: Email, name: Full Name, role: Role },
 *         values: { role: { Administrator: admin, Member: member, Viewer: viewer } } }
 *     - { path: status, property: contractStatus, values: { Active: active } }
 *
 * A source may be a list of alternatives, the first present wins
 * (`contractId: [{ link: parent }, { from: id }]`: a baseline record is its own contract).
 * A record whose sequence is 1 is a baseline: its mapped fields must make the whole
 * contract (the `contract` form). Otherwise each mapped property present becomes a `set`
 * edit. Errors are InputError naming the file and the path. Pure: no I/O (src/api/webhooks/source.ts
 * reads the payload, config.ts the mapping file).
 */
import { z } from 'zod';
import { type Amendment, AmendmentDocumentSchema } from '../../domain/amendment';
import { parseStructuredText } from '../../domain/document';
import { type InputIssue, InputError, parseWith, zodIssues } from '../../domain/errors';
import type { JsonValue } from '../../domain/json';

const Source = z.union([
  z.object({ from: z.string().min(1) }).strict(),
  z.object({ link: z.string().min(1) }).strict(),
  z.object({ property: z.string().min(1), default: z.union([z.string(), z.number()]).optional() }).strict(),
  z.object({ value: z.union([z.string(), z.number()]) }).strict(),
]);

const PROPERTY_TYPES = ['string', 'number', 'boolean', 'date', 'email', 'array', 'object'] as const;

const FieldSchema = z
  .object({
    /** A clause path of the `changes` form: seats, modules, namedUsers, term.end, custom.sla ... */
    path: z.string().min(1),
    property: z.string().min(1),
    type: z.enum(PROPERTY_TYPES).optional(),
    /** For a table (array of rows): contract field -> column name. */
    columns: z.record(z.string(), z.string()).optional(),
    /** Value translations: for a scalar `{ Active: active }`, for a table `{ role: { Administrator: admin } }`. */
    values: z.record(z.string(), z.union([z.string(), z.record(z.string(), z.string())])).optional(),
    /** Lower-case slugs for array items (module names). */
    slug: z.boolean().optional(),
  })
  .strict();

const Sources = z.union([Source, z.array(Source).min(1)]);

export const WebhookMappingSchema = z
  .object({
    amendmentId: Sources,
    contractId: Sources,
    sequence: Sources,
    submittedBy: Sources,
    effectiveAt: Sources.optional(),
    fields: z.array(FieldSchema).min(1),
  })
  .strict();
export type WebhookMapping = z.output<typeof WebhookMappingSchema>;

const TypedProperty = z.object({ type: z.string().min(1), value: z.json() }).strict();

export const WebhookPayloadSchema = z
  .object({
    id: z.string().min(1),
    event: z.string().optional(),
    recordType: z.string().optional(),
    properties: z.record(z.string(), TypedProperty),
    links: z.record(z.string(), z.object({ id: z.string().min(1), type: z.string().optional() })).default({}),
  })
  .passthrough();
export type WebhookPayload = z.output<typeof WebhookPayloadSchema>;

export function loadWebhookMapping(text: string, file: string): WebhookMapping {
  return parseWith(WebhookMappingSchema, parseStructuredText(text, file), 'invalid webhook mapping', file);
}

const slugOf = (s: string): string =>
  s
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

/** Map a webhook payload into a validated Amendment; throws InputError naming file and path. */
export function amendmentFromWebhook(payload: unknown, mapping: WebhookMapping, file = 'webhook'): Amendment {
  const p = parseWith(WebhookPayloadSchema, payload, 'invalid webhook payload', file);
  const issues: InputIssue[] = [];
  const fail = (path: string, message: string): undefined => {
    issues.push({ file, path, message });
    return undefined;
  };

  const present = (s: z.output<typeof Source>): boolean =>
    'value' in s ||
    ('from' in s && (p as Record<string, unknown>)[s.from] !== undefined) ||
    ('link' in s && p.links[s.link] !== undefined) ||
    ('property' in s && (p.properties[s.property] !== undefined || s.default !== undefined));
  const source = (name: string, alternatives: z.output<typeof Sources>): JsonValue | undefined => {
    const list = Array.isArray(alternatives) ? alternatives : [alternatives];
    const s = list.find(present) ?? list[list.length - 1]!;
    if ('value' in s) return s.value;
    if ('from' in s) {
      const v = (p as Record<string, unknown>)[s.from];
      return typeof v === 'string' || typeof v === 'number'
        ? v
        : fail(s.from, `expected a field "${s.from}" for ${name}`);
    }
    if ('link' in s) return p.links[s.link]?.id ?? fail(`links.${s.link}`, `expected a "${s.link}" link for ${name}`);
    const prop = p.properties[s.property];
    if (prop) return prop.value;
    return s.default ?? fail(`properties.${s.property}`, `expected a property "${s.property}" for ${name}`);
  };

  const convert = (f: WebhookMapping['fields'][number]): JsonValue | undefined => {
    const prop = p.properties[f.property]!;
    const at = `properties.${f.property}`;
    if (f.type && prop.type !== f.type)
      return fail(`${at}.type`, `expected a ${f.type} property for ${f.path}, got ${prop.type}`);
    let v: JsonValue = prop.value;
    if (prop.type === 'date' && typeof v === 'string') v = v.slice(0, 10);
    if (prop.type === 'number' && typeof v === 'string' && /^\d+$/.test(v)) v = Number(v);
    const scalarMap =
      f.values && Object.values(f.values).every((x) => typeof x === 'string')
        ? (f.values as Record<string, string>)
        : undefined;
    if (scalarMap && typeof v === 'string') {
      if (!(v in scalarMap))
        return fail(`${at}.value`, `expected one of ${Object.keys(scalarMap).join(', ')} for ${f.path}, got "${v}"`);
      v = scalarMap[v]!;
    }
    if (Array.isArray(v)) {
      const items: JsonValue[] = [];
      for (const [i, item] of v.entries()) {
        const raw =
          item !== null && typeof item === 'object' && !Array.isArray(item) && 'value' in item && 'type' in item
            ? (item['value'] as JsonValue)
            : item;
        if (f.columns) {
          if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
            return fail(`${at}.value[${i}]`, `expected a row with columns ${Object.values(f.columns).join(', ')}`);
          const row: Record<string, JsonValue> = {};
          for (const [field, column] of Object.entries(f.columns)) {
            let cell = raw[column];
            if (cell === undefined)
              return fail(`${at}.value[${i}].${column}`, `expected a "${column}" column for ${f.path}.${field}`);
            const table = f.values?.[field];
            if (table && typeof table === 'object' && typeof cell === 'string') {
              if (!(cell in table))
                return fail(
                  `${at}.value[${i}].${column}`,
                  `expected one of ${Object.keys(table).join(', ')}, got "${cell}"`,
                );
              cell = table[cell]!;
            }
            row[field] = cell;
          }
          items.push(row);
        } else items.push(f.slug && typeof raw === 'string' ? slugOf(raw) : raw);
      }
      v = items;
    }
    return v;
  };

  const head: Record<string, JsonValue | undefined> = {
    amendmentId: source('amendmentId', mapping.amendmentId),
    contractId: source('contractId', mapping.contractId),
    sequence: source('sequence', mapping.sequence),
    submittedBy: source('submittedBy', mapping.submittedBy),
  };
  const optional = mapping.effectiveAt;
  if (optional && (Array.isArray(optional) ? optional : [optional]).some(present))
    head['effectiveAt'] = source('effectiveAt', optional);
  if (typeof head['sequence'] === 'string' && /^\d+$/.test(head['sequence']))
    head['sequence'] = Number(head['sequence']);

  const values: Array<{ path: string; value: JsonValue }> = [];
  for (const f of mapping.fields) {
    if (!(f.property in p.properties)) continue;
    const v = convert(f);
    if (v !== undefined) values.push({ path: f.path, value: v });
  }
  if (issues.length > 0) throw new InputError('the webhook does not fit its mapping', issues);

  const doc: Record<string, unknown> = Object.fromEntries(Object.entries(head).filter(([, v]) => v !== undefined));
  if (doc['sequence'] === 1) {
    const contract: Record<string, unknown> = { custom: {} };
    for (const { path, value } of values) {
      const [top, sub] = path.split('.', 2) as [string, string | undefined];
      if (sub === undefined) contract[top] = value;
      else contract[top] = { ...((contract[top] as Record<string, unknown>) ?? {}), [sub]: value };
    }
    doc['contract'] = contract;
  } else {
    doc['changes'] = values.map(({ path, value }) => ({ op: 'set', path, value }));
  }
  const r = AmendmentDocumentSchema.safeParse(doc);
  if (!r.success) throw new InputError('the webhook does not make a valid amendment', zodIssues(r.error, file));
  return r.data;
}
