import { describe, expect, it } from 'vitest';
import { verifyCsr } from '@brski/shared/pki/csr';
import { SecureElement } from '../../src/se/secure-element.ts';
import { createSeCsr } from '../../src/se/csr.ts';
import { SecureElementError } from '../../src/se/types.ts';

describe('SE CSR', () => {
  it('builds a PKCS#10 signed inside the element for the handle key', async () => {
    const se = new SecureElement();
    const h = se.generateKey('idevid');
    const der = await createSeCsr(se, h, [['CN', 'pledge'], ['serialNumber', 'SN-1']]);
    const parsed = verifyCsr(der);
    expect(parsed.signatureValid).toBe(true);
    expect(parsed.subject).toEqual([['CN', 'pledge'], ['serialNumber', 'SN-1']]);
    expect(parsed.publicKey.equals(se.getPublicKey(h))).toBe(true);
  });

  it('refuses a CSR for a discarded key', async () => {
    const se = new SecureElement();
    const h = se.generateKey('idevid');
    se.generateKey('idevid');
    expect(() => createSeCsr(se, h, [['CN', 'x']])).toThrow(SecureElementError);
  });
});
