/**
 * The console's static assets: htmx straight from node_modules (no CDN, no copy to go stale) and
 * the hand-written CSS/JS next to this file. Loaded once, served from memory with a content hash
 * ETag. `verifyAssets` is what `npm run build` runs (see build.ts): there is no bundling step.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset { name: string; type: string; body: Buffer; etag: string; path: string }

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export const ASSET_FILES: Record<string, { type: string; path: () => string }> = {
  'htmx.min.js': { type: 'text/javascript; charset=utf-8', path: () => require.resolve('htmx.org/dist/htmx.min.js') },
  'console.js': { type: 'text/javascript; charset=utf-8', path: () => join(here, 'static', 'console.js') },
  'console.css': { type: 'text/css; charset=utf-8', path: () => join(here, 'static', 'console.css') },
};

export function loadAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [name, f] of Object.entries(ASSET_FILES)) {
    const path = f.path();
    const body = readFileSync(path);
    out.set(name, { name, type: f.type, body, path, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  return out;
}

/** The htmx version found in node_modules; the console is written for 2.x. */
export function htmxVersion(): string {
  const pkg = JSON.parse(readFileSync(require.resolve('htmx.org/package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Throws unless every asset is present and htmx is 2.x; returns a summary line per asset. */
export function verifyAssets(): string[] {
  const v = htmxVersion();
  if (!/^2\./.test(v)) throw new Error(`console: htmx.org ${v} found, 2.x required`);
  const assets = loadAssets();
  const js = assets.get('htmx.min.js')!.body.toString('utf8');
  if (!js.includes('htmx')) throw new Error('console: htmx.min.js does not look like htmx');
  return [...assets.values()].map((a) => `${a.name.padEnd(12)} ${String(a.body.length).padStart(7)} bytes  ${a.etag}  ${a.path}`);
}
