import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { NodeId } from '../../../src/core/messages.js';
import { encodeCommand } from '../../../src/kv/commands.js';
import { KvStateMachine, type KvResult } from '../../../src/kv/state.js';
import { RaftNode, type NodeOptions } from '../../../src/node/node.js';
import { FileStorage } from '../../../src/storage/file-storage.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import type { Storage } from '../../../src/storage/storage.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';
import { TcpTransport } from '../../../src/transport/tcp-transport.js';
import type { Transport } from '../../../src/transport/transport.js';
import { tmpDirs } from '../../support/tmp-dirs.js';

/**
 * §7 end to end at the node runtime: automatic and manual snapshots with compaction, a
 * follower that was away catching up through a snapshot, a brand-new member joining a
 * compacted cluster over TCP, restart from snapshot plus log suffix, and writes that keep
 * flowing while a large snapshot is taken.
 */

const enc = new TextEncoder();
const dirs = tmpDirs('snapnode');
afterAll(() => dirs.cleanup());

interface Member {
  id: NodeId;
  node: RaftNode<KvResult>;
  sm: KvStateMachine;
  storage: Storage;
}

let running: Member[] = [];
afterEach(async () => {
  await Promise.all(running.map((m) => m.node.stop().catch(() => undefined)));
  running = [];
});

const put = (key: string, value: string): Uint8Array =>
  encodeCommand({
    op: 'put',
    time: Date.now(),
    clientId: '',
    seq: 0,
    prevIndex: -1,
    key,
    value: enc.encode(value),
  });

