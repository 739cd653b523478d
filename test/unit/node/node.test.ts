import { afterEach, describe, expect, it } from 'vitest';
import { NotLeaderError, RaftError, isRaftError } from '../../../src/errors.js';
import { RaftNode } from '../../../src/node/node.js';
import type { Command, StateMachine } from '../../../src/node/state-machine.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import type { Storage, StorageUpdate } from '../../../src/storage/storage.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A register log: every command appended, results are the running count. */
class Recorder implements StateMachine<number> {
  applied: string[] = [];
  apply(cmds: readonly Command[]): number[] {
    return cmds.map((c) => this.applied.push(dec.decode(c.data)));
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify(this.applied));
  }
  restore(data: Uint8Array): void {
    this.applied = JSON.parse(dec.decode(data)) as string[];
  }
}

/** Counts saves, and can be told to fail like a full disk. */
class CountingStorage extends MemoryStorage {
  saves = 0;
  failWith: Error | undefined;
  override save(u: StorageUpdate): Promise<void> {
    this.saves++;
    if (this.failWith) return Promise.reject(this.failWith);
    return super.save(u);
  }
}

interface Member {
  node: RaftNode<number>;
  sm: Recorder;
  storage: CountingStorage;
}

let running: Member[] = [];

async function cluster(
  n: number,
  net = new MemoryNetwork(),
): Promise<{ members: Member[]; net: MemoryNetwork }> {
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const members: Member[] = [];
  for (const id of ids) {
    const storage = new CountingStorage();
    const sm = new Recorder();
    const node = await RaftNode.start<number>({
      id,
      storage,
      transport: net.transport(id),
      stateMachine: sm,
      initialMembers: ids,
      tickMs: 5,
      raft: { electionTicks: 10, heartbeatTicks: 1 },
      timeoutMs: 2000,
    });
    members.push({ node, sm, storage });
  }
  running = members;
  return { members, net };
}

async function until<T>(f: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const leaderOf = (ms: Member[]): Member | undefined => ms.find((m) => m.node.isLeader());

afterEach(async () => {
  await Promise.all(running.map((m) => m.node.stop()));
  running = [];
});

describe('node runtime', () => {
  it('bootstraps a new cluster, elects a leader and applies proposals on every member in order', async () => {
    const { members } = await cluster(3);
    const leader = await until(() => leaderOf(members));
    const results = await Promise.all(['a', 'b', 'c'].map((v) => leader.node.propose(enc.encode(v))));
    expect(results).toEqual([1, 2, 3]);
    for (const m of members) await until(() => m.sm.applied.length === 3);
    for (const m of members) expect(m.sm.applied).toEqual(['a', 'b', 'c']);
  });

  it('a follower refuses proposals with NotLeader and a leader hint', async () => {
    const { members } = await cluster(3);
    const leader = await until(() => leaderOf(members));
    const follower = members.find((m) => m !== leader)!;
    await until(() => follower.node.leaderId() === leader.node.id);
    const err = await follower.node.propose(enc.encode('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leaderHint).toBe(leader.node.id);
  });

  it('batches proposals that arrive while a write is in flight', async () => {
    const { members } = await cluster(3);
    const leader = await until(() => leaderOf(members));
    const before = leader.storage.saves;
    const n = 500;
    await Promise.all(Array.from({ length: n }, (_, i) => leader.node.propose(enc.encode(`v${i}`))));
    const saves = leader.storage.saves - before;
    expect(saves).toBeLessThan(n / 10);
  });

  it('linearizable reads: read() resolves once the write before it is applied locally, on leader and follower', async () => {
    const { members } = await cluster(3);
    const leader = await until(() => leaderOf(members));
    const follower = members.find((m) => m !== leader)!;
    await until(() => follower.node.leaderId() === leader.node.id);
    await leader.node.propose(enc.encode('w1'));
    const idx = await follower.node.read();
    expect(follower.sm.applied).toContain('w1');
    expect(idx).toBeGreaterThanOrEqual(2);
    await leader.node.read({ lease: true });
    expect(leader.sm.applied).toContain('w1');
  });

  it('a partitioned leader cannot serve a linearizable read (it times out), while the majority elects a new leader', async () => {
    const { members, net } = await cluster(3);
    const old = await until(() => leaderOf(members));
    net.isolate(old.node.id);
    const read = old.node.read().catch((e: unknown) => e);
    const others = members.filter((m) => m !== old);
    await until(() => others.find((m) => m.node.isLeader()));
    const r = await read;
    expect(isRaftError(r)).toBe(true);
    expect((r as RaftError).code).toBe('TIMEOUT');
  });

  it('stop() rejects pending work with STOPPED and refuses new work', async () => {
    const { members, net } = await cluster(3);
    const leader = await until(() => leaderOf(members));
    net.isolate(leader.node.id); // nothing can commit now
    const p = leader.node.propose(enc.encode('never')).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    await leader.node.stop();
    const err = await p;
    expect(isRaftError(err, 'STOPPED')).toBe(true);
    await expect(leader.node.propose(enc.encode('late'))).rejects.toMatchObject({ code: 'STOPPED' });
  });

  it('fail-stop: after a storage write fails nothing more is acknowledged', async () => {
    const { members } = await cluster(3);
    const leader = await until(() => leaderOf(members));
    await leader.node.propose(enc.encode('ok'));
    leader.storage.failWith = new RaftError('STORAGE_FAILED', 'ENOSPC: no space left on device');
    const err = await leader.node.propose(enc.encode('lost')).catch((e: unknown) => e);
    expect(isRaftError(err, 'STOPPED')).toBe(true);
    leader.storage.failWith = undefined;
    await expect(leader.node.propose(enc.encode('after'))).rejects.toMatchObject({ code: 'STOPPED' });
  });

  it('restarts from storage: state machine state is rebuilt by re-applying the log', async () => {
    const net = new MemoryNetwork();
    const storage = new CountingStorage();
    const sm = new Recorder();
    const start = (s: Storage, r: Recorder): Promise<RaftNode<number>> =>
      RaftNode.start<number>({
        id: 'solo',
        storage: s,
        transport: net.transport('solo'),
        stateMachine: r,
        initialMembers: ['solo'],
        tickMs: 5,
      });
    let node = await start(storage, sm);
    await until(() => node.isLeader() || undefined);
    await node.propose(enc.encode('p1'));
    await node.propose(enc.encode('p2'));
    await node.stop();
    // Reopen the same (persisted) state with a fresh state machine.
    const reopened = new CountingStorage(storage.dump());
    const sm2 = new Recorder();
    node = await start(reopened, sm2);
    running = [{ node, sm: sm2, storage: reopened }];
    await until(() => node.isLeader() || undefined);
    await node.read();
    expect(sm2.applied).toEqual(['p1', 'p2']);
  });
});
