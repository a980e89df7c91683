import { createPrivateKey, generateKeyPairSync, KeyObject, verify, type X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecureElement } from '../../src/se/secure-element.ts';
import { SecureElementError, type SecureElementRefusal } from '../../src/se/types.ts';
import { createTestCa, type TestCa } from '../helpers/openssl-certs.ts';

let ca: TestCa;
beforeAll(() => { ca = createTestCa(); });
afterAll(() => ca.dispose());

function refusal(fn: () => unknown): SecureElementRefusal | undefined {
  try { fn(); } catch (e) { if (e instanceof SecureElementError) return e.refusal; throw e; }
  return undefined;
}

function manufactured(): { se: SecureElement; idevid: X509Certificate } {
  const se = new SecureElement();
  const h = se.generateKey('idevid');
  const idevid = ca.issue(se.getPublicKey(h), 'pledge-1');
  se.installCertificate(h, [idevid, ca.cert], 'factory');
  return { se, idevid };
}

describe('SecureElement lifecycle', () => {
  it('starts blank and moves to manufactured when the IDevID is installed, recording every transition', () => {
    let t = 0;
    const se = new SecureElement({ clock: () => new Date(Date.UTC(2030, 0, 1, 0, 0, t++)) });
    expect(se.state).toBe('blank');
    const h = se.generateKey('idevid');
    expect(se.state).toBe('blank');
    se.installCertificate(h, [ca.issue(se.getPublicKey(h), 'p'), ca.cert], 'factory station 7');
    expect(se.state).toBe('manufactured');
    const hist = se.history();
    expect(hist.map((r) => [r.subject === 'lifecycle' ? 'lifecycle' : 'credential', r.from, r.to])).toEqual([
      ['credential', 'none', 'generated'], ['credential', 'generated', 'active'], ['lifecycle', 'blank', 'manufactured']]);
    expect(hist[2]!.reason).toBe('factory station 7');
    expect(hist[0]!.at).toBe('2030-01-01T00:00:00.000Z');
    expect(se.active('idevid')?.chain).toHaveLength(2);
  });

  it('refuses a certificate for another key and leaves the state unchanged', () => {
    const se = new SecureElement();
    const h = se.generateKey('idevid');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(refusal(() => se.installCertificate(h, [ca.issue(other, 'x')]))).toBe('key-mismatch');
    expect(refusal(() => se.installCertificate(h, []))).toBe('bad-certificate');
    expect(se.state).toBe('blank');
    expect(se.credentials()[0]!.status).toBe('generated');
  });

  it('never creates or installs a second IDevID, and never retires it', () => {
    const { se } = manufactured();
    expect(refusal(() => se.generateKey('idevid'))).toBe('invalid-state');
    expect(refusal(() => se.injectIdevidKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey))).toBe('invalid-state');
    expect(refusal(() => se.retire('idevid', 'test'))).toBe('invalid-state');
    expect(se.state).toBe('manufactured');
  });

  it('refuses LDevID keys on a blank element', () => {
    const se = new SecureElement();
    expect(refusal(() => se.generateKey('ldevid'))).toBe('invalid-state');
  });

  it('enrolls an LDevID, refuses to install over it until it is retired, then accepts the replacement', () => {
    const { se } = manufactured();
    const l1 = se.generateKey('ldevid');
    se.installCertificate(l1, [ca.issue(se.getPublicKey(l1), 'ldevid-1')], 'enroll');
    expect(se.state).toBe('enrolled');

    const l2 = se.generateKey('ldevid');
    const cert2 = ca.issue(se.getPublicKey(l2), 'ldevid-2');
    expect(refusal(() => se.installCertificate(l2, [cert2]))).toBe('credential-present');
    expect(se.active('ldevid')?.handle.id).toBe(l1.id);

    se.retire('ldevid', 'reenroll');
    se.installCertificate(l2, [cert2], 'reenroll');
    expect(se.state).toBe('enrolled');
    expect(se.active('ldevid')?.handle.id).toBe(l2.id);
    expect(se.credentials().find((c) => c.handle.id === l1.id)?.status).toBe('retired');
    // a retired key can no longer sign, nor receive a certificate again
    expect(() => se.sign(l1, new Uint8Array(1))).toThrow(SecureElementError);
    expect(refusal(() => se.installCertificate(l1, [ca.issue(se.getPublicKey(l1), 'again')]))).toBe('invalid-state');
    const lifecycle = se.history().filter((r) => r.subject === 'lifecycle').map((r) => `${r.from}>${r.to}`);
    expect(lifecycle).toEqual(['blank>manufactured', 'manufactured>enrolled']);
    const l1Moves = se.history().filter((r) => r.subject === `credential:${l1.id}`).map((r) => r.to);
    expect(l1Moves).toEqual(['generated', 'active', 'retired']);
  });

  it('refuses retiring when nothing is active', () => {
    const { se } = manufactured();
    expect(refusal(() => se.retire('ldevid', 'x'))).toBe('invalid-state');
  });

  it('discards a pending IDevID key when a new one is generated', () => {
    const se = new SecureElement();
    const first = se.generateKey('idevid');
    se.generateKey('idevid');
    expect(() => se.sign(first, new Uint8Array(1))).toThrow(SecureElementError);
    expect(se.credentials().map((c) => c.status)).toEqual(['discarded', 'generated']);
  });

  it('rejects handles it did not issue', () => {
    const a = new SecureElement();
    const b = new SecureElement();
    const h = a.generateKey('idevid');
    expect(refusal(() => b.getPublicKey(h))).toBe('unknown-key');
    expect(refusal(() => a.getPublicKey({ id: h.id, slot: 'ldevid' }))).toBe('unknown-key');
  });
});

