/**
 * LDAP string representations, written to the RFCs and nothing looser:
 * - RFC 4514 (DN strings): `escapeDnValue` makes any string safe as an RDN attribute value,
 *   `parseDn` reads a DN string back into its RDNs (for DNs the server returns).
 * - RFC 4515 (search filters): `escapeFilterValue` makes any string safe as an assertion value.
 * Values are never concatenated raw into a DN or a filter anywhere in the LDAP connector.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ATTRIBUTE_TYPE = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/;

function hexBytes(ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
}

/** A string LDAP can carry as UTF-8: no lone UTF-16 surrogates (they would become U+FFFD and alias another name). */
export function assertWellFormed(value: string, what: string): void {
  if (LONE_SURROGATE.test(value)) throw new RangeError(`${what} is not well-formed Unicode (lone surrogate)`);
}

/**
 * RFC 4514 section 2.4: escape an attribute value for a DN string.
 * `"`, `+`, `,`, `;`, `<`, `>`, `\` and `=` get a backslash; a leading space or `#` and a
 * trailing space get a backslash; NUL and other control characters become `\XX` hex pairs.
 * Everything else (including non-ASCII) stays as UTF-8, as the RFC allows.
 */
export function escapeDnValue(value: string): string {
  assertWellFormed(value, 'a DN attribute value');
  let out = '';
  const chars = [...value];
  chars.forEach((ch, i) => {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f) out += hexBytes(ch);
    else if ('"+,;<>\\='.includes(ch)) out += `\\${ch}`;
    else if (i === 0 && (ch === ' ' || ch === '#')) out += `\\${ch}`;
    else if (i === chars.length - 1 && ch === ' ') out += '\\ ';
    else out += ch;
  });
  return out;
}

/** One RDN `type=value` (single-valued) followed by a parent DN, e.g. `rdn('uid', 'ann', 'ou=people,dc=x')`. */
export function childDn(type: string, value: string, parentDn: string): string {
  if (!ATTRIBUTE_TYPE.test(type)) throw new RangeError(`"${type}" is not an LDAP attribute type`);
  return `${type}=${escapeDnValue(value)},${parentDn}`;
}

/**
 * RFC 4515 section 3: escape an assertion value for a string filter. The characters the
 * grammar reserves (`*`, `(`, `)`, `\`, NUL) become `\2a`, `\28`, `\29`, `\5c`, `\00`; other
 * characters, non-ASCII included, are allowed as UTF-8 and stay as they are.
 */
export function escapeFilterValue(value: string): string {
  assertWellFormed(value, 'a filter value');
  let out = '';
  for (const ch of value) {
    if (ch === '*' || ch === '(' || ch === ')' || ch === '\\' || ch === '\u0000')
      out += `\\${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

/** `(type=value)` with the value escaped. */
export function equalityFilter(type: string, value: string): string {
  if (!ATTRIBUTE_TYPE.test(type)) throw new RangeError(`"${type}" is not an LDAP attribute type`);
  return `(${type}=${escapeFilterValue(value)})`;
}

export interface Ava {
  type: string;
  value: string;
}

/**
 * Parse an RFC 4514 DN string into RDNs (each a list of attribute-value assertions), with
 * escapes undone. `#`-hex (BER) values are returned as given, prefixed with `#`.
 * Throws a RangeError on a malformed string.
 */
export function parseDn(dn: string): Ava[][] {
  const rdns: Ava[][] = [];
  if (dn.trim() === '') return rdns;
  let i = 0;
  let rdn: Ava[] = [];
  const fail = (why: string): never => {
    throw new RangeError(`invalid DN "${dn}" at ${i}: ${why}`);
  };
  for (;;) {
    while (dn[i] === ' ') i++;
    const typeStart = i;
    while (i < dn.length && dn[i] !== '=') i++;
    if (i >= dn.length) fail('missing "="');
    const type = dn.slice(typeStart, i).trim();
    if (!ATTRIBUTE_TYPE.test(type)) fail(`bad attribute type "${type}"`);
    i++; // '='
    let value = '';
    if (dn[i] === '#') {
      const start = i;
      i++;
      while (i < dn.length && /[0-9A-Fa-f]/.test(dn[i]!)) i++;
      value = dn.slice(start, i);
    } else {
      const bytes: number[] = [];
      const flush = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
      let trailingSpaces = 0;
      while (i < dn.length && dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') {
        const ch = dn[i]!;
        if (ch === '\\') {
          const next = dn.slice(i + 1, i + 3);
          if (/^[0-9A-Fa-f]{2}$/.test(next)) {
            bytes.push(parseInt(next, 16));
            i += 3;
          } else if (i + 1 < dn.length && '"+,;<>\\=# '.includes(dn[i + 1]!)) {
            flush(dn[i + 1]!);
            i += 2;
          } else fail('bad escape');
          trailingSpaces = 0;
          continue;
        }
        if ('"<>'.includes(ch)) fail(`unescaped ${ch}`);
        const cp = dn.codePointAt(i)!;
        const s = String.fromCodePoint(cp);
        flush(s);
        trailingSpaces = ch === ' ' ? trailingSpaces + 1 : 0;
        i += s.length;
      }
      const decoded = new TextDecoder('utf-8', { fatal: true });
      try {
        value = decoded.decode(Uint8Array.from(bytes.slice(0, bytes.length - trailingSpaces)));
      } catch {
        fail('escapes are not UTF-8');
      }
    }
    rdn.push({ type, value });
    if (i >= dn.length) {
      rdns.push(rdn);
      return rdns;
    }
    if (dn[i] === '+') {
      i++;
      continue;
    }
    rdns.push(rdn);
    rdn = [];
    i++; // ',' or ';'
  }
}

/** The value of the first AVA of a DN's first RDN (`cn=a\,b,ou=g` -> `a,b`). */
export function firstRdnValue(dn: string): string {
  const first = parseDn(dn)[0]?.[0];
  if (!first) throw new RangeError(`empty DN "${dn}"`);
  return first.value;
}
