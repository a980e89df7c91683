/** A throw-away CA with a server and a client certificate for the relay tests (node:crypto keys, shared/pki issuance). */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { certificateToPem, generateKeyPair, issueCertificate, privateKeyToPem, rootCaProfile, tlsServerProfile } from '@brski/shared/pki/index';

export interface Leaf { cert: X509Certificate; certPem: string; keyPem: string }
export interface TlsFixture { ca: X509Certificate; caPem: string; server: Leaf; client: Leaf }

export async function makeTlsFixture(): Promise<TlsFixture> {
  const ck = generateKeyPair('P-256');
  const signer = new SoftwareSigner(ck.privateKey);
  const ca = await issueCertificate(rootCaProfile({ subject: [['CN', 'Relay Test CA']], publicKey: ck.publicKey }), { signer });
  const leaf = async (cn: string, clientAuth: boolean): Promise<Leaf> => {
    const k: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPair('P-256');
    const cert = await issueCertificate(tlsServerProfile({ subject: [['CN', cn]], publicKey: k.publicKey, clientAuth }), { signer, certificate: ca });
    return { cert, certPem: certificateToPem(cert), keyPem: privateKeyToPem(k.privateKey) };
  };
  return { ca, caPem: certificateToPem(ca), server: await leaf('relay-test-registrar', false), client: await leaf('relay-test-pledge', true) };
}