describe('SecureElement signing', () => {
  it('signs in P1363 form that verifies with the public key, also through the Signer', async () => {
    const { se, idevid } = manufactured();
    const h = se.active('idevid')!.handle;
    const data = new TextEncoder().encode('voucher-request');
    const sig = await se.sign(h, data);
    expect(sig).toHaveLength(64);
    expect(verify('sha256', data, { key: se.getPublicKey(h), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    const signer = se.signer(h);
    expect(signer.algorithm).toBe('ES256');
    expect(signer.certificates[0]!.fingerprint256).toBe(idevid.fingerprint256);
    expect(verify('sha256', data, { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, await signer.sign(data))).toBe(true);
    expect(verify('sha256', Buffer.from('other'), { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
  });

  it('supports P-384 keys', async () => {
    const se = new SecureElement();
    const h = se.generateKey('idevid', 'P-384');
    expect(se.signer(h).algorithm).toBe('ES384');
    expect(await se.sign(h, new Uint8Array(3))).toHaveLength(96);
  });

  it('takes an injected IDevID key only while blank and only a private key', () => {
    const se = new SecureElement();
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(refusal(() => se.injectIdevidKey(publicKey))).toBe('bad-certificate');
    const h = se.injectIdevidKey(privateKey);
    expect(se.getPublicKey(h).export({ format: 'jwk' })).toEqual(publicKey.export({ format: 'jwk' }));
  });
});

describe('SecureElement keeps keys inside', () => {
  /** Walks everything reachable through own properties and getters; fails on any private KeyObject or PEM key. */
  function assertNoPrivateKey(root: unknown): void {
    const seen = new Set<unknown>();
    const walk = (v: unknown, path: string, depth: number): void => {
      if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v) || depth > 8) {
        if (typeof v === 'string') expect(v, path).not.toMatch(/PRIVATE KEY/);
        return;
      }
      seen.add(v);
      if (v instanceof KeyObject) { expect(v.type, path).not.toBe('private'); return; }
      for (const key of Reflect.ownKeys(v as object)) {
        let child: unknown;
        try { child = (v as Record<PropertyKey, unknown>)[key]; } catch { continue; }
        walk(child, `${path}.${String(key)}`, depth + 1);
      }
      const proto = Object.getPrototypeOf(v);
      if (proto && proto !== Object.prototype && proto !== Function.prototype) {
        for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
          if (d.get) { try { walk(d.get.call(v), `${path}.${key}`, depth + 1); } catch { /* not applicable */ } }
        }
      }
    };
    walk(root, 'root', 0);
  }

  it('exposes no private key through properties, getters, toJSON or inspect', () => {
    const { se } = manufactured();
    const l = se.generateKey('ldevid');
    const signer = se.signer(se.active('idevid')!.handle);
    for (const obj of [se, signer, se.signer(l), se.credentials(), se.history()]) {
      assertNoPrivateKey(obj);
      const text = JSON.stringify(obj) + inspect(obj, { showHidden: true, depth: Infinity });
      expect(text).not.toMatch(/PRIVATE KEY|"d":|privateKey/);
    }
    expect(Object.keys(se)).toEqual(['label']);
  });

  it('the injected key is adopted, not referenced by anything the SE returns', () => {
    const se = new SecureElement();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const h = se.injectIdevidKey(createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })));
    assertNoPrivateKey([se, se.signer(h), se.getPublicKey(h)]);
  });

  it('authenticates a TLS client with the active credential through an opaque context', async () => {
    const { se, idevid } = manufactured();
    const server = ca.issueServer();
    const srv = createServer({ key: server.key, cert: server.cert.toString(), requestCert: true, rejectUnauthorized: false }, (s) => s.end('ok'));
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    const seen = new Promise<X509Certificate | undefined>((resolve) => {
      srv.once('secureConnection', (s: TLSSocket) => resolve(s.getPeerX509Certificate()));
    });
    const sock = connect({ host: '127.0.0.1', port, secureContext: se.tlsContext('idevid'), rejectUnauthorized: false });
    await once(sock, 'secureConnect');
    expect((await seen)?.fingerprint256).toBe(idevid.fingerprint256);
    sock.destroy();
    srv.close();
    expect(refusal(() => se.tlsContext('ldevid'))).toBe('invalid-state');
  });
});
