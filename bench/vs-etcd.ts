/**
 * `npm run bench:vs-etcd` — tsraft side by side with etcd 3.4 on the same machine, under the
 * same closed-loop workload. Figures, not pass/fail.
 *
 * Both systems run as 3 real processes on 127.0.0.1, fsync on, one system at a time (never
 * both: the machine has 2 cores), in alternation (etcd, tsraft, etcd, tsraft…) with a fresh
 * cluster each time, so that the drift of a shared machine hits both alike; the tables give
 * medians over the rounds. Each cluster: a warm-up that writes each of the 10,000 keys once,
 * then 1, 16, 64 and 256 concurrent clients putting 256-byte values to random keys, then
 * linearizable reads of random keys at 64 clients, every level for BENCH_SECONDS. All requests
 * go to the leader. The load generator is this one Node process, as light as can be for both:
 * for etcd a minimal gRPC client on `node:http2` sending prebuilt Put/Range frames, for tsraft
 * its HTTP API through a keep-alive agent. Besides ops/s and latency, the servers' CPU per
 * operation (all three processes together) is reported: on 2 shared cores, client cost
 * distorts throughput, and CPU per operation is the fairest single figure.
 *
 * etcd comes from $ETCD_BIN or the PATH; when missing, Debian's `etcd-server` package is
 * installed (apt-get). Our etcd gets its own free ports and data under a temp dir; a
 * system-wide etcd is left alone.
 *
 * Environment: BENCH_SECONDS (15) per level, BENCH_ROUNDS (3) alternations, BENCH_LEVELS
 * ("1,16,64,256"), BENCH_READ_CLIENTS (64, 0 to skip reads), BENCH_WARMUP_CLIENTS (64),
 * BENCH_STREAMS_PER_CONN (64: etcd clients per HTTP/2 connection), BENCH_SYSTEMS
 * ("etcd,tsraft"), BENCH_PAUSE_MS (2000, idle time between two clusters), ETCD_BIN.
 *
 * Output: the tables, raw results as JSON in bench/results/vs-etcd-<time>.json, and a last
 * line for scripts: `vs-etcd: writes@64 ratio=…, writes@256 ratio=…, p99@64 ratio=…, reads@64 ratio=…`
 * (tsraft/etcd: above 1 is better for tsraft in ops/s, worse in p99).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureEtcd, foreignEtcds } from './vs-etcd/etcd-cluster.js';
import { populate, runLevel, type LevelResult } from './vs-etcd/load.js';
import { cpuSeconds, load1, memMiB } from './vs-etcd/proc-stats.js';
import {
  headlineRatios,
  levelKey,
  pairedRatios,
  pairedTable,
  serverTable,
  summarize,
  summaryLine,
  table,
  type SystemRun,
} from './vs-etcd/report.js';
import {
  KEY_COUNT,
  startEtcd,
  startTsraft,
  VALUE_BYTES,
  type System,
  type Target,
} from './vs-etcd/targets.js';

function envInt(name: string, dflt: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min} (got ${raw})`);
  return n;
}

const SECONDS = envInt('BENCH_SECONDS', 15, 0.1);
const ROUNDS = envInt('BENCH_ROUNDS', 3, 1);
const LEVELS = (process.env['BENCH_LEVELS'] || '1,16,64,256').split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_LEVELS: bad level ${JSON.stringify(s)}`);
  return n;
});
const READ_CLIENTS = envInt('BENCH_READ_CLIENTS', 64, 0);
const WARMUP_CLIENTS = envInt('BENCH_WARMUP_CLIENTS', 64, 1);
const STREAMS_PER_CONN = envInt('BENCH_STREAMS_PER_CONN', 64, 1);
const PAUSE_MS = envInt('BENCH_PAUSE_MS', 2000, 0);
const SYSTEMS = (process.env['BENCH_SYSTEMS'] || 'etcd,tsraft').split(',').map((s) => {
  const t = s.trim();
  if (t !== 'etcd' && t !== 'tsraft') throw new Error(`BENCH_SYSTEMS: unknown system ${JSON.stringify(s)}`);
  return t as System;
});

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (s: string): void => console.log(s);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tsraftRevision(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${sha} + uncommitted changes in src/` : sha;
  } catch {
    return 'unknown';
  }
}

// Everything we start, for the interrupt path.
let current: Target | undefined;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsraft-vs-etcd-'));
const dataRoots = [root];
function cleanup(): void {
  // Data is removed only at the end: on a file system mounted with `discard`, deleting
  // hundreds of MB sends TRIMs that would slow the next cluster's syncs.
  for (const d of dataRoots) fs.rmSync(d, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping the servers`);
    current?.killNow();
    setTimeout(() => {
      cleanup();
      process.exit(130);
    }, 300);
  });
}

const fmt = (l: LevelResult): string =>
  [
    `${Math.round(l.opsPerSec).toString().padStart(7)} ops/s`,
    `p50 ${l.p50Ms.toFixed(2).padStart(6)} ms`,
    `p99 ${l.p99Ms.toFixed(2).padStart(7)} ms`,
    `servers ${Math.round(l.serverCpuUsPerOp).toString().padStart(4)} µs/op`,
    `client ${Math.round(l.clientCpuUsPerOp).toString().padStart(3)} µs/op`,
    `others ${l.otherCores.toFixed(2)} cores`,
    `probe ${l.probeMs.toFixed(1)} ms`,
    ...(l.errors ? [`errors ${l.errors} (${l.firstError})`] : []),
  ].join('  ');

async function runSystem(system: System, round: number, etcdBin: string): Promise<SystemRun> {
  const loadBefore = load1();
  let version: string;
  let target: Target;
  if (system === 'etcd') {
    const r = await startEtcd(etcdBin, path.join(root, `etcd-round${round}`), STREAMS_PER_CONN);
    target = r.target;
    version = r.version;
  } else {
    const r = await startTsraft();
    dataRoots.push(r.dataRoot);
    target = r.target;
    version = tsraftRevision();
  }
  current = target;
  const leader = target.servers.find((s) => s.role === 'leader');
  log(
    `round ${round}/${ROUNDS} ${system}: leader ${leader?.name} (pid ${leader?.pid}), write+read checked, load ${loadBefore.toFixed(2)}`,
  );
  try {
    const shapes: Record<string, string> = {};
    const warm = await target.open(WARMUP_CLIENTS);
    const w = await populate(warm, WARMUP_CLIENTS).finally(() => warm.close());
    log(
      `  warm-up: ${KEY_COUNT} keys written in ${w.seconds.toFixed(1)} s${w.errors ? ` (${w.errors} retried)` : ''}`,
    );
    const levels: LevelResult[] = [];
    const phases = [
      ...LEVELS.map((c) => ({ kind: 'write' as const, clients: c })),
      ...(READ_CLIENTS > 0 ? [{ kind: 'read' as const, clients: READ_CLIENTS }] : []),
    ];
    for (const p of phases) {
      const conn = await target.open(p.clients);
      shapes[levelKey(p.kind, p.clients)] = conn.shape;
      const r = await runLevel(conn, p.kind, p.clients, SECONDS, target.servers).finally(() => conn.close());
      levels.push(r);
      log(`  ${system.padEnd(6)} ${levelKey(p.kind, p.clients).padEnd(10)} ${fmt(r)}`);
      await sleep(300);
    }
    const servers = target.servers.map((s, i) => ({
      ...s,
      peakRssMiB: memMiB(s.pid, 'VmHWM'),
      measuredCpuSeconds: levels.reduce((a, l) => a + (l.serverCpuSeconds[i] ?? 0), 0),
      totalCpuSeconds: cpuSeconds(s.pid),
    }));
    return {
      system,
      round,
      version,
      loadBefore,
      loadAfter: load1(),
      warmupSeconds: w.seconds,
      connShapes: shapes,
      levels,
      servers,
    };
  } finally {
    await target.stop();
    current = undefined;
  }
}

async function main(): Promise<void> {
  const etcd = ensureEtcd(log);
  const others = foreignEtcds(new Set());
  const cpus = os.cpus();
  log(
    `bench:vs-etcd — etcd ${etcd.version} (${etcd.bin}) vs tsraft ${tsraftRevision()}; 3 members each on 127.0.0.1, fsync on`,
  );
  log(
    `  ${VALUE_BYTES}-byte values, ${KEY_COUNT.toLocaleString('en-US')} keys, writes at ${LEVELS.join('/')} clients` +
      `${READ_CLIENTS > 0 ? `, linearizable reads at ${READ_CLIENTS}` : ''}, ${SECONDS} s per level, ${ROUNDS} round(s) ` +
      `alternating ${SYSTEMS.join(', ')}`,
  );
  log(
    `  node ${process.version}, ${cpus.length} × ${cpus[0]?.model.trim() ?? '?'}, load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  if (others.length)
    log(
      `  note: other etcd processes are running (pids ${others.join(', ')}); left alone, they share the CPU`,
    );
  if (load1() > 1) log(`  note: the machine is busy (load ${load1().toFixed(2)}): figures will be noisy`);

  const runs: SystemRun[] = [];
  const started = new Date();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const system of SYSTEMS) {
        runs.push(await runSystem(system, round, etcd.bin));
        // Let the disk settle before the next cluster: flush whatever is dirty, then idle.
        spawnSync('sync');
        await sleep(PAUSE_MS);
      }
    }
  } finally {
    cleanup();
  }

  const sum = summarize(runs);
  const order = [
    ...LEVELS.map((c) => levelKey('write', c)),
    ...(READ_CLIENTS > 0 ? [levelKey('read', READ_CLIENTS)] : []),
  ];
  log('');
  log(`medians of ${ROUNDS} round(s); ratio = tsraft/etcd; spread = (max-min)/median of ops/s over rounds;`);
  log('server µs/op = CPU of all three server processes per operation; client = this load generator;');
  log('others = cores busy with other processes on the machine meanwhile (noise)');
  log(
    'probe = ms a fixed CPU task took just before the level (machine speed: similar for both systems, or compare with care)',
  );
  log(table(sum, order));
  const paired = pairedRatios(runs, order);
  if (SYSTEMS.length === 2) {
    log('');
    log('ops/s ratio tsraft/etcd within each round (the two ran back to back; less exposed to drift):');
    log(pairedTable(paired));
  }
  log('');
  log(serverTable(runs, SYSTEMS));
  const widest = levelKey('write', Math.max(...LEVELS));
  log('');
  log(`connections at ${widest}:`);
  for (const s of SYSTEMS) log(`  ${s}: ${runs.find((r) => r.system === s)?.connShapes[widest] ?? '?'}`);

  const ratios = headlineRatios(sum, READ_CLIENTS);
  const resultsDir = path.join(repo, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const file = path.join(resultsDir, `vs-etcd-${stamp}.json`);
  fs.writeFileSync(
    file,
    `${JSON.stringify(
      {
        started: started.toISOString(),
        finished: new Date().toISOString(),
        config: {
          seconds: SECONDS,
          rounds: ROUNDS,
          levels: LEVELS,
          readClients: READ_CLIENTS,
          warmupClients: WARMUP_CLIENTS,
          streamsPerConn: STREAMS_PER_CONN,
          systems: SYSTEMS,
          keys: KEY_COUNT,
          valueBytes: VALUE_BYTES,
        },
        environment: {
          node: process.version,
          cpus: cpus.length,
          cpuModel: cpus[0]?.model.trim() ?? null,
          etcd: etcd.version,
          etcdBin: etcd.bin,
          tsraft: tsraftRevision(),
          foreignEtcdPids: others,
        },
        runs,
        medians: Object.fromEntries([...sum].map(([s, m]) => [s, Object.fromEntries(m)])),
        ratios,
        pairedRatios: paired,
      },
      (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
      2,
    )}\n`,
  );
  log('');
  log(`raw results: ${path.relative(repo, file)}`);
  log(summaryLine(ratios, READ_CLIENTS));
}

await main();
