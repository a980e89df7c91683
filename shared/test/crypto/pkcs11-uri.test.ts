/** RFC 7512 PKCS#11 URI parsing: the RFC's own examples, strict refusals, round trips. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/errors.ts';
import { formatPkcs11Uri, parsePkcs11Uri, redactPkcs11Uri } from '../../src/crypto/pkcs11/uri.ts';

describe('parsePkcs11Uri', () => {
  it('parses the RFC 7512 §3.3 examples', () => {
    expect(parsePkcs11Uri('pkcs11:')).toEqual({ vendor: {} });
    expect(parsePkcs11Uri('pkcs11:object=my-pubkey;type=public')).toMatchObject({ object: 'my-pubkey', type: 'public' });
    expect(parsePkcs11Uri('pkcs11:object=my-key;type=private?pin-source=file:/etc/token')).toMatchObject({
      object: 'my-key', type: 'private', pinSource: 'file:/etc/token',
    });
    const u = parsePkcs11Uri('pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin');
    expect(u).toMatchObject({
      token: 'The Software PKCS#11 Softtoken', manufacturer: 'Snake Oil, Inc.', model: '1.0', object: 'my-certificate',
      type: 'cert', serial: '', pinSource: 'file:/etc/token_pin',
    });
    expect(Buffer.from(u.id!).toString('hex')).toBe('69953e5cf4bdec91');
    expect(parsePkcs11Uri('pkcs11:object=my-sign-key;type=private?module-name=mypkcs11')).toMatchObject({ moduleName: 'mypkcs11' });
    expect(parsePkcs11Uri('pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1')).toMatchObject({ modulePath: '/mnt/libmypkcs11.so.1' });
    expect(parsePkcs11Uri('pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin')).toMatchObject({ pinValue: 'the-pin' });
    expect(parsePkcs11Uri('pkcs11:slot-description=Sun%20Metaslot')).toMatchObject({ slotDescription: 'Sun Metaslot' });
    expect(parsePkcs11Uri('pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23'))
      .toMatchObject({ libraryManufacturer: 'Snake Oil, Inc.', libraryDescription: 'Soft Token Library', libraryVersion: { major: 1, minor: 23 } });
    expect(parsePkcs11Uri('pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert'))
      .toMatchObject({ token: 'A name with a substring %;' });
    expect(parsePkcs11Uri('pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert'))
      .toMatchObject({ token: 'Name with a small A with acute: á' });
    expect(parsePkcs11Uri('pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b'.replace(/vendor-/g, 'x-vendor-')))
      .toMatchObject({ vendor: { 'x-vendor-aaa': 'value-a', 'x-vendor-bbb': 'value-b' } });
    expect(parsePkcs11Uri('pkcs11:slot-id=3')).toMatchObject({ slotId: 3 });
  });

  const bad = [
    ['not-pkcs11:token=x', /scheme/],
    ['pkcs11:token=a;token=b', /repeated/],
    ['pkcs11:foo=bar', /unknown path attribute/],
    ['pkcs11:token=x?frobnicate=1', /unknown query attribute/],
    ['pkcs11:pin-value=1234', /unknown path attribute/], // query attribute in the path
    ['pkcs11:type=privatekey', /type must be/],
    ['pkcs11:token=a b', /percent-encoded/],
    ['pkcs11:token=a%2', /percent-encoded/],
    ['pkcs11:token=%FF%FE', /UTF-8/],
    ['pkcs11:slot-id=-1', /slot-id/],
    ['pkcs11:library-version=1.2.3', /library-version/],
    ['pkcs11:token', /without a name or '='/],
    ['pkcs11:;token=x', /without a name or '='/],
    ['pkcs11:object=k?pin-value=1&pin-source=/p', /mutually exclusive/],
    ['pkcs11:object=k?pin-value=1;x', /percent-encoded/],
  ] as const;
  for (const [uri, why] of bad) {
    it(`refuses ${uri}`, () => {
      expect(() => parsePkcs11Uri(uri)).toThrow(MalformedError);
      expect(() => parsePkcs11Uri(uri)).toThrow(why);
    });
  }

  it('never echoes a pin-value in errors; redacts it for logs', () => {
    try { parsePkcs11Uri('pkcs11:bogus=1?pin-value=s3cret'); expect.unreachable(); } catch (e) {
      expect(JSON.stringify((e as MalformedError).detail)).not.toContain('s3cret');
      expect((e as Error).message).not.toContain('s3cret');
    }
    expect(redactPkcs11Uri('pkcs11:object=k?module-path=/m.so&pin-value=s3cret')).toBe('pkcs11:object=k?module-path=/m.so&pin-value=***');
  });

  it('format → parse round-trips arbitrary labels and ids', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 32 }), fc.uint8Array({ maxLength: 20 }), fc.string({ maxLength: 40 }),
      (label, id, token) => {
        const uri = formatPkcs11Uri({ token, object: label, id, type: 'private', modulePath: '/usr/lib/x y.so' });
        const back = parsePkcs11Uri(uri);
        expect(back.token).toBe(token);
        expect(back.object).toBe(label);
        expect(Buffer.from(back.id!).equals(Buffer.from(id))).toBe(true);
        expect(back.modulePath).toBe('/usr/lib/x y.so');
      }));
  });
});
