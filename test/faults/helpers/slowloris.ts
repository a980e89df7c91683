/**
 * Slow clients: a TLS connection that dribbles its request headers (or, after complete headers,
 * its body) one byte a second. The server must close the socket on its own; we measure when.
 */
import { connect } from 'node:tls';

export interface SlowResult { mode: 'headers' | 'body'; closedAfterMs: number | null; answer: string }

export function slowloris(port: number, mode: 'headers' | 'body', giveUpMs = 60_000): Promise<SlowResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    let answer = '';
    let timer: NodeJS.Timeout | undefined;
    const sock = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, () => {
      sock.write(mode === 'headers'
        ? 'POST /.well-known/brski/requestvoucher HTTP/1.1\r\nHost: x\r\n'
        : 'POST /.well-known/brski/requestvoucher HTTP/1.1\r\nHost: x\r\nContent-Type: application/voucher-jws+json\r\nContent-Length: 1000\r\n\r\n');
      timer = setInterval(() => { if (!sock.destroyed) sock.write(mode === 'headers' ? 'X' : '{'); }, 1_000);
    });
    const finish = (closed: boolean): void => {
      clearInterval(timer);
      clearTimeout(cap);
      sock.destroy();
      resolve({ mode, closedAfterMs: closed ? Date.now() - started : null, answer: answer.split('\r\n')[0] ?? '' });
    };
    const cap = setTimeout(() => finish(false), giveUpMs);
    sock.on('data', (d: Buffer) => { answer += d.toString('latin1'); });
    sock.on('error', () => undefined);
    sock.once('close', () => finish(true));
  });
}
