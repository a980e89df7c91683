/**
 * `npm run build` for the console: the console is server-rendered and uses htmx as shipped, so
 * there is nothing to bundle. The build step verifies that every asset the registrar will serve
 * exists (htmx 2.x from node_modules, the console CSS/JS) and prints their sizes and ETags, so a
 * broken install fails at build time rather than as a blank page on site.
 */
import { verifyAssets } from './assets.ts';

try {
  for (const line of verifyAssets()) process.stdout.write(`console asset ${line}\n`);
  process.stdout.write('console: assets verified (served from memory by the registrar admin listener under /console/static/)\n');
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
}
