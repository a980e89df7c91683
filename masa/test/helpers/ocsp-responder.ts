/**
 * A real OCSP responder for tests: `openssl ocsp` (an independent implementation) serving an
 * OpenSSL CA index of good ('V') and revoked ('R') certificates, signed with the given key.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../../test/helpers/ports.ts';
import { makeTempDir } from '../../../test/helpers/tmp.ts';
import type { Party } from './pki.ts';

const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'; // YYMMDDHHMMSSZ

export class OcspResponder {
  #proc: ChildProcess | undefined;
  #dir = makeTempDir('ocsp-responder-');
  port = 0;

  /** `ca` issued the certificates; `signer` signs the responses (the CA itself, or anyone for a rogue responder). */
  async start(ca: Party, signer: Party, entries: Array<{ cert: X509Certificate; revoked?: boolean }>, port?: number): Promise<this> {
    const f = (n: string) => join(this.#dir.path, n);
    writeFileSync(f('ca.pem'), ca.cert.toString());
    writeFileSync(f('signer.pem'), signer.cert.toString());
    writeFileSync(f('signer.key'), signer.keyPem);
    const expiry = stamp(new Date(Date.now() + 30 * 86_400_000));
    const revokedAt = stamp(new Date(Date.now() - 3_600_000));
    writeFileSync(f('index.txt'), entries.map((e) => [e.revoked ? 'R' : 'V', expiry, e.revoked ? `${revokedAt},keyCompromise` : '',
      e.cert.serialNumber.toUpperCase(), 'unknown', e.cert.subject.replace(/\n/g, '/')].join('\t')).join('\n') + '\n');
    this.port = port ?? await freePort();
    const proc = spawn('openssl', ['ocsp', '-index', f('index.txt'), '-port', String(this.port), '-CA', f('ca.pem'),
      '-rsigner', f('signer.pem'), '-rkey', f('signer.key'), '-ndays', '1', '-ignore_err'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    // Ready once it says so: a probe connection would stall it (it serves one connection at a time
    // and waits for a request line on a socket the probe already closed).
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${seen}`)), 10_000);
      const onData = (b: Buffer) => {
        seen += b.toString();
        if (/waiting for OCSP client connections/.test(seen)) { clearTimeout(timer); resolve(); }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`openssl ocsp exited ${code}: ${seen}`)); });
    });
    return this;
  }

  get url(): string { return `http://127.0.0.1:${this.port}`; }

  async stop(): Promise<void> {
    this.#proc?.kill();
    this.#dir.cleanup();
  }
}
