/**
 * `npm run bench:snapshot` — §7 snapshots of a KV store with 1M keys. Figures, not pass/fail.
 *
 * Part 1, in one process with real disk and loopback TCP, each phase alone:
 *   take      KvStateMachine.snapshot() (copy-on-write stream) → FileStorage.saveSnapshot
 *   transfer  TcpTransport streams the file in checksummed 1 MiB chunks → the receiver's
 *             FileStorage.receiveSnapshot (until the receiver acknowledged: synced and renamed)
 *   install   save({ snapshot, received }) → KvStateMachine.restoreStream from the file
 * plus the longest event-loop stall during each (what applying and heartbeats would wait).
 *
 * Part 2, three real `tsraft serve` processes loaded with the same keys over HTTP: write
 * latency (16 closed-loop clients, straight to the leader) before, while the leader takes a
 * snapshot, and while a brand-new member added to the cluster receives and installs it.
 *
 * BENCH_KEYS (default 1,000,000) and BENCH_VALUE (bytes per value, default 100) size the store;
 * BENCH_PART=1 or 2 runs one part.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { encodeCommand } from '../src/kv/commands.js';
import { KvStateMachine } from '../src/kv/state.js';
import type { Command } from '../src/node/state-machine.js';
import { FileStorage } from '../src/storage/file-storage.js';
import type { ReceivedSnapshot } from '../src/storage/storage.js';
import { TcpTransport } from '../src/transport/tcp-transport.js';
import { ProcessCluster, type Member } from '../test/support/process-cluster.js';

const KEYS = Number(process.env['BENCH_KEYS'] ?? 1_000_000);
const VALUE = Number(process.env['BENCH_VALUE'] ?? 100);
const PART = process.env['BENCH_PART'];
const CONF = { voters: ['a', 'b'], outgoing: [], learners: [], learnersNext: [] };
const MiB = 1024 * 1024;

const fmt = (n: number, d = 1): string => n.toLocaleString('en-US', { maximumFractionDigits: d });

/** Runs `f`, reporting its duration and the longest event-loop stall while it ran. */
async function timed<T>(f: () => Promise<T>): Promise<{ v: T; ms: number; stallMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t = performance.now();
  const v = await f();
  const ms = performance.now() - t;
  h.disable();
  return { v, ms, stallMs: h.max / 1e6 };
}

function value(i: number): Uint8Array {
  const v = new Uint8Array(VALUE);
  for (let k = 0; k < VALUE; k += 8) v[k] = (i + k) & 0xff;
  return v;
}

