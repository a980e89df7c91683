/**
 * CSR creation for an SE key: the PKCS#10 is built by the shared PKI module and signed through
 * the element's Signer, so the private key never leaves the element.
 */
import { createCsr, type CsrOptions } from '@brski/shared/pki/csr';
import type { DistinguishedName } from '@brski/shared/pki/extensions';
import type { SecureElement } from './secure-element.ts';
import type { KeyHandle } from './types.ts';

export function createSeCsr(se: SecureElement, handle: KeyHandle, subject: DistinguishedName, opts?: CsrOptions): Promise<Uint8Array> {
  return createCsr(subject, se.signer(handle), opts);
}
