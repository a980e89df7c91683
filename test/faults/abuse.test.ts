/**
 * Abuse cases: a cloned device (same serial, other key), test-CA factory credentials against a
 * production MASA, re-enrollment that tries to install an identity manufacturing never issued,
 * replayed PVR/RVR, and an audit log edited directly in Redis.
 */
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificatesPem, SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { createCsr } from '@brski/shared/pki/csr';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { decodeBase64Body } from '@brski/shared/est/base64-body';
import { certificateToPem, generateKeyPair, issueCertificate, ldevidProfile, privateKeyToPem, rootCaProfile, stationProfile } from '@brski/shared/pki/index';
import { FactoryStation } from '../../pledge-sim/src/factory/station.ts';
import { manifestSource } from '../../pledge-sim/src/fleet/sources.ts';
import { Pledge } from '../../pledge-sim/src/pledge/pledge.ts';
import { SecureElement } from '../../pledge-sim/src/se/secure-element.ts';
import { clonedPledge } from '../e2e/helpers/stack.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { agent, pledgeIdentity, request, validPvr } from './helpers/client.ts';
import { masaAudit } from './helpers/fleet.ts';
import { FaultStack, MASA_PREFIX } from './helpers/stack.ts';
import { validRvr } from './helpers/targets.ts';

let stack: FaultStack;
const testCa = makeTempDir('brski-testca-');
const pem = (f: string) => parseCertificatesPem(readFileSync(f, 'utf8'));

beforeAll(async () => {
  // A test station CA, configured as such; the MASA runs in production mode.
  const k = generateKeyPair('P-256');
  const s = new SoftwareSigner(k.privateKey);
  const ca = await issueCertificate(rootCaProfile({ subject: [['CN', 'Test Station CA']], publicKey: k.publicKey }), { signer: s });
  const sk = generateKeyPair('P-256');
  const st = await issueCertificate(stationProfile({ subject: [['CN', 'Test Station 9']], publicKey: sk.publicKey }), { signer: s, certificate: ca });
  writeFileSync(join(testCa.path, 'ca.pem'), certificateToPem(ca));
  writeFileSync(join(testCa.path, 'station.pem'), certificateToPem(st));
  writeFileSync(join(testCa.path, 'station.key'), privateKeyToPem(sk.privateKey));
  stack = await FaultStack.create({ devices: 6, masa: (d) => {
    d['mode'] = 'production';
    d['factory'] = { ...d['factory'], testAnchorFiles: [join(testCa.path, 'ca.pem')] };
  } });
}, 120_000);
afterAll(async () => { await stack?.stop(); testCa.cleanup(); });

async function onboard(index: number): Promise<{ se: SecureElement; ldevid: X509Certificate }> {
  const src = manifestSource(stack.pki.manifest);
  const se = await src.secureElement(index);
  const r = await new Pledge({ se, registrars: [stack.registrarUrl], format: 'jws', trust: src.trust, retry: { capSeconds: 1, maxTotalSeconds: 60 } }).onboard();
  return { se, ldevid: r.ldevid };
}