async function part1(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsraft-bench-snap-'));
  try {
    console.log(`\npart 1 — one process, real disk, loopback TCP (${fmt(KEYS, 0)} keys × ${VALUE} B values)`);
    const sm = new KvStateMachine();
    const t0 = performance.now();
    for (let i = 0; i < KEYS; i += 10_000) {
      const batch: Command[] = [];
      for (let k = i; k < Math.min(KEYS, i + 10_000); k++) {
        const data = encodeCommand({
          op: 'put',
          time: 0,
          clientId: '',
          seq: 0,
          prevIndex: -1,
          key: `key${String(k).padStart(8, '0')}`,
          value: value(k),
        });
        batch.push({ index: k + 1, term: 1, data });
      }
      sm.apply(batch);
    }
    console.log(`  loaded the state machine in ${fmt((performance.now() - t0) / 1000, 2)} s`);

    // take
    const a = await FileStorage.open(path.join(root, 'a'), { io: 'async' });
    // (A one-entry log: the snapshot's position does not matter here, only its bytes.)
    await a.save({ entries: [{ index: 1, term: 1, type: 'normal', data: new Uint8Array(0) }] });
    const meta = { index: 1, term: 1, conf: CONF };
    const take = await timed(() => a.saveSnapshot({ meta, data: sm.snapshot() }));
    const size = a.readSnapshot().size;
    const mb = size / MiB;
    console.log(
      `  take      ${fmt(mb)} MiB in ${fmt(take.ms, 0)} ms = ${fmt(mb / (take.ms / 1000))} MiB/s (longest event-loop stall ${fmt(take.stallMs)} ms)`,
    );

    // transfer
    const b = await FileStorage.open(path.join(root, 'b'), { io: 'async' });
    let received: ReceivedSnapshot | undefined;
    const tb = new TcpTransport({ id: 'b', listen: '127.0.0.1:0', secret: 'bench' });
    await tb.start(() => undefined, {
      begin: (_m, _size) => {
        const rx = b.receiveSnapshot(meta);
        return {
          write: (c) => rx.write(c),
          finish: async () => {
            received = await rx.finish();
          },
          abort: () => void rx.abort(),
        };
      },
    });
    let outcome: (ok: boolean) => void = () => undefined;
    const sent = new Promise<boolean>((r) => (outcome = r));
    const ta = new TcpTransport({
      id: 'a',
      listen: '127.0.0.1:0',
      secret: 'bench',
      peers: { b: `127.0.0.1:${tb.address().port}` },
      events: { onSnapshotSent: (_p, ok) => outcome(ok) },
    });
    await ta.start(() => undefined);
    const reader = a.readSnapshot();
    const transfer = await timed(async () => {
      ta.sendSnapshot(
        { type: 'snap', from: 'a', to: 'b', term: 1, snapshot: { meta, data: new Uint8Array(0) } },
        { size: reader.size, chunks: reader.chunks, release: () => reader.close() },
      );
      return sent;
    });
    if (!transfer.v || received === undefined) throw new Error('the transfer failed');
    console.log(
      `  transfer  ${fmt(mb)} MiB in ${fmt(transfer.ms, 0)} ms = ${fmt(mb / (transfer.ms / 1000))} MiB/s (sender and receiver in this process; stall ${fmt(transfer.stallMs)} ms)`,
    );

    // install
    const restored = new KvStateMachine();
    const got = received;
    const install = await timed(async () => {
      await b.save({ snapshot: { meta, data: new Uint8Array(0) }, received: got, entries: [] });
      await restored.restoreStream(b.readSnapshot().chunks);
    });
    if (restored.size !== KEYS) throw new Error(`restored ${restored.size} keys, expected ${KEYS}`);
    console.log(
      `  install   ${fmt(mb)} MiB, ${fmt(KEYS, 0)} keys in ${fmt(install.ms, 0)} ms = ${fmt(mb / (install.ms / 1000))} MiB/s, ${fmt(KEYS / (install.ms / 1000), 0)} keys/s (stall ${fmt(install.stallMs)} ms)`,
    );
    await ta.close();
    await tb.close();
    await a.close();
    await b.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

function putOnce(agent: http.Agent, base: URL, key: string, body: Uint8Array): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: `/v1/kv/${key}`,
        method: 'PUT',
        agent,
        headers: { 'content-length': body.byteLength },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Loads `KEYS` keys with `clients` concurrent writers. */
async function load(base: URL, clients: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < KEYS) {
        const i = next++;
        while ((await putOnce(agent, base, `key${String(i).padStart(8, '0')}`, value(i))) !== 200) {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }),
  );
  agent.destroy();
  return (performance.now() - t) / 1000;
}

interface Latency {
  ops: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Closed-loop writers running through the whole of part 2; each write is recorded with the time
 * it started, so any interval can be summarized afterwards (no connection set-up in the figures).
 */
class Writers {
  private readonly samples: { at: number; ms: number }[] = [];
  private stop = false;
  private readonly done: Promise<void>;
  private readonly agent: http.Agent;

  constructor(base: URL, clients: number) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: clients });
    const body = value(7);
    let n = 0;
    this.done = Promise.all(
      Array.from({ length: clients }, async (_, w) => {
        while (!this.stop) {
          const t = performance.now();
          const s = await putOnce(this.agent, base, `live${w}-${n++ % 1000}`, body);
          if (s === 200) this.samples.push({ at: t, ms: performance.now() - t });
        }
      }),
    ).then(() => undefined);
  }

  /** Writes that started in `[from, to)`. */
  between(from: number, to: number): Latency {
    const lat = this.samples.filter((x) => x.at >= from && x.at < to).map((x) => x.ms);
    lat.sort((a, b) => a - b);
    const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? NaN;
    return { ops: lat.length / ((to - from) / 1000), p50: pct(0.5), p99: pct(0.99), max: lat.at(-1) ?? NaN };
  }

  async close(): Promise<void> {
    this.stop = true;
    await this.done;
    this.agent.destroy();
  }
}

