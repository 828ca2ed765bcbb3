/**
 * Reading an amendment document (JSON or YAML text) into a validated Amendment, with
 * errors that name the file and the path inside it. Pure: the caller reads the file.
 */
import { parseDocument } from 'yaml';
import { type Amendment, AmendmentSchema } from './amendment';
import { InputError, parseWith } from './errors';

/** Parse JSON or YAML text (JSON is YAML; a leading `{` is read as strict JSON for exact error positions). */
export function parseStructuredText(text: string, file: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new InputError('not valid JSON', [{ file, path: '', message: (err as Error).message }]);
    }
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new InputError('not valid YAML', doc.errors.map((e) => ({ file, path: e.linePos ? `line ${e.linePos[0].line}` : '', message: e.message.split('\n')[0] ?? e.message })));
  }
  return doc.toJS() as unknown;
}

export function parseAmendmentText(text: string, file: string): Amendment {
  return parseWith(AmendmentSchema, parseStructuredText(text, file), 'invalid amendment', file);
}