describe('abuse cases', () => {
  it('cloned device (same serial, two keys): refused, and alerted at the MASA and at the registrar', async () => {
    const original = stack.pki.manifest.pledges[0]!;
    const clone = await clonedPledge(stack.pki, original.serial);
    const trust = manifestSource(stack.pki.manifest).trust;
    const cloneAttempt = () => {
      const se = new SecureElement({ label: `clone ${original.serial}` });
      const h = se.injectIdevidKey(createPrivateKey(readFileSync(clone.key)), 'clone');
      se.installCertificate(h, [...pem(clone.cert), ...pem(stack.pki.manifest.idevidCa.cert)], 'clone');
      return new Pledge({ se, registrars: [stack.registrarUrl], format: 'jws', trust, retry: { capSeconds: 1, maxTotalSeconds: 20 } }).onboard();
    };
    // Before the genuine device shows up the registrar has no vouched identity for the serial:
    // the clone reaches the MASA, which knows the manufactured key and refuses it.
    await expect(cloneAttempt()).rejects.toThrow(/clone|refused|forbidden/i);
    // The genuine device still onboards (a stranger's attempt must not lock it out) ...
    await onboard(0);
    // ... and from then on the registrar itself recognises the clone.
    await expect(cloneAttempt()).rejects.toThrow(/clone|refused|forbidden|conflict/i);
    await new Promise((r) => setTimeout(r, 300)); // log lines are flushed asynchronously
    const masaAlert = stack.masa.logs().find((l) => l['code'] === 'clone-detected' && JSON.stringify(l).includes(original.serial));
    // The registrar's own detection: it has the original IDevID on record for this serial. A relayed
    // MASA refusal text does not count.
    const regAlert = stack.registrar.logs().find((l) => (l['alert'] === true || l['code'] === 'clone-detected' || /clone/i.test(String(l['msg'])))
      && JSON.stringify(l).includes(original.serial));
    console.log(`[faults] abuse clone ${JSON.stringify({ masaAlert: !!masaAlert, registrarAlert: !!regAlert })}`);
    expect(masaAlert, 'MASA logged no clone-detected line').toBeDefined();
    expect(JSON.stringify(masaAlert)).toMatch(/"alert":true/);
    expect(regAlert, 'registrar logged no clone alert of its own').toBeDefined();
  });

  it('test-CA station credentials are refused by a production MASA, nothing registered', async () => {
    const station = new FactoryStation({
      endpoint: `${stack.masaUrl}/factory/idevid`, key: readFileSync(join(testCa.path, 'station.key'), 'utf8'), certificates: pem(join(testCa.path, 'station.pem')),
      masaTlsAnchors: pem(stack.pki.manifest.manufacturerCa.cert), idevidAnchors: pem(stack.pki.manifest.idevidCa.cert), retries: 0,
    });
    try {
      await expect(station.manufacture('TESTCA-0001')).rejects.toMatchObject({ message: expect.stringMatching(/test station credentials/) });
    } finally { station.close(); }
    expect(await stack.inspect().exists(`${MASA_PREFIX}masa:dev:{TESTCA-0001}`)).toBe(0);
  });

  it('re-enrollment cannot install an identity manufacturing (or this registrar) did not issue', async () => {
    const { se, ldevid } = await onboard(1);
    const other = stack.pki.manifest.pledges[2]!.serial;
    const csr = async (subject: Array<[string, string]>) => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return Buffer.from(await createCsr(subject, new SoftwareSigner(privateKey))).toString('base64');
    };
    const reenroll = (ag: https.Agent, body: string) => request(ag, stack.registrarUrl, { path: '/.well-known/est/simplereenroll', body, headers: { 'content-type': 'application/pkcs10' } });
    // a) the IDevID is not an LDevID: no re-enrollment with it.
    const idevidAgent = agent(pledgeIdentity(stack.pki, 1));
    const a = await reenroll(idevidAgent, await csr([['CN', 'x']]));
    // b) a forged LDevID: the same pledge identity, signed by a rogue CA named like the domain CA.
    const rk = generateKeyPair('P-256');
    const rogue = await issueCertificate(rootCaProfile({ subject: [['O', 'Example Owner'], ['CN', 'Example Domain CA']], publicKey: rk.publicKey }), { signer: new SoftwareSigner(rk.privateKey) });
    const fk = generateKeyPair('P-256');
    const pledgeSerial = stack.pki.manifest.pledges[1]!.serial;
    const forged = await issueCertificate(ldevidProfile({ serialNumber: pledgeSerial, publicKey: fk.publicKey }), { signer: new SoftwareSigner(rk.privateKey), certificate: rogue });
    const b = await reenroll(agent({ cert: certificateToPem(forged), key: privateKeyToPem(fk.privateKey) }), await csr([['CN', 'x']]));
    // c) the real LDevID asking for another device's serial: the new certificate keeps its own identity.
    const ldevidAgent = new https.Agent({ keepAlive: false, rejectUnauthorized: false, secureContext: se.tlsContext('ldevid') });
    const c = await reenroll(ldevidAgent, await csr([['CN', other], ['serialNumber', other]]));
    const issued = c.status === 200 ? decodeCertsOnly(decodeBase64Body(c.body))[0] : undefined;
    // d) the secure element itself refuses a second IDevID or a certificate for a key it does not hold.
    const k2 = generateKeyPair('P-256');
    const foreign = await issueCertificate(rootCaProfile({ subject: [['CN', 'foreign']], publicKey: k2.publicKey }), { signer: new SoftwareSigner(k2.privateKey) });
    const seIdevid = (() => { try { se.installCertificate(se.active('idevid')!.handle, [foreign], 'field'); return 'installed'; } catch (e) { return (e as { code?: string }).code ?? (e as Error).message; } })();
    console.log(`[faults] abuse reenroll ${JSON.stringify({ idevid: a.status, forged: b.status, realLdevid: ldevid.serialNumber, otherSerial: { status: c.status, subject: issued?.subject.replace(/\n/g, ', ') }, seIdevid })}`);
    expect(a.status).toBe(401);
    expect(b.status).toBe(401);
    expect(c.status === 200 ? issued!.subject : 'refused').not.toContain(other);
    expect(seIdevid).not.toBe('installed');
    idevidAgent.destroy();
    ldevidAgent.destroy();
  });

  it('replayed PVR (under another IDevID) and replayed RVR are refused', async () => {
    const pvr = await validPvr(stack.pki, 3, 'jws');
    const thief = agent(pledgeIdentity(stack.pki, 4));
    const stolen = await request(thief, stack.registrarUrl, { path: '/.well-known/brski/requestvoucher', body: pvr,
      headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws, accept: VOUCHER_MEDIA_TYPE.jws } });
    thief.destroy();
    const m = stack.pki.manifest;
    const reg = agent({ cert: readFileSync(m.registrar.cert, 'utf8') + readFileSync(m.domainCa.cert, 'utf8'), key: readFileSync(m.registrar.key, 'utf8') });
    const rvr = await validRvr(stack.pki, 'cms');
    const send = () => request(reg, stack.masaUrl, { path: '/.well-known/brski/requestvoucher', body: rvr,
      headers: { 'content-type': VOUCHER_MEDIA_TYPE.cms, accept: VOUCHER_MEDIA_TYPE.cms } });
    const first = await send();
    const replay = await send();
    reg.destroy();
    console.log(`[faults] abuse replay ${JSON.stringify({ pvrUnderOtherIdevid: stolen.status, rvrFirst: first.status, rvrReplay: replay.status, replayBody: replay.text.trim() })}`);
    expect(stolen.status).toBeGreaterThanOrEqual(400);
    expect(stolen.status).toBeLessThan(500);
    expect(first.status).toBe(200);
    expect(replay.status).toBe(403);
    expect(replay.text).toMatch(/replay/);
  });

  it('an audit entry edited in Redis is detected by the hash chain', async () => {
    const serial = stack.pki.manifest.pledges[0]!.serial; // onboarded above
    const admin = agent();
    const get = async () => JSON.parse((await request(admin, stack.masaAdminUrl, { method: 'GET', path: `/admin/devices/${serial}/audit`,
      headers: { authorization: `Bearer ${stack.masaAdminToken}` } })).text) as { entries: unknown[]; chain: { ok: boolean; brokenAt?: number } };
    const before = await get();
    expect(before.chain.ok).toBe(true);
    expect(before.entries.length).toBeGreaterThan(0);
    const key = `${MASA_PREFIX}masa:dev:{${serial}}:audit`;
    const entries = await masaAudit(stack, serial);
    const forged = { ...entries[0]!, domainId: Buffer.from('attacker-domain').toString('base64') }; // rewrite who got the voucher
    await stack.inspect().lset(key, 0, JSON.stringify(forged));
    const after = await get();
    admin.destroy();
    console.log(`[faults] abuse audit-tamper ${JSON.stringify({ before: before.chain, after: after.chain })}`);
    expect(after.chain.ok).toBe(false);
    expect(after.chain.brokenAt).toBe(1);
  });
});
