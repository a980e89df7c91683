/**
 * A DTLS session that sends raw CoAP bytes and collects every answer, for tests that must send
 * what no CoAP library will (reserved token lengths, unknown critical options, broken Block1
 * sequences). Messages are built and answers decoded with the fault-injection codec
 * (test/faults/helpers/coap-wire.ts), written independently of the registrar's wire.ts.
 */
import { DtlsClient } from '@brski/pledge-sim/coaps/dtls-client';
import { decode, encode, OPT, pathOptions, TYPE, uint, type CoapOption, type Decoded } from '../../../test/faults/helpers/coap-wire.ts';
import type { CoapsWorld } from './harness.ts';

export { block, OPT, pathOptions, TYPE, uint } from '../../../test/faults/helpers/coap-wire.ts';

export class RawSession {
  readonly answers: Decoded[] = [];
  /** Datagrams that are not valid CoAP (themselves a finding). */
  readonly undecodable: Buffer[] = [];
  #mid = 1000;

  private constructor(readonly dtls: DtlsClient) {
    dtls.on('message', (m: Buffer) => {
      const d = decode(m);
      if (d) this.answers.push(d); else this.undecodable.push(m);
    });
  }

  static async open(w: CoapsWorld, pledge = 0): Promise<RawSession> {
    const p = w.fx.pledges[pledge]!;
    return new RawSession(await DtlsClient.connect({ host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem }));
  }

  nextMid(): number { return ++this.#mid; }

  /** Sends a datagram and waits for the first answer (from now on) matching `match`; undefined after `ms`. */
  async send(datagram: Buffer, match: (d: Decoded) => boolean, ms = 2_000): Promise<Decoded | undefined> {
    const from = this.answers.length;
    this.dtls.send(datagram);
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const hit = this.answers.slice(from).find(match);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 10));
    }
    return undefined;
  }

  /** A request with `token`; resolves with its answer (matched by token, empty ACKs skipped). */
  request(o: { code: [number, number]; options: CoapOption[]; token: Buffer; payload?: Buffer; type?: number; mid?: number }, ms?: number): Promise<Decoded | undefined> {
    const datagram = encode({ type: o.type ?? TYPE.CON, code: o.code, messageId: o.mid ?? this.nextMid(), token: o.token, options: o.options, ...(o.payload ? { payload: o.payload } : {}) });
    return this.send(datagram, (d) => d.code !== '0.00' && d.token.equals(o.token), ms);
  }

  close(): void { this.dtls.close(); }
}

export const GET: [number, number] = [0, 1];
export const POST: [number, number] = [0, 2];
export const FETCH: [number, number] = [0, 5];
export const cf = (n: number): CoapOption => ({ number: OPT.contentFormat, value: uint(n) });
export const core = (): CoapOption[] => pathOptions('/.well-known/core');
export { encode, type CoapOption, type Decoded };
