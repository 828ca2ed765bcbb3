/**
 * The OpenAPI 3.1 document, generated from the routes' declarations and the zod schemas
 * (z.toJSONSchema over one registry, so shared schemas are components referenced by $ref).
 * Nothing in it is written by hand but words.
 */
import { z } from 'zod';
import { PROBLEM_MEDIA_TYPE } from './problem';
import { type Route, statusesOf } from './route';
import { NAMED_SCHEMAS, ProblemSchema } from './schemas';
import { SCOPES } from './auth';

type Json = Record<string, unknown>;
const COMPONENTS = '#/components/schemas/';

/** Components from the named schemas; zod's shared definitions (recursive JSON values) become components of their own. */
function components(): { schemas: Record<string, Json>; ref: (schema: z.ZodType) => Json } {
  const registry = z.registry<{ id: string }>();
  const ids = new Map<z.ZodType, string>();
  for (const [id, schema] of Object.entries(NAMED_SCHEMAS)) {
    registry.add(schema, { id });
    ids.set(schema, id);
  }
  // Input form for all: documents are read as sent, and views may carry fields beyond those documented.
  const out = z.toJSONSchema(registry, { target: 'draft-2020-12', io: 'input', uri: (id) => `${COMPONENTS}${id}` }) as {
    schemas: Record<string, Json>;
  };
  const shared = (out.schemas.__shared?.$defs ?? {}) as Record<string, Json>;
  const sharedName = (def: string): string => `Json${def.replace(/^schema/, '')}`;
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (!v || typeof v !== 'object') return v;
    const o: Json = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === '$schema' || k === '$id') continue;
      if (k === '$ref' && typeof x === 'string' && x.startsWith(`${COMPONENTS}__shared#/$defs/`))
        o[k] = `${COMPONENTS}${sharedName(x.slice(x.lastIndexOf('/') + 1))}`;
      else o[k] = rewrite(x);
    }
    return o;
  };
  const schemas: Record<string, Json> = {};
  for (const [id, s] of Object.entries(out.schemas)) if (id !== '__shared') schemas[id] = rewrite(s) as Json;
  for (const [def, s] of Object.entries(shared))
    schemas[sharedName(def)] = { ...(rewrite(s) as Json), description: 'any JSON value' };
  return {
    schemas,
    ref: (schema) => {
      const id = ids.get(schema);
      if (!id) throw new Error('a route refers to a schema that is not in NAMED_SCHEMAS');
      return { $ref: `${COMPONENTS}${id}` };
    },
  };
}

const HEADER_DOCS: Record<string, { description: string; schema: Json }> = {
  Location: { description: "the amendment's status URL", schema: { type: 'string' } },
  'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'integer' } },
  'WWW-Authenticate': {
    description: 'RFC 6750: the Bearer challenge, with error and scope',
    schema: { type: 'string' },
  },
};

export function openApiDocument(routes: readonly Route[], info: { version: string }): Json {
  const { schemas, ref } = components();
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const parameters = Object.entries(r.params?.shape ?? {}).map(([name, s]) => {
      const { $schema: _drop, ...schema } = z.toJSONSchema(s as z.ZodType, { target: 'draft-2020-12', io: 'input' });
      return { name, in: 'path', required: true, schema };
    });
    const responses: Record<string, Json> = {};
    for (const [status, a] of Object.entries(statusesOf(r))) {
      const problem = Number(status) >= 400;
      const schema = problem ? ref(ProblemSchema) : a.schema ? ref(a.schema) : undefined;
      responses[status] = {
        description: a.description,
        ...(a.headers ? { headers: Object.fromEntries(a.headers.map((h) => [h, HEADER_DOCS[h]])) } : {}),
        ...(schema ? { content: { [problem ? PROBLEM_MEDIA_TYPE : 'application/json']: { schema } } } : {}),
      };
    }
    const body = r.body
      ? {
          requestBody: {
            required: true,
            ...(r.body.description ? { description: r.body.description } : {}),
            content:
              r.body.media === 'raw'
                ? { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } }
                : Object.fromEntries(
                    r.body.media.map((m) => [m, { schema: r.body?.schema ? ref(r.body.schema) : {} }]),
                  ),
          },
        }
      : {};
    (paths[r.path] ??= {})[r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.tag],
      security: r.access === 'public' || r.access === 'signature' ? [] : [{ bearer: [r.access] }],
      ...(parameters.length ? { parameters } : {}),
      ...body,
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'amendctl API',
      version: info.version,
      description:
        'Contract amendments turned into access changes, on Temporal. Errors are RFC 9457 problems (application/problem+json).',
    },
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: `Authorization: Bearer <credential>: an API key (amendctl serve key new) or an access token (a JWT from the configured issuer, verified against its JWKS, scopes in its "scope" claim). Scopes: ${SCOPES.map((x) => `${x} (${SCOPE_DOCS[x]})`).join(', ')}.`,
        },
      },
    },
  };
}

const SCOPE_DOCS: Record<(typeof SCOPES)[number], string> = {
  submit: 'submit amendments',
  read: 'read amendments and contracts',
  cancel: 'cancel a scheduled or queued amendment',
  approve: 'approve or reject (the approvals API)',
};
