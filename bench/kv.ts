/**
 * `npm run bench:kv` — a 3-member cluster of real `tsraft serve` processes on loopback, fsync
 * on, under a closed-loop load of 1, 16, 64 and 256 concurrent clients putting 256-byte
 * values to random keys among 10,000 over keep-alive HTTP. Prints throughput and p50/p99
 * latency per level. Figures, not pass/fail.
 *
 * BENCH_SECONDS (default 10) sets the time per level; BENCH_LEVELS="1,16" picks levels.
 */
import fs from 'node:fs';
import http from 'node:http';
import { ProcessCluster } from '../test/support/process-cluster.js';

const seconds = Number(process.env['BENCH_SECONDS'] ?? 10);
const levels = (process.env['BENCH_LEVELS'] ?? '1,16,64,256').split(',').map(Number);
const value = Buffer.alloc(256, 'v');

function putOnce(agent: http.Agent, base: URL, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
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
    req.on('error', reject);
    req.end(value);
  });
}

async function level(
  base: URL,
  clients: number,
  secs: number,
): Promise<{ ops: number; p50: number; p99: number; errors: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const lat: number[] = [];
  let errors = 0;
  const end = Date.now() + secs * 1000;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      const key = `key${Math.floor(Math.random() * 10_000)}`;
      const t = process.hrtime.bigint();
      try {
        const s = await putOnce(agent, base, key);
        if (s !== 200) errors++;
        else lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      } catch {
        errors++;
      }
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsed = (Date.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? NaN;
  return { ops: lat.length / elapsed, p50: pct(0.5), p99: pct(0.99), errors };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

const cluster = new ProcessCluster(3, ['--log-level', 'warn']);
await cluster.init();
cluster.startAll();
try {
  const leader = await cluster.waitForLeader();
  const base = new URL(leader.clientUrl);
  console.log(
    `bench:kv — 3 members on loopback, fsync on, 256-byte values, 10,000 keys, ${seconds}s per level (node ${process.version})`,
  );
  await level(base, 16, 2); // warm-up
  console.log('clients      ops/s   p50 ms   p99 ms  errors  server CPU µs/op (all three)');
  for (const c of levels) {
    const before = cluster.members.map((m) => cpuSeconds(m.proc?.pid));
    const r = await level(base, c, seconds);
    const after = cluster.members.map((m) => cpuSeconds(m.proc?.pid));
    const used = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
    const perOp = (used / Math.max(1, r.ops * seconds)) * 1e6;
    console.log(
      `${String(c).padStart(7)} ${Math.round(r.ops).toString().padStart(10)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)} ${perOp.toFixed(0).padStart(8)}`,
    );
  }
} finally {
  await cluster.destroy();
}
