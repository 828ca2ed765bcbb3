/**
 * How a source's payload carries the contract record, turned into the typed record that the
 * webhook mapping (mapping.ts) reads: `{ id, properties: { name: { type, value } }, links }`.
 *
 * - `typed`: the payload is that record already (Ironclad records, our own senders).
 * - `hubspot`: a CRM object as a workflow webhook or the CRM API sends it, `{ id | objectId,
 *   properties: { name: value | { value } } }`, or a flat object of properties with `hs_object_id`.
 * - `docusign`: a Connect envelope (`data.envelopeSummary`, or an envelope at the root): its
 *   envelope custom fields by name and its recipients' tabs by tab label (custom fields win).
 *
 * HubSpot and DocuSign send every value as text; a property gets the type its mapping field
 * declares, when its text reads as one (`"12"` a number, `"a;b"` an array as HubSpot writes
 * multi-selects, `"1735689600000"` a date in epoch milliseconds). Text that does not read as the
 * declared type stays a string, so the mapping refuses it naming the property. Empty values
 * (null) are absent.
 */
import type { WebhookMapping } from './mapping';
import { isObject, textAt, valueAt } from './json';
import { refuse } from './refusal';

export const SHAPES = ['typed', 'hubspot', 'docusign'] as const;
export type Shape = (typeof SHAPES)[number];

/** The typed record in `doc`, or a Refusal (422) when the payload carries none. */
export function recordOf(shape: Shape, doc: unknown, mapping: WebhookMapping): unknown {
  if (shape === 'typed') return doc;
  if (shape === 'hubspot') return hubspotRecord(doc, mapping);
  return docusignRecord(doc, mapping);
}

function hubspotRecord(doc: unknown, mapping: WebhookMapping): unknown {
  if (Array.isArray(doc))
    return refuse(
      'payload-unmappable',
      '(root): HubSpot subscription events (an array) carry no record; send the object from a workflow webhook',
    );
  if (!isObject(doc)) return refuse('payload-unmappable', '(root): expected a HubSpot object');
  const props = isObject(doc['properties']) ? doc['properties'] : doc;
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) raw[k] = isObject(v) && 'value' in v ? v['value'] : v;
  const id = textAt(doc, 'id') ?? textAt(doc, 'objectId') ?? textAt(doc, 'dealId') ?? textAt(raw, 'hs_object_id');
  if (id === undefined)
    return refuse('payload-unmappable', "id: expected the object's id (id, objectId or properties.hs_object_id)");
  return { id, properties: typed(raw, mapping), links: {} };
}

function docusignRecord(doc: unknown, mapping: WebhookMapping): unknown {
  const summary = valueAt(doc, 'data.envelopeSummary');
  const envelope = isObject(summary) ? summary : isObject(doc) && 'envelopeId' in doc ? doc : undefined;
  if (!envelope)
    return refuse(
      'payload-unmappable',
      'data.envelopeSummary: expected the envelope (include the envelope summary, custom fields, recipients and tabs in the Connect configuration)',
    );
  const id = textAt(envelope, 'envelopeId') ?? textAt(doc, 'data.envelopeId');
  if (id === undefined) return refuse('payload-unmappable', 'data.envelopeId: expected the envelope id');
  const raw: Record<string, unknown> = {};
  const recipients = valueAt(envelope, 'recipients');
  for (const list of isObject(recipients) ? Object.values(recipients) : []) {
    for (const r of Array.isArray(list) ? list : []) {
      const tabs = valueAt(r, 'tabs');
      for (const [kind, items] of Object.entries(isObject(tabs) ? tabs : {})) {
        for (const tab of Array.isArray(items) ? items : []) {
          const [label, value] = tabValue(kind, tab);
          if (label !== undefined && !(label in raw)) raw[label] = value;
        }
      }
    }
  }
  for (const kind of ['textCustomFields', 'listCustomFields']) {
    const fields = valueAt(envelope, `customFields.${kind}`);
    for (const f of Array.isArray(fields) ? fields : []) {
      const name = textAt(f, 'name');
      if (name !== undefined) raw[name] = valueAt(f, 'value');
    }
  }
  return { id, properties: typed(raw, mapping), links: {} };
}

/** A tab's label and value: a checkbox is its `selected`, a radio group its selected radio's value. */
function tabValue(kind: string, tab: unknown): [string | undefined, unknown] {
  if (kind === 'radioGroupTabs') {
    const radios = valueAt(tab, 'radios');
    const chosen = Array.isArray(radios) ? radios.find((r) => String(valueAt(r, 'selected')) === 'true') : undefined;
    return [textAt(tab, 'groupName'), chosen === undefined ? null : valueAt(chosen, 'value')];
  }
  if (kind === 'checkboxTabs') return [textAt(tab, 'tabLabel'), String(valueAt(tab, 'selected')) === 'true'];
  return [textAt(tab, 'tabLabel'), valueAt(tab, 'value')];
}

type Typed = { type: string; value: unknown };

function typed(raw: Record<string, unknown>, mapping: WebhookMapping): Record<string, Typed> {
  const declared = new Map(mapping.fields.map((f) => [f.property, f.type]));
  const out: Record<string, Typed> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === null || value === undefined || value === '') continue;
    out[name] = read(value, declared.get(name));
  }
  return out;
}

function read(value: unknown, type: string | undefined): Typed {
  const text = typeof value === 'string' ? value.trim() : undefined;
  switch (type) {
    case 'number':
      if (typeof value === 'number') return { type, value };
      if (text !== undefined && /^-?\d+(\.\d+)?$/.test(text)) return { type, value: Number(text) };
      break;
    case 'boolean':
      if (typeof value === 'boolean') return { type, value };
      if (text === 'true' || text === 'false') return { type, value: text === 'true' };
      break;
    case 'date':
      if (text !== undefined && /^\d{10,16}$/.test(text)) return { type, value: new Date(Number(text)).toISOString() };
      if (text !== undefined && /^\d{4}-\d{2}-\d{2}/.test(text)) return { type, value: text };
      break;
    case 'array':
      if (Array.isArray(value)) return { type, value };
      if (text !== undefined)
        return {
          type,
          value: text
            .split(';')
            .map((s) => s.trim())
            .filter(Boolean),
        };
      break;
    case 'email':
      if (text !== undefined) return { type, value: text };
      break;
  }
  if (typeof value === 'number') return { type: 'number', value };
  if (typeof value === 'boolean') return { type: 'boolean', value };
  if (Array.isArray(value)) return { type: 'array', value };
  if (isObject(value)) return { type: 'object', value };
  return { type: 'string', value: text ?? String(value) };
}
