/**
 * A configured webhook source: its scheme's verifier, then the way from a verified delivery to
 * amendments: the body's JSON, the event filter (events that change no contract carry none),
 * the thin-event fetch, the payload's shape, and the declared mapping (mapping.ts).
 */
import { InputError } from '../../domain/errors';
import { amendmentFromWebhook, type WebhookMapping } from './mapping';
import type { RecordFetcher } from './fetch';
import { parseJson, textAt, valueAt } from './json';
import { isRefusal, refuse } from './refusal';
import { recordOf, type Shape } from './shape';
import type { Verifier } from './signature';
import type { Refusal, WebhookSource } from './types';

export interface SourceParts {
  name: string;
  scheme: string;
  verify: Verifier;
  mapping: WebhookMapping;
  shape: Shape;
  /** Where the record is in the payload (or the fetched document): a dotted path, `''` the root. */
  at: string;
  /** Only these events carry amendments; the type is read at `eventType`. */
  events?: { types: string[]; at: string };
  /** A thin event: the record is fetched at `path`, whose `{field.path}` placeholders come from the event. */
  fetch?: { fetcher: RecordFetcher; path: string };
}

const PLACEHOLDER = /\{([A-Za-z_][\w.-]*)\}/g;

export function createSource(p: SourceParts): WebhookSource {
  return {
    name: p.name,
    scheme: p.scheme,
    verify: async (req) => p.verify(req),
    async amendments(req) {
      const body = parseJson(req.body);
      if (!body) return refuse('body-malformed', 'the body is not JSON');
      let doc = body.value;
      if (p.events) {
        const type = textAt(doc, p.events.at);
        if (type === undefined) return refuse('payload-unmappable', `${p.events.at}: expected the event's type`);
        if (!p.events.types.includes(type)) return [];
      }
      if (p.fetch) {
        const path = fillPath(p.fetch.path, doc);
        if (isRefusal(path)) return path;
        const fetched = await p.fetch.fetcher.get(path);
        if (isRefusal(fetched)) return fetched;
        doc = fetched.record;
      }
      const record = recordOf(p.shape, p.at === '' ? doc : valueAt(doc, p.at), p.mapping);
      if (isRefusal(record)) return record;
      try {
        return [amendmentFromWebhook(record, p.mapping, p.name)];
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        const prefix = p.at === '' ? '' : `${p.at}.`;
        return refuse(
          'payload-unmappable',
          err.issues.map((i) => `${i.path ? `${prefix}${i.path}` : p.at || '(root)'}: ${i.message}`).join('; '),
        );
      }
    },
  };
}

/** The fetch path with each `{field}` replaced by the event's value (URL-encoded), or a Refusal naming the missing field. */
function fillPath(template: string, doc: unknown): string | Refusal {
  let missing: string | undefined;
  const path = template.replace(PLACEHOLDER, (_m, field: string) => {
    const v = textAt(doc, field);
    if (v === undefined) missing ??= field;
    return encodeURIComponent(v ?? '');
  });
  return missing === undefined
    ? path
    : refuse('payload-unmappable', `${missing}: expected the id of the record to fetch`);
}
