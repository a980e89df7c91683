/**
 * Independent clients: Debian's libcoap coap-client built on OpenSSL and on GnuTLS, each with an
 * IDevID certificate, against our DTLS/CoAP registrar: handshake, /.well-known/core,
 * /.well-known/est/crts (certificates decode), POST of a COSE PVR to /rv and a voucher that
 * `brski voucher verify` accepts, the same PVR block-wise (Block1). Both are also run against a
 * listener that offers only CCM_8.
 * coap-client exits 0 even when the request failed, so the tests look at what it wrote.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { makePvr } from '../helpers/client.ts';
import { startCoapsWorld, type CoapsWorld } from './harness.ts';

const run = promisify(execFile);
const tools = ['coap-client-openssl', 'coap-client-gnutls'] as const;
const which = (t: string) => ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, t)));
const root = new URL('../../../', import.meta.url).pathname;

let w: CoapsWorld;
beforeAll(async () => { w = await startCoapsWorld({ devices: 4 }); }, 60_000);
afterAll(async () => { await w?.stop(); });

interface Outcome { out: Buffer; log: string }

async function coap(tool: string, pledgeIndex: number, args: string[], path: string, port = w.port): Promise<Outcome> {
  const p = w.fx.pledges[pledgeIndex]!;
  const f = w.files(p);
  const outFile = join(w.fx.dir, `out-${tool}-${pledgeIndex}-${Date.now()}.bin`);
  const { stdout, stderr } = await run(tool, [
    '-c', f.cert, '-j', f.key, '-n', '-B', '15', '-v', '6', '-o', outFile, ...args, `coaps://127.0.0.1:${port}${path}`,
  ], { timeout: 30_000 });
  return { out: existsSync(outFile) ? readFileSync(outFile) : Buffer.alloc(0), log: stdout + stderr };
}

describe.each(tools)('%s against the registrar', (tool) => {
  const index = tool === 'coap-client-openssl' ? 0 : 1;
  it.skipIf(!which(tool))('completes the DTLS handshake and GETs /.well-known/core', async () => {
    const r = await coap(tool, index, ['-m', 'get'], '/.well-known/core');
    expect(r.out.toString(), r.log).toContain('</.well-known/brski/rv>;rt=brski.rv');
  });

  it.skipIf(!which(tool))('GETs /.well-known/est/crts (certs-only and single cert decode)', async () => {
    const r = await coap(tool, index, ['-m', 'get', '-A', '281'], '/.well-known/est/crts');
    expect(decodeCertsOnly(new Uint8Array(r.out)).map((c) => c.fingerprint256), r.log).toContain(w.fx.domainCa.fingerprint256);
    const one = await coap(tool, index, ['-m', 'get', '-A', '287'], '/.well-known/est/crts');
    expect(new X509Certificate(one.out).fingerprint256).toBe(w.reg.ca.certificate.fingerprint256);
  });

  it.skipIf(!which(tool))('POSTs a COSE PVR to /rv and gets a voucher that brski voucher verify accepts', async () => {
    const p = w.fx.pledges[index]!;
    const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: w.fx.registrarCert, proximity: 'pubk-sha256' });
    const pvrFile = join(w.fx.dir, `pvr-${tool}.cose`);
    writeFileSync(pvrFile, bytes);
    const r = await coap(tool, index, ['-m', 'post', '-t', '836', '-A', '836', '-f', pvrFile], '/.well-known/brski/rv');
    expect(r.out.length, r.log).toBeGreaterThan(64);
    expect(r.out[0], 'COSE_Sign1 tag 18').toBe(0xd2);
    const voucherFile = join(w.fx.dir, `voucher-${tool}.cose`);
    writeFileSync(voucherFile, r.out);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(root, 'cli/brski.ts'), 'voucher', 'verify',
      '--in', voucherFile, '--trust', join(w.fx.dir, 'manufacturer-ca.pem'), '--signer-cert', join(w.fx.dir, 'masa-signer.pem'), '--json'],
    { cwd: root, timeout: 60_000 });
    expect(stdout).toContain(p.serial);
  }, 90_000);

  // libcoap changes the token from block to block (RFC 7959 §2.4 allows it) and adds Request-Tag:
  // the registrar's Block1 reassembly must follow the request, not the token.
  it.skipIf(!which(tool))('POSTs a COSE PVR block-wise (64-byte Block1) and gets a voucher', async () => {
    const p = w.fx.pledges[index + 2]!;
    const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: w.fx.registrarCert, proximity: 'pubk-sha256' });
    const pvrFile = join(w.fx.dir, `pvr-block1-${tool}.cose`);
    writeFileSync(pvrFile, bytes);
    const r = await coap(tool, index + 2, ['-m', 'post', '-t', '836', '-A', '836', '-b', '64', '-v', '7', '-f', pvrFile], '/.well-known/brski/rv');
    const blocks = r.log.split('\n').filter((l) => /t:CON c:POST .*Block1:/.test(l));
    expect(blocks.length, r.log.slice(-2000)).toBeGreaterThanOrEqual(Math.ceil(bytes.length / 64));
    expect(r.out[0], r.log.slice(-2000)).toBe(0xd2);
    expect(r.out.length).toBeGreaterThan(64);
  }, 90_000);
});

// libcoap sets its own cipher list (OPENSSL_CONF does not override it), so the suite is forced
// from our side: a listener offering only CCM_8; the session must come up with exactly that.
describe.each(tools)('%s forced to TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8', (tool) => {
  it.skipIf(!which(tool))('negotiates CCM_8 and completes a request', async () => {
    const { server, port } = await w.extraListener({ ciphers: 'ECDHE-ECDSA-AES128-CCM8' });
    const seen: string[] = [];
    server.dtls.on('session', (peer) => seen.push(peer.cipher));
    const r = await coap(tool, 2, ['-m', 'get'], '/.well-known/core', port);
    expect(r.out.toString(), r.log).toContain('rt=brski.rv');
    expect(seen).toEqual(['TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8']);
  });
});
