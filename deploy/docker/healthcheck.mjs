// Container HEALTHCHECK: GET https://127.0.0.1:$BRSKI_HEALTH_PORT/healthz, healthy on 200.
// The service's certificate is not verified here on purpose: this probes the local process
// (loopback, no data exchanged), and the image cannot know which CA the operator mounted.
import { request } from 'node:https';

const port = Number(process.env.BRSKI_HEALTH_PORT ?? '8443');
const req = request({ host: '127.0.0.1', port, path: '/healthz', method: 'GET', rejectUnauthorized: false, timeout: 3000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${err.message}\n`);
  process.exit(1);
});
req.end();