const row = (what: string, l: Latency, extra = ''): void =>
  console.log(
    `  ${what.padEnd(36)} ${fmt(l.ops, 0).padStart(6)} writes/s  p50 ${fmt(l.p50, 2).padStart(6)} ms  p99 ${fmt(l.p99, 2).padStart(7)} ms  max ${fmt(l.max, 0).padStart(5)} ms${extra}`,
  );

function events(m: Member, event: string): { ts: number; f: Record<string, unknown> }[] {
  const out: { ts: number; f: Record<string, unknown> }[] = [];
  for (const l of m.log) {
    if (!l.includes(`"event":"${event}"`)) continue;
    try {
      const j = JSON.parse(l) as Record<string, unknown>;
      out.push({ ts: Date.parse(j['ts'] as string), f: j });
    } catch {
      // not a JSON line
    }
  }
  return out;
}

async function waitFor<T>(f: () => T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function part2(): Promise<void> {
  console.log(`\npart 2 — three tsraft serve processes (fsync on), then a fourth joins`);
  const c = new ProcessCluster(4, ['--snapshot-count', '0', '--snapshot-bytes', '0'], 3);
  await c.init();
  c.startAll();
  try {
    const leader = await c.waitForLeader();
    const base = new URL(leader.clientUrl);
    const secs = await load(base, 256);
    console.log(
      `  loaded ${fmt(KEYS, 0)} keys over HTTP in ${fmt(secs)} s (${fmt(KEYS / secs, 0)} writes/s)`,
    );
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    const writers = new Writers(base, 16);
    await sleep(1000); // connections up
    const b0 = performance.now();
    await sleep(5000);
    const b1 = performance.now();
    row('baseline (5 s)', writers.between(b0, b1));

    const t0 = performance.now();
    const r = await fetch(`${leader.clientUrl}/v1/snapshot`, { method: 'POST' });
    const s = (await r.json()) as { index: number; ms: number };
    const t1 = performance.now();
    const file = fs.readdirSync(path.join(leader.dataDir, 'snap')).find((f) => f.endsWith('.snap'))!;
    const mb = fs.statSync(path.join(leader.dataDir, 'snap', file)).size / MiB;
    row(
      'while the leader takes a snapshot',
      writers.between(t0, t1),
      `  (${fmt(mb)} MiB in ${fmt(s.ms, 0)} ms)`,
    );
    await sleep(1000);

    const n4 = c.member('n4');
    const j0 = performance.now();
    const add = await fetch(`${leader.clientUrl}/v1/cluster/members`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'n4', peerUrl: n4.peerUrl, clientUrl: n4.clientUrl, role: 'learner' }),
    });
    if (add.status !== 201) throw new Error(`adding n4: ${add.status} ${await add.text()}`);
    c.start('n4');
    await waitFor(() => events(n4, 'snapshot-installed')[0], 600_000, 'n4 installs the snapshot');
    const j1 = performance.now();
    await writers.close();
    const begin = events(n4, 'snapshot-receive-begin')[0]!;
    const got = events(n4, 'snapshot-received')[0]!;
    const inst = events(n4, 'snapshot-installed')[0]!;
    row(
      'while n4 starts, receives, installs it',
      writers.between(j0, j1),
      `  (transfer ${fmt(got.ts - begin.ts, 0)} ms = ${fmt(mb / ((got.ts - begin.ts) / 1000))} MiB/s, install ${fmt(inst.ts - got.ts, 0)} ms)`,
    );
  } finally {
    await c.destroy();
  }
}

console.log(
  `bench:snapshot — ${fmt(KEYS, 0)} keys × ${VALUE} B (node ${process.version}, ${os.cpus().length} cores)`,
);
if (PART !== '2') await part1();
if (PART !== '1') await part2();
