import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCertificate } from '@brski/shared/pki/certificate';
import { verifyCsr } from '@brski/shared/pki/csr';
import { generateKeyPair, privateKeyToPem } from '@brski/shared/pki/keys';
import { idevidProfile, stationProfile, tlsServerProfile } from '@brski/shared/pki/profiles';
import { FactoryStation } from '../../src/factory/station.ts';
import { createManufacturer, type Manufacturer } from '../helpers/fixture-pki.ts';

type Mode = 'ok' | 'other-key' | 'other-serial' | 'clone';
let m: Manufacturer;
let server: Server;
let endpoint: string;
let mode: Mode = 'ok';
const seenStations: Array<string | undefined> = [];
let station: { key: string; cert: import('node:crypto').X509Certificate };

beforeAll(async () => {
  m = await createManufacturer('Fab');
  const rootSigner = m.idevidCaSigner; // any CA of the manufacturer works for TLS + station in this test
  const tk = generateKeyPair('P-256');
  const tls = await issueCertificate(tlsServerProfile({ subject: [['CN', 'localhost']], publicKey: tk.publicKey }), { signer: rootSigner, certificate: m.idevidCa });
  const sk = generateKeyPair('P-256');
  station = { key: privateKeyToPem(sk.privateKey), cert: await issueCertificate(stationProfile({ subject: [['CN', 'Station 7']], publicKey: sk.publicKey }), { signer: rootSigner, certificate: m.idevidCa }) };
  server = createServer({ key: privateKeyToPem(tk.privateKey), cert: tls.toString() + m.idevidCa.toString(), requestCert: true, rejectUnauthorized: true, ca: [m.root.toString()] }, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d)).on('end', async () => {
      seenStations.push((req.socket as TLSSocket).getPeerX509Certificate()?.subject);
      if (mode === 'clone') { res.writeHead(409, { 'content-type': 'text/plain' }).end('clone-detected: serial issued with another key'); return; }
      const body = JSON.parse(Buffer.concat(parts).toString()) as { serialNumber: string; csr: string };
      const csr = verifyCsr(Buffer.from(body.csr, 'base64'));
      const key = mode === 'other-key' ? generateKeyPair('P-256').publicKey : csr.publicKey;
      const serial = mode === 'other-serial' ? 'SOMEONE-ELSE' : body.serialNumber;
      const cert = await issueCertificate(idevidProfile(serial, 'masa.example', key), { signer: m.idevidCaSigner, certificate: m.idevidCa });
      res.writeHead(201, { 'content-type': 'application/json' })
        .end(JSON.stringify({ certificate: Buffer.from(cert.raw).toString('base64'), chain: [Buffer.from(m.idevidCa.raw).toString('base64')] }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  endpoint = `https://127.0.0.1:${(server.address() as { port: number }).port}/factory/idevid`;
});
afterAll(() => { server.closeAllConnections(); server.close(); });

function newStation(): FactoryStation {
  return new FactoryStation({ endpoint, key: station.key, certificates: [station.cert, m.idevidCa], masaTlsAnchors: [m.root], idevidAnchors: [m.idevidCa], retries: 0 });
}

describe('FactoryStation', () => {
  it('manufactures a pledge: key inside the SE, IDevID installed, SE manufactured, station authenticated by mTLS', async () => {
    mode = 'ok';
    const st = newStation();
    try {
      const se = await st.manufacture('FAB-0001');
      expect(se.state).toBe('manufactured');
      const idevid = se.active('idevid')!.chain[0]!;
      expect(idevid.subject).toContain('serialNumber=FAB-0001');
      expect(idevid.publicKey.equals(se.getPublicKey(se.active('idevid')!.handle))).toBe(true);
      expect(seenStations.at(-1)).toContain('CN=Station 7');
    } finally { st.close(); }
  });

  for (const [bad, code] of [['other-key', 'upstream-invalid'], ['other-serial', 'serial-mismatch'], ['clone', 'clone-detected']] as const) {
    it(`refuses the IDevID when the factory answers ${bad}`, async () => {
      mode = bad;
      const st = newStation();
      try {
        await expect(st.manufacture('FAB-0002')).rejects.toMatchObject({ code });
      } finally { st.close(); }
    });
  }

  it('refuses a MASA whose TLS certificate it does not trust', async () => {
    mode = 'ok';
    const other = await createManufacturer('Other');
    const st = new FactoryStation({ endpoint, key: station.key, certificates: [station.cert, m.idevidCa], masaTlsAnchors: [other.root], idevidAnchors: [m.idevidCa], retries: 0 });
    try {
      await expect(st.manufacture('FAB-0003')).rejects.toMatchObject({ code: 'upstream-unavailable' });
    } finally { st.close(); }
  });
});
