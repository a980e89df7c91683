/** Minimal HTTPS client for the tests: one request, full response. */
import https from 'node:https';

export interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

export function request(port: number, path: string, opts: https.RequestOptions & { body?: string | Buffer } = {}): Promise<Reply> {
  const { body, ...rest } = opts;
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', ...rest }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
