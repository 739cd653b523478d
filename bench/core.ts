/**
 * `npm run bench:core` — the core alone: three in-memory nodes, no I/O, 128-byte proposals.
 * Prints committed entries per second (with batching) and the leader's step-path cost per
 * entry. Figures, not pass/fail.
 */
import { RawNode } from '../src/core/raw-node.js';
import type { Message } from '../src/core/messages.js';
import { MemoryStorage } from '../src/storage/memory-storage.js';

const ids = ['n1', 'n2', 'n3'];
const PAYLOAD = 128;

interface BenchNode {
  rn: RawNode;
  s: MemoryStorage;
  inbox: Message[];
  applied: number;
}

function makeCluster(): Map<string, BenchNode> {
  const nodes = new Map<string, BenchNode>();
  for (const id of ids) {
    const s = new MemoryStorage({ conf: { voters: ids, outgoing: [], learners: [], learnersNext: [] } });
    nodes.set(id, {
      rn: new RawNode({ id, storage: s, maxUncommittedBytes: 0, maxInflightMsgs: 1024 }),
      s,
      inbox: [],
      applied: 0,
    });
  }
  return nodes;
}

function pump(nodes: Map<string, BenchNode>): void {
  for (;;) {
    let busy = false;
    for (const n of nodes.values()) {
      while (n.rn.hasReady()) {
        busy = true;
        const rd = n.rn.ready();
        for (const m of rd.messages) nodes.get(m.to)!.inbox.push(m);
        if (rd.entries.length > 0) n.s.append(rd.entries);
        if (rd.hardState) n.s.setHardState(rd.hardState);
        for (const m of rd.persistedMessages) nodes.get(m.to)!.inbox.push(m);
        n.applied += rd.committedEntries.length;
        n.rn.advance(rd);
      }
    }
    for (const n of nodes.values()) {
      if (n.inbox.length === 0) continue;
      busy = true;
      const msgs = n.inbox;
      n.inbox = [];
      for (const m of msgs) n.rn.step(m);
    }
    if (!busy) return;
  }
}

function run(batch: number, seconds: number): { perSec: number; entries: number } {
  const nodes = makeCluster();
  const leader = nodes.get('n1')!;
  leader.rn.campaign();
  pump(nodes);
  const payloads = Array.from({ length: batch }, () => new Uint8Array(PAYLOAD).fill(7));
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  const base = leader.applied;
  let i = 0;
  for (;;) {
    leader.rn.proposeBatch(payloads);
    pump(nodes);
    // Keep memory flat: compact the logs behind what everyone applied.
    if (++i % 64 === 0) {
      const upTo = Math.min(...[...nodes.values()].map((n) => n.rn.raft.log.applied));
      for (const n of nodes.values()) n.s.compact(upTo);
      if (process.hrtime.bigint() > deadline) break;
    }
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const entries = leader.applied - base;
  return { perSec: entries / secs, entries };
}

/** The leader's share: time spent in the leader's step/ready/advance per entry. */
function leaderPath(batch: number, rounds: number): number {
  const nodes = makeCluster();
  const leader = nodes.get('n1')!;
  leader.rn.campaign();
  pump(nodes);
  const payloads = Array.from({ length: batch }, () => new Uint8Array(PAYLOAD).fill(7));
  let ns = 0n;
  for (let r = 0; r < rounds; r++) {
    let t = process.hrtime.bigint();
    leader.rn.proposeBatch(payloads);
    ns += process.hrtime.bigint() - t;
    // Followers run outside the measured window; the leader's steps inside it.
    for (;;) {
      let busy = false;
      for (const n of nodes.values()) {
        while (n.rn.hasReady()) {
          busy = true;
          t = process.hrtime.bigint();
          const rd = n.rn.ready();
          if (n === leader) ns += process.hrtime.bigint() - t;
          for (const m of rd.messages) nodes.get(m.to)!.inbox.push(m);
          if (rd.entries.length > 0) n.s.append(rd.entries);
          if (rd.hardState) n.s.setHardState(rd.hardState);
          for (const m of rd.persistedMessages) nodes.get(m.to)!.inbox.push(m);
          t = process.hrtime.bigint();
          n.rn.advance(rd);
          if (n === leader) ns += process.hrtime.bigint() - t;
        }
      }
      for (const n of nodes.values()) {
        if (n.inbox.length === 0) continue;
        busy = true;
        const msgs = n.inbox;
        n.inbox = [];
        t = process.hrtime.bigint();
        for (const m of msgs) n.rn.step(m);
        if (n === leader) ns += process.hrtime.bigint() - t;
      }
      if (!busy) break;
    }
    if (r % 64 === 63) {
      const upTo = Math.min(...[...nodes.values()].map((n) => n.rn.raft.log.applied));
      for (const n of nodes.values()) n.s.compact(upTo);
    }
  }
  return Number(ns) / (batch * rounds);
}

const seconds = Number(process.env['BENCH_SECONDS'] ?? 3);
console.log(
  `bench:core — 3 in-memory nodes, ${PAYLOAD}-byte proposals, ${seconds}s per row (node ${process.version})`,
);
console.log('batch  committed entries/s  entries');
run(64, 1); // warm-up
for (const batch of [1, 16, 256, 1024]) {
  const r = run(batch, seconds);
  console.log(
    `${String(batch).padStart(5)}  ${Math.round(r.perSec).toLocaleString('en-US').padStart(19)}  ${r.entries}`,
  );
}
const ns = leaderPath(256, 2000);
console.log(`leader step path: ${ns.toFixed(0)} ns/entry (batch 256)`);