async function until<T>(f: () => T | undefined | false, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function start(
  id: NodeId,
  storage: Storage,
  transport: Transport,
  extra: Partial<NodeOptions<KvResult>> = {},
): Promise<Member> {
  const sm = new KvStateMachine();
  const node = await RaftNode.start<KvResult>({
    id,
    storage,
    transport,
    stateMachine: sm,
    tickMs: 5,
    raft: { electionTicks: 20, heartbeatTicks: 2 },
    timeoutMs: 5000,
    ...extra,
  });
  const m = { id, node, sm, storage };
  running.push(m);
  return m;
}

const leaderOf = (ms: Member[]): Member | undefined => ms.find((m) => m.node.isLeader());

/** The durable state of a stopped node's memory storage, as a restart finds it. */
const reopen = (s: Storage): MemoryStorage => MemoryStorage.from((s as MemoryStorage).dump());

/** Proposes `n` puts through the leader, `parallel` at a time. */
async function write(ms: Member[], n: number, prefix: string, parallel = 64, size = 16): Promise<void> {
  let next = 0;
  const pad = 'x'.repeat(size);
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      for (;;) {
        const l = leaderOf(ms);
        if (l === undefined) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        try {
          await l.node.propose(put(`${prefix}${i}`, `${i}${pad}`));
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

function sameState(a: KvStateMachine, b: KvStateMachine): void {
  const pa = a
    .list('', 1e9)
    .map(({ key, entry }) => [key, Buffer.from(entry.value).toString(), entry.modIndex]);
  const pb = b
    .list('', 1e9)
    .map(({ key, entry }) => [key, Buffer.from(entry.value).toString(), entry.modIndex]);
  expect(pb.length).toBe(pa.length);
  expect(pb).toEqual(pa);
}

describe('§7 at the node: taking snapshots', () => {
  it('the policy takes snapshots every N applied entries and compacts the log, keeping the catch-up margin', async () => {
    const net = new MemoryNetwork();
    const ids = ['n1', 'n2', 'n3'];
    const ms: Member[] = [];
    for (const id of ids) {
      ms.push(
        await start(id, new MemoryStorage(), net.transport(id), {
          initialMembers: ids,
          snapshot: { entries: 100, catchUpEntries: 30 },
        }),
      );
    }
    await until(() => leaderOf(ms), 'a leader');
    await write(ms, 450, 'k');
    for (const m of ms) {
      await until(() => m.node.appliedIndex() >= leaderOf(ms)!.node.status().commit, `${m.id} applied`);
      await until(
        () => !m.node.snapshotStatus().taking && m.node.snapshotStatus().taken >= 3,
        `${m.id} snapshots`,
      );
      const st = m.node.snapshotStatus();
      expect(st.index).toBeGreaterThanOrEqual(300);
      expect(m.storage.snapshot().meta.index).toBe(st.index);
      // Compacted up to the margin below the snapshot, not further.
      expect(m.storage.firstIndex()).toBe(st.index - 30 + 1);
      expect(st.entriesSince).toBeLessThan(100 + 50);
    }
    sameState(ms[0]!.sm, ms[1]!.sm);
    sameState(ms[0]!.sm, ms[2]!.sm);
  });

  it('RaftNode.snapshot() takes one now and resolves once durable; with nothing new it returns the current one', async () => {
    const net = new MemoryNetwork();
    const m = await start('n1', new MemoryStorage(), net.transport('n1'), {
      initialMembers: ['n1'],
      snapshot: { entries: 0, catchUpEntries: 0 },
    });
    await until(() => m.node.isLeader(), 'leader');
    await write([m], 20, 'a');
    const s = await m.node.snapshot();
    expect(s.index).toBe(m.node.appliedIndex());
    expect(m.storage.snapshot().meta.index).toBe(s.index);
    expect(m.storage.firstIndex()).toBe(s.index + 1);
    expect(await m.node.snapshot()).toEqual(s);
    expect(m.node.snapshotStatus().taken).toBe(1);
  });

  it('writes keep flowing while a large snapshot is taken (the state machine snapshots a copy-on-write view)', async () => {
    const dir = dirs.make();
    const storage = await FileStorage.open(dir);
    const net = new MemoryNetwork();
    const m = await start('n1', storage, net.transport('n1'), {
      initialMembers: ['n1'],
      snapshot: { entries: 0 },
    });
    await until(() => m.node.isLeader(), 'leader');
    await write([m], 60_000, 'big', 512, 200);
    // Continuous writes, timing each, while a ~14 MB snapshot is written.
    let stop = false;
    const lat: number[] = [];
    let during = 0;
    let snapshotting = false;
    const writer = async (w: number): Promise<void> => {
      let i = 0;
      while (!stop) {
        const t = performance.now();
        await m.node.propose(put(`live${w}-${i++}`, 'v'));
        const ms = performance.now() - t;
        if (snapshotting) {
          lat.push(ms);
          during++;
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await new Promise((r) => setTimeout(r, 100));
    snapshotting = true;
    const t0 = performance.now();
    const snap = await m.node.snapshot();
    const took = performance.now() - t0;
    snapshotting = false;
    stop = true;
    await Promise.all(writers);
    lat.sort((a, b) => a - b);
    const p99 = lat[Math.floor(lat.length * 0.99)] ?? 0;
    console.log(
      `snapshot of ${m.sm.size} keys at ${snap.index} took ${took.toFixed(0)} ms; ${during} writes completed meanwhile, p50 ${lat[lat.length >> 1]?.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${lat.at(-1)?.toFixed(1)} ms`,
    );
    expect(during).toBeGreaterThan(20);
    // No write waited for the whole snapshot.
    expect(lat.at(-1)!).toBeLessThan(Math.max(100, took * 0.5));
    // The snapshot holds exactly the state at its index: restore it elsewhere and compare.
    const copy = new KvStateMachine();
    await copy.restoreStream(storage.readSnapshot().chunks);
    expect(copy.appliedIndex).toBe(snap.index);
    expect(copy.size).toBeGreaterThanOrEqual(60_000);
    expect(copy.size).toBeLessThan(m.sm.size);
  });
});

describe('§7 at the node: stale snapshots', () => {
  it('a snapshot at or below the commit index is refused without its bytes, and the sender learns the commit index', async () => {
    const net = new MemoryNetwork();
    const m = await start('n1', new MemoryStorage(), net.transport('n1'), { initialMembers: ['n1'] });
    await until(() => m.node.isLeader(), 'leader');
    await write([m], 10, 'k');
    const before = m.storage.snapshot().meta.index;
    // A stale leader (term 1 < ours) streams an old snapshot to n1.
    const outcome: boolean[] = [];
    const old = net.transport('n0', { events: { onSnapshotSent: (_p, ok) => outcome.push(ok) } });
    const answers: string[] = [];
    await old.start((msg) => answers.push(`${msg.type}:${msg.type === 'app-resp' ? msg.index : ''}`));
    let pulled = 0;
    old.sendSnapshot(
      {
        type: 'snap',
        from: 'n0',
        to: 'n1',
        term: 1,
        snapshot: {
          meta: { index: 3, term: 1, conf: { voters: ['n1'], outgoing: [], learners: [], learnersNext: [] } },
          data: new Uint8Array(0),
        },
      },
      {
        size: 4,
        chunks: {
          async *[Symbol.asyncIterator]() {
            pulled++;
            yield new Uint8Array(4);
          },
        },
      },
    );
    await until(() => outcome.length === 1, 'outcome');
    expect(outcome).toEqual([false]);
    expect(pulled).toBe(0); // refused before any byte moved
    expect(m.storage.snapshot().meta.index).toBe(before);
    expect(m.node.isLeader()).toBe(true);
    await write([m], 1, 'still');
  });
});

describe('§7 at the node: catching up through a snapshot', () => {
  it('a follower stopped while the log was compacted rejoins through a snapshot; a restart afterwards uses snapshot plus log', async () => {
    const net = new MemoryNetwork();
    const ids = ['n1', 'n2', 'n3'];
    const storages = ids.map(() => new MemoryStorage());
    const opts = { initialMembers: ids, snapshot: { entries: 200, catchUpEntries: 50 } };
    const ms: Member[] = [];
    for (const [i, id] of ids.entries()) ms.push(await start(id, storages[i]!, net.transport(id), opts));
    await until(() => leaderOf(ms), 'a leader');
    await write(ms, 50, 'before');
    // Stop a follower; the others write far past its log and compact.
    const away = ms.find((m) => !m.node.isLeader())!;
    await away.node.stop();
    running = running.filter((m) => m !== away);
    const rest = ms.filter((m) => m !== away);
    await write(rest, 1000, 'while-away');
    const leader = leaderOf(rest)!;
    await until(
      () => leader.storage.firstIndex() > away.storage.lastIndex() + 1,
      'compaction past the follower',
    );
    // It comes back with what it had persisted: the entries it lacks are gone, so a snapshot it is.
    const back = await start(away.id, reopen(away.storage), net.transport(away.id), opts);
    const all = [...rest, back];
    await until(() => back.node.snapshotStatus().installed >= 1, 'snapshot installed');
    await write(all, 20, 'after');
    await until(() => back.node.appliedIndex() >= leader.node.appliedIndex(), 'caught up');
    sameState(leader.sm, back.sm);
    // Restart it: it comes up from its snapshot plus the log after it.
    await back.node.stop();
    running = running.filter((m) => m !== back);
    const again = await start(back.id, reopen(back.storage), net.transport(back.id), opts);
    expect(again.sm.size).toBeGreaterThan(0);
    expect(again.node.appliedIndex()).toBe(back.storage.snapshot().meta.index);
    await until(() => again.node.appliedIndex() >= leader.node.appliedIndex(), 'caught up after restart');
    sameState(leader.sm, again.sm);
  });

  it('a brand-new member added to a compacted cluster (TCP, file storage) catches up through a snapshot', async () => {
    const ids = ['n1', 'n2', 'n3'];
    const nodes = new Map<NodeId, RaftNode<KvResult>>();
    const transports = new Map<NodeId, TcpTransport>();
    for (const id of [...ids, 'n4']) {
      transports.set(
        id,
        new TcpTransport({
          id,
          listen: '127.0.0.1:0',
          secret: 's3cret',
          backoffMinMs: 10,
          events: {
            onSnapshotSent: (p, ok) => nodes.get(id)?.reportSnapshot(p, ok),
            onUnreachable: (p) => nodes.get(id)?.reportUnreachable(p),
          },
        }),
      );
    }
    const connect = (a: NodeId, b: NodeId): void =>
      transports.get(a)!.addPeer(b, `127.0.0.1:${transports.get(b)!.address().port}`);
    const snapshot = { entries: 500, catchUpEntries: 100 };
    const ms: Member[] = [];
    for (const id of ids) {
      const m = await start(id, await FileStorage.open(dirs.make()), transports.get(id)!, {
        initialMembers: ids,
        snapshot,
      });
      nodes.set(id, m.node);
      ms.push(m);
    }
    for (const a of ids) for (const b of ids) if (a !== b) connect(a, b);
    await until(() => leaderOf(ms), 'a leader');
    await write(ms, 1500, 'k', 64, 100);
    const leader = leaderOf(ms)!;
    await until(() => leader.storage.firstIndex() > 100, 'compacted');
    // n4 starts with an empty data directory and joins as a learner.
    const n4 = await start('n4', await FileStorage.open(dirs.make()), transports.get('n4')!, { snapshot });
    nodes.set('n4', n4.node);
    for (const id of ids) {
      connect(id, 'n4');
      connect('n4', id);
    }
    await leaderOf(ms)!.node.proposeConfChange({ changes: [{ op: 'add-learner', node: 'n4' }] });
    await until(() => n4.node.snapshotStatus().installed >= 1, 'n4 installed a snapshot', 20_000);
    await until(() => n4.node.appliedIndex() >= leaderOf(ms)!.node.appliedIndex(), 'n4 caught up', 20_000);
    sameState(leaderOf(ms)!.sm, n4.sm);
    expect(n4.storage.snapshot().meta.index).toBeGreaterThan(0);
    const sender = transports.get(leaderOf(ms)!.id)!.linkStats()['n4']!;
    expect(sender.snapshotsSent).toBeGreaterThanOrEqual(1);
    // Promote it; the cluster keeps committing with it as a voter.
    await leaderOf(ms)!.node.proposeConfChange({ changes: [{ op: 'add-voter', node: 'n4' }] });
    await write([...ms, n4], 50, 'after', 8);
    await until(() => n4.sm.get('after49') !== undefined, 'n4 applies new writes');
  });
});
