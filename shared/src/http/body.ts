/**
 * Request body reading with a hard size limit. Hand-written rather than raw-body/co-body because
 * we need the raw bytes (signed envelopes must be verified over exactly what was sent), a 413 that
 * is decided before any byte beyond the limit is buffered, and typed BrskiErrors.
 */
import type Koa from 'koa';
import { BrskiError, MalformedError, SizeLimitError } from '../errors.ts';

export interface RawBodyOptions {
  /** Maximum body size in bytes. */
  limit: number;
}

declare module 'koa' {
  interface DefaultState {
    body?: Buffer;
  }
}

export function rawBody(opts: RawBodyOptions | number): Koa.Middleware {
  const limit = typeof opts === 'number' ? opts : opts.limit;
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`rawBody limit must be a non-negative integer, got ${limit}`);
  return async function readRawBody(ctx, next) {
    ctx.state.body = await readBody(ctx, limit);
    await next();
  };
}

/** Reads the whole request body of `ctx` into a Buffer, enforcing `limit`. */
export async function readBody(ctx: Koa.Context, limit: number): Promise<Buffer> {
  const req = ctx.req;
  const encoding = req.headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    // We never inflate request bodies (decompression bombs, and signatures cover the sent bytes).
    throw new BrskiError('unsupported-media-type', `Content-Encoding ${JSON.stringify(encoding)} is not accepted`);
  }
  const lengthHeader = req.headers['content-length'];
  let declared: number | undefined;
  if (lengthHeader !== undefined) {
    if (!/^\d{1,15}$/.test(lengthHeader)) throw new MalformedError('invalid Content-Length');
    declared = Number(lengthHeader);
    if (declared > limit) {
      refuseRest(ctx);
      throw new SizeLimitError(limit, declared);
    }
  }
  if (req.readableEnded) return Buffer.alloc(0);

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (err: Error | undefined, value?: Buffer): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) reject(err); else resolve(value!);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) {
        chunks.length = 0;
        refuseRest(ctx);
        finish(new SizeLimitError(limit));
        req.pause();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      if (declared !== undefined && received !== declared) {
        finish(new MalformedError(`request body truncated: got ${received} of ${declared} bytes`));
        return;
      }
      finish(undefined, Buffer.concat(chunks, received));
    };
    const onError = (err: Error): void => {
      finish(new MalformedError('request body aborted', { cause: err }));
    };
    const onClose = (): void => {
      if (!req.complete) finish(new MalformedError('request body aborted'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

/** After refusing a body we will not read the rest of it: close the connection after answering. */
function refuseRest(ctx: Koa.Context): void {
  ctx.set('Connection', 'close');
  ctx.res.once('finish', () => ctx.req.socket.destroySoon());
}
