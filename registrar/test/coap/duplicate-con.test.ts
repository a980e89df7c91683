/**
 * RFC 7252 §4.5: a confirmable request retransmitted with the same message ID (the pledge did not
 * see our ACK in time) must be processed once. For `/sen` a second processing would issue a
 * second LDevID; for `/rv` a second MASA round. Duplicates are sent while the first is still being
 * processed and after it was answered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr } from '@brski/shared/pki/csr';
import { generateKeyPair } from '@brski/shared/pki/keys';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { CoapsClient } from '@brski/pledge-sim/coaps/coap-client';
import { makePvr } from '../helpers/client.ts';
import { startCoapsWorld, type CoapsWorld } from './harness.ts';
import { cf, encode, pathOptions, POST, RawSession, TYPE } from './raw.ts';

let w: CoapsWorld;
beforeAll(async () => { w = await startCoapsWorld({ devices: 3 }); }, 60_000);
afterAll(async () => { await w?.stop(); });

async function voucherFor(index: number): Promise<void> {
  const p = w.fx.pledges[index]!;
  const c = await CoapsClient.connect({ host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem });
  try {
    const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: c.dtls.serverCertificates[0]!, proximity: 'pubk-sha256' });
    const r = await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: bytes, contentFormat: 836, accept: 836 });
    expect(r.code, r.payload.toString()).toBe('2.04');
  } finally { c.close(); }
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('duplicate confirmable requests (same message ID)', () => {
  it('/sen sent three times under one message ID (twice while in flight, once after the answer) issues one LDevID', async () => {
    const p = w.fx.pledges[0]!;
    await voucherFor(0);
    const s = await RawSession.open(w, 0);
    try {
      const csr = Buffer.from(await createCsr([['CN', p.serial]], new SoftwareSigner(generateKeyPair('P-256').privateKey)));
      const mid = s.nextMid();
      const token = Buffer.from('d0d0d0d0', 'hex');
      const datagram = encode({ type: TYPE.CON, code: POST, messageId: mid, token, options: [...pathOptions('/.well-known/est/sen'), cf(286)], payload: csr });
      s.dtls.send(datagram);
      s.dtls.send(datagram); // retransmission racing the first
      const first = await s.send(datagram, (d) => d.code === '2.04' && d.token.equals(token), 5_000);
      expect(first?.code).toBe('2.04');
      await settle(200);
      const again = await s.send(datagram, (d) => d.messageId === mid && d.code !== '0.00', 2_000); // after the answer
      expect(again?.payload.equals(first!.payload)).toBe(true);
      await settle(300);
      expect((await w.reg.store.listCertificates(p.serial)).length).toBe(1);
    } finally { s.close(); }
  });

  it('/rv retransmitted while the MASA round is in flight reaches the MASA once', async () => {
    const p = w.fx.pledges[1]!;
    const s = await RawSession.open(w, 1);
    try {
      const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: w.fx.registrarCert, proximity: 'pubk-sha256' });
      const calls = w.masa.calls;
      const token = Buffer.from('r1r1', 'latin1');
      const datagram = encode({ type: TYPE.CON, code: POST, messageId: s.nextMid(), token, options: [...pathOptions('/.well-known/brski/rv'), cf(836)], payload: Buffer.from(bytes) });
      s.dtls.send(datagram);
      await settle(5);
      s.dtls.send(datagram);
      const answer = await s.send(datagram, (d) => d.code === '2.04' && d.token.equals(token), 5_000);
      expect(answer?.code).toBe('2.04');
      await settle(300);
      expect(w.masa.calls - calls).toBe(1);
      expect(s.answers.filter((d) => d.code === '2.04' && d.token.equals(token)).length).toBeGreaterThanOrEqual(1);
    } finally { s.close(); }
  });
});
