/**
 * `npm run soak` — a write soak at a small snapshot threshold: a 3-member cluster of real
 * processes under steady writes for SOAK_MINUTES (default 10), printing each member's data
 * directory size every 30 s. With compaction working the sizes stay bounded.
 *
 * SOAK_SNAPSHOT_COUNT (default 2000) and SOAK_CATCHUP (default 1000) set the thresholds;
 * SOAK_CLIENTS (default 16) the load.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ProcessCluster } from '../test/support/process-cluster.js';

const minutes = Number(process.env['SOAK_MINUTES'] ?? 10);
const snapCount = process.env['SOAK_SNAPSHOT_COUNT'] ?? '2000';
const catchup = process.env['SOAK_CATCHUP'] ?? '1000';
const clients = Number(process.env['SOAK_CLIENTS'] ?? 16);

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else {
      try {
        total += fs.statSync(p).size;
      } catch {
        // removed meanwhile
      }
    }
  }
  return total;
}

const mib = (n: number): string => (n / 1048576).toFixed(1);
const c = new ProcessCluster(3, [
  '--log-level',
  'warn',
  '--snapshot-count',
  snapCount,
  '--snapshot-catchup-entries',
  catchup,
]);
await c.init();
c.startAll();
try {
  const leader = await c.waitForLeader();
  const base = new URL(leader.clientUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const value = Buffer.alloc(256, 's');
  let writes = 0;
  let errors = 0;
  const end = Date.now() + minutes * 60_000;
  const put = (key: string): Promise<number> =>
    new Promise((resolve) => {
      const req = http.request(
        {
          host: base.hostname,
          port: base.port,
          path: `/v1/kv/${key}`,
          method: 'PUT',
          agent,
          headers: { 'content-length': value.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', () => resolve(0));
      req.end(value);
    });
  const workers = Array.from({ length: clients }, async () => {
    while (Date.now() < end) {
      if ((await put(`k${Math.floor(Math.random() * 100_000)}`)) === 200) writes++;
      else errors++;
    }
  });
  console.log(
    `soak: ${minutes} min, ${clients} clients, snapshot every ${snapCount} entries, ${catchup} kept below`,
  );
  console.log('minute   writes   errors  ' + c.members.map((m) => `${m.name} MiB`.padStart(9)).join(''));
  const t0 = Date.now();
  const sample = (): void => {
    const sizes = c.members.map((m) => (fs.existsSync(m.dataDir) ? dirBytes(m.dataDir) : 0));
    console.log(
      `${((Date.now() - t0) / 60000).toFixed(1).padStart(6)} ${String(writes).padStart(8)} ${String(errors).padStart(8)}  ${sizes.map((b) => mib(b).padStart(9)).join('')}`,
    );
  };
  const timer = setInterval(sample, 30_000);
  await Promise.all(workers);
  clearInterval(timer);
  sample();
  agent.destroy();
} finally {
  await c.destroy();
}
