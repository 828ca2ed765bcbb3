/** RFC 4514 / RFC 4515 escaping, unit level (the LDAP connector tests prove them against slapd). */
import fc from 'fast-check';
import { FilterParser, EqualityFilter } from 'ldapts';
import {
  childDn,
  escapeDnValue,
  escapeFilterValue,
  equalityFilter,
  firstRdnValue,
  parseDn,
} from '../../src/connectors/ldap-escape';

describe('escapeDnValue (RFC 4514)', () => {
  it.each([
    ['ann@acme.com', 'ann@acme.com'],
    ['Smith, John', 'Smith\\, John'],
    ['a+b', 'a\\+b'],
    ['x=y', 'x\\=y'],
    ['"quoted"', '\\"quoted\\"'],
    ['<tag>;', '\\<tag\\>\\;'],
    ['back\\slash', 'back\\\\slash'],
    [' lead', '\\ lead'],
    ['trail ', 'trail\\ '],
    ['#hash', '\\#hash'],
    ['mid#dle', 'mid#dle'],
    ['nul\u0000byte', 'nul\\00byte'],
    ['tab\tnl\n', 'tab\\09nl\\0a'],
    ['*)(uid=*', '*)(uid\\=*'],
    ["'; DROP TABLE users; --", "'\\; DROP TABLE users\\; --"],
    ['ａnn', 'ａnn'],
    ['Ωmega', 'Ωmega'],
    [' ', '\\ '],
    ['  ', '\\ \\ '],
  ])('%j -> %j', (raw, escaped) => {
    expect(escapeDnValue(raw)).toBe(escaped);
  });

  it('refuses lone surrogates (they would be stored as U+FFFD and alias another name)', () => {
    expect(() => escapeDnValue('a\uD800b')).toThrow(RangeError);
  });

  it('round-trips through parseDn for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (v) => {
        const dn = childDn('cn', v, 'ou=groups,dc=x');
        const rdns = parseDn(dn);
        expect(rdns).toHaveLength(3);
        expect(rdns[0]).toEqual([{ type: 'cn', value: v }]);
        expect(firstRdnValue(dn)).toBe(v);
      }),
      { numRuns: 500 },
    );
  });

  it('never lets a value add an RDN or an AVA', () => {
    for (const v of ['a,dc=evil', 'a+uid=root', 'a;ou=x', 'a\\,b', 'a\\']) {
      const rdns = parseDn(childDn('uid', v, 'ou=people,dc=x'));
      expect(rdns).toHaveLength(3);
      expect(rdns[0]).toEqual([{ type: 'uid', value: v }]);
    }
  });

  it('parses the hex form servers return (\\2C, UTF-8 pairs)', () => {
    expect(firstRdnValue('cn=a\\2Cb\\c3\\a9,ou=g')).toBe('a,bé');
    expect(parseDn('cn=a+sn=b,dc=x')).toEqual([
      [
        { type: 'cn', value: 'a' },
        { type: 'sn', value: 'b' },
      ],
      [{ type: 'dc', value: 'x' }],
    ]);
    expect(() => parseDn('cn=a\\zz,dc=x')).toThrow(RangeError);
    expect(() => parseDn('novalue')).toThrow(RangeError);
  });

  it('refuses an attribute type that is not one', () => {
    expect(() => childDn('uid,dc=x', 'a', 'dc=y')).toThrow(RangeError);
  });
});

describe('escapeFilterValue (RFC 4515)', () => {
  it.each([
    ['ann@acme.com', 'ann@acme.com'],
    ['*', '\\2a'],
    ['*)(uid=*', '\\2a\\29\\28uid=\\2a'],
    ['a)(|(objectClass=*)', 'a\\29\\28|\\28objectClass=\\2a\\29'],
    ['back\\slash', 'back\\5cslash'],
    ['nul\u0000', 'nul\\00'],
    ["'; DROP", "'; DROP"],
    ['ａnn', 'ａnn'],
  ])('%j -> %j', (raw, escaped) => {
    expect(escapeFilterValue(raw)).toBe(escaped);
  });

  it('gives exactly one equality assertion with the literal value, for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (v) => {
        const parsed = FilterParser.parseString(equalityFilter('uid', v));
        expect(parsed).toBeInstanceOf(EqualityFilter);
        expect((parsed as EqualityFilter).attribute).toBe('uid');
        expect((parsed as EqualityFilter).value).toBe(v);
      }),
      { numRuns: 500 },
    );
  });
});
