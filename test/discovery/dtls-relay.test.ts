/**
 * A real DTLS 1.2 session (openssl s_client ↔ s_server) through the stateful UDP join-proxy relay:
 * data flows both ways end to end, and every datagram the relay handled is a DTLS record with
 * none of the application text in it. Skipped (with a message) when openssl is not installed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dtlsRecordType } from '../../join-proxy/src/records.ts';
import { UdpRelay } from '../../join-proxy/src/udp-relay.ts';
import { RegistrarLocator } from '../../join-proxy/src/upstream.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { freeUdpPort } from '../helpers/ports.ts';
import { makeTlsFixture } from './tls-fixture.ts';

let opensslMissing: string | undefined;
try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); } catch (e) { opensslMissing = (e as Error).message; }
if (opensslMissing) process.stdout.write(`[test/discovery/dtls-relay] SKIPPED: openssl not available (${opensslMissing})\n`);

function collect(child: ChildProcess): { text: () => string; waitFor: (s: string, ms: number) => Promise<void> } {
  let out = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); for (const w of waiters.slice()) w(); });
  return {
    text: () => out,
    waitFor: (s, ms) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no "${s}" within ${ms} ms; got: ${out}`)), ms);
      const check = () => { if (out.includes(s)) { clearTimeout(t); waiters.splice(waiters.indexOf(check), 1); resolve(); } };
      waiters.push(check);
      check();
    }),
  };
}

describe.skipIf(opensslMissing !== undefined)('UdpRelay carries a real DTLS session without seeing its content', () => {
  const children: ChildProcess[] = [];
  let relay: UdpRelay | undefined;
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await relay?.close();
  });

  it('openssl s_client ↔ relay ↔ s_server: both directions delivered, only DTLS records relayed', async () => {
    const tmp = makeTempDir('brski-dtls-');
    const pki = await makeTlsFixture();
    writeFileSync(join(tmp.path, 'cert.pem'), pki.server.certPem);
    writeFileSync(join(tmp.path, 'key.pem'), pki.server.keyPem);
    const serverPort = await freeUdpPort();
    const server = spawn('openssl', ['s_server', '-dtls1_2', '-accept', `127.0.0.1:${serverPort}`, '-cert', join(tmp.path, 'cert.pem'),
      '-key', join(tmp.path, 'key.pem'), '-quiet'], { stdio: ['pipe', 'pipe', 'ignore'] });
    children.push(server);
    const datagrams: Array<{ dir: string; d: Buffer }> = [];
    relay = new UdpRelay({
      listen: { host: '127.0.0.1', port: 0 },
      upstream: new RegistrarLocator({ protocol: 'udp', target: { host: '127.0.0.1', port: serverPort } }),
      tap: (dir, d) => datagrams.push({ dir, d: Buffer.from(d) }),
    });
    await relay.listen();
    await new Promise((r) => setTimeout(r, 300)); // s_server binds asynchronously
    const client = spawn('openssl', ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${relay.port}`, '-quiet'], { stdio: ['pipe', 'pipe', 'ignore'] });
    children.push(client);
    const serverOut = collect(server);
    const clientOut = collect(client);
    client.stdin!.write('client-secret-marker-17\n');
    await serverOut.waitFor('client-secret-marker-17', 15_000);
    server.stdin!.write('server-secret-marker-42\n');
    await clientOut.waitFor('server-secret-marker-42', 15_000);

    expect(relay.stats.sessions).toBe(1);
    expect(datagrams.some((x) => x.dir === 'to-registrar')).toBe(true);
    expect(datagrams.some((x) => x.dir === 'to-pledge')).toBe(true);
    for (const { d } of datagrams) {
      expect(dtlsRecordType(d)).toBeDefined();
      expect(d.includes(Buffer.from('secret-marker'))).toBe(false);
    }
    expect(datagrams.map((x) => dtlsRecordType(x.d))).toContain(23);
    tmp.cleanup();
  }, 40_000);
});
