import { describe, expect, it } from 'vitest';
import { BrskiError } from '../src/errors.ts';
import { acceptAdmits, acceptUnderstood, negotiateVoucherFormat, VOUCHER_MEDIA_TYPE as T } from '../src/media.ts';

describe('Accept negotiation (RFC 9110 §12.5.1)', () => {
  it('absent or empty Accept → the preferred format', () => {
    expect(negotiateVoucherFormat(undefined, 'cms')).toBe('cms');
    expect(negotiateVoucherFormat('  ', 'cose')).toBe('cose');
  });

  it('the highest weight wins; ties keep the preferred format', () => {
    expect(negotiateVoucherFormat(`${T.cms};q=0.2, ${T.jws};q=0.8`, 'cms')).toBe('jws');
    expect(negotiateVoucherFormat(`${T.cms}, ${T.jws}`, 'jws')).toBe('jws');
    expect(negotiateVoucherFormat('*/*', 'cose')).toBe('cose');
  });

  it('parameter names and media types are case-insensitive', () => {
    expect(negotiateVoucherFormat(`${T.cms};Q=0.1, ${T.jws};q=0.5`, 'cms')).toBe('jws');
    expect(negotiateVoucherFormat('Application/Voucher-JWS+JSON', 'cms')).toBe('jws');
  });

  it('the most specific range decides: an exact q=0 is not undone by a wildcard', () => {
    expect(negotiateVoucherFormat(`${T.cms};q=0, */*`, 'cms')).not.toBe('cms');
    expect(negotiateVoucherFormat(`${T.cms};q=0, application/*;q=0.3, */*;q=1`, 'cms', ['cms', 'jws'])).toBe('jws');
    expect(acceptAdmits(`${T.cms};q=0, */*`, 'cms')).toBe(false);
    expect(acceptAdmits('application/*;q=0, */*', 'jws')).toBe(false);
  });

  it('junk weights count as 0, out-of-range weights are clamped', () => {
    expect(acceptAdmits(`${T.jws};q=abc`, 'jws')).toBe(false);
    expect(acceptAdmits(`${T.jws};q=7`, 'jws')).toBe(true);
  });

  it('nothing acceptable → 406 not-acceptable', () => {
    let err: unknown;
    try { negotiateVoucherFormat(`${T.jws};q=0`, 'jws', ['jws']); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BrskiError);
    expect((err as BrskiError).code).toBe('not-acceptable');
  });

  it('acceptUnderstood: true when some range names a voucher type or a covering wildcard', () => {
    expect(acceptUnderstood(undefined)).toBe(true);
    expect(acceptUnderstood('application/pkcs7-mime')).toBe(false);
    expect(acceptUnderstood('text/html, image/*')).toBe(false);
    expect(acceptUnderstood(`text/html, ${T.cose};q=0`)).toBe(true);
    expect(acceptUnderstood('application/*')).toBe(true);
    expect(acceptUnderstood('*/*;q=0.1')).toBe(true);
  });
});
