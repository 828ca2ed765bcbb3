/** Reading a delivery's JSON body and the fields a source configuration names (`data.envelopeId`). */

/** The body parsed, or undefined when it is not JSON. */
export function parseJson(body: Buffer | string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as unknown };
  } catch {
    return undefined;
  }
}

/** The value at a dotted path (`payload.workflowID`; `''` is the document itself), or undefined. */
export function valueAt(doc: unknown, path: string): unknown {
  if (path === '') return doc;
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** A scalar field as text (ids are strings or numbers in payloads), or undefined. */
export function textAt(doc: unknown, path: string): string | undefined {
  const v = valueAt(doc, path);
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
