import type { RaftConfig } from '../../src/core/config.js';
import { describeConf, describeEntry, describeMessage } from '../../src/core/describe.js';
import {
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Snapshot,
} from '../../src/core/messages.js';
import { SeededRand } from '../../src/core/rand.js';
import { RawNode } from '../../src/core/raw-node.js';
import type { Ready } from '../../src/core/ready.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';

/**
 * A small deterministic cluster for unit and transcript tests: nodes over an in-memory
 * network that the test steps by hand. Everything it does is printed in the compact text
 * forms of describe.ts, which is what transcripts compare.
 */
export interface TestNode {
  readonly id: NodeId;
  rn: RawNode;
  storage: MemoryStorage;
  /** Messages addressed to this node, not yet delivered. */
  inbox: Message[];
  /** Committed entries applied, in order. */
  applied: Entry[];
  readStates: { index: number; context: string }[];
  cfg: Omit<RaftConfig, 'storage' | 'id'>;
}

const dec = new TextDecoder();

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Pairs (from→to) whose messages are dropped. */
  private readonly cut = new Set<string>();
  out: string[] = [];
  /** Print message traffic (transcripts) or stay quiet (unit tests). */
  verbose = true;

  add(
    id: NodeId,
    peers: NodeId[],
    cfg: Omit<RaftConfig, 'storage' | 'id'> = {},
    storage?: MemoryStorage,
  ): TestNode {
    const s =
      storage ?? new MemoryStorage({ conf: { voters: peers, outgoing: [], learners: [], learnersNext: [] } });
    const n: TestNode = {
      id,
      rn: new RawNode({
        id,
        storage: s,
        rand: new SeededRand(id.length * 7919 + id.charCodeAt(id.length - 1)),
        ...cfg,
      }),
      storage: s,
      inbox: [],
      applied: [],
      readStates: [],
      cfg,
    };
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Restarts `id` from what its storage holds (unpersisted state is lost). */
  restart(id: NodeId): void {
    const n = this.node(id);
    n.rn = new RawNode({ id, storage: n.storage, ...n.cfg, applied: n.storage.snapshot().meta.index });
    n.inbox = [];
    n.applied = [];
  }

  partition(groups: NodeId[][]): void {
    this.cut.clear();
    for (const g of groups) {
      for (const a of g) {
        for (const h of groups) {
          if (h === g) continue;
          for (const b of h) this.cut.add(`${a}>${b}`);
        }
      }
    }
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  /** Drops messages from `a` to `b` only (asymmetric). */
  cutOneWay(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
  }

  heal(): void {
    this.cut.clear();
  }

  private print(s: string): void {
    if (this.verbose) this.out.push(s);
  }

  private sendAll(msgs: readonly Message[]): void {
    for (const m of msgs) {
      const to = this.nodes.get(m.to);
      if (!to || this.cut.has(`${m.from}>${m.to}`)) {
        this.print(`${describeMessage(m)} DROPPED`);
        continue;
      }
      this.print(describeMessage(m));
      to.inbox.push(m);
    }
  }

  /** Persists, sends and applies one Ready of `id`. Returns false if there was none. */
  processReady(id: NodeId): boolean {
    const n = this.node(id);
    if (!n.rn.hasReady()) return false;
    const rd: Ready = n.rn.ready();
    if (rd.softState) {
      const s = rd.softState;
      this.print(`${id} is ${s.role} term=${n.rn.raft.term} leader=${s.leader ?? '-'}`);
    }
    this.sendAll(rd.messages);
    persist(n.storage, rd.hardState, rd.entries, rd.snapshot);
    this.sendAll(rd.persistedMessages);
    if (rd.snapshot) {
      this.print(`${id} installed snapshot ${rd.snapshot.meta.term}/${rd.snapshot.meta.index}`);
    }
    for (const e of rd.committedEntries) {
      n.applied.push(e);
      this.print(`${id} applied ${describeEntry(e)}`);
    }
    for (const r of rd.readStates) {
      const ctx = dec.decode(r.context);
      n.readStates.push({ index: r.index, context: ctx });
      this.print(`${id} read-state index=${r.index} ctx=${ctx}`);
    }
    n.rn.advance(rd);
    return true;
  }

  /** Delivers every queued message of `id`. Returns false if there were none. */
  deliver(id: NodeId): boolean {
    const n = this.node(id);
    if (n.inbox.length === 0) return false;
    const msgs = n.inbox;
    n.inbox = [];
    for (const m of msgs) {
      try {
        n.rn.step(m);
      } catch (e) {
        this.print(`${id} step error: ${(e as Error).message}`);
      }
    }
    return true;
  }

  /**
   * Delivers only the first `count` queued messages of `id` (the rest stay queued), for
   * transcripts that need to stop between two messages of one batch.
   */
  deliverSome(id: NodeId, count: number): number {
    const n = this.node(id);
    const msgs = n.inbox.splice(0, count);
    for (const m of msgs) {
      try {
        n.rn.step(m);
      } catch (e) {
        this.print(`${id} step error: ${(e as Error).message}`);
      }
    }
    return msgs.length;
  }

  /** Drops every queued message of `id` (lost in the network). Returns how many. */
  dropInbox(id: NodeId): number {
    const n = this.node(id);
    const k = n.inbox.length;
    for (const m of n.inbox) this.print(`${describeMessage(m)} DROPPED`);
    n.inbox = [];
    return k;
  }

  /** Forgets every node and every cut (a fresh cluster within one transcript). */
  clear(): void {
    this.nodes.clear();
    this.cut.clear();
    this.out = [];
  }

  /** Processes Readys and delivers messages until the cluster is quiet. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const id of this.nodes.keys()) while (this.processReady(id)) busy = true;
      for (const id of this.nodes.keys()) if (this.deliver(id)) busy = true;
      if (!busy) return;
    }
    throw new Error('cluster did not stabilize');
  }

  /** Ticks `id` `count` times (each followed by processing its Ready when `settle`). */
  tick(id: NodeId, count: number): void {
    for (let i = 0; i < count; i++) this.node(id).rn.tick();
  }

  /** Ticks every node once per round, stabilizing after each round. */
  tickAll(count: number): void {
    for (let i = 0; i < count; i++) {
      for (const n of this.nodes.values()) n.rn.tick();
      this.stabilize();
    }
  }

  leader(): TestNode | undefined {
    for (const n of this.nodes.values()) if (n.rn.raft.role === 'leader') return n;
    return undefined;
  }

  /** `n1 leader term=2 commit=3 applied=3 last=3 voters=(n1 n2 n3)` per node. */
  state(): string {
    const lines: string[] = [];
    for (const n of this.nodes.values()) {
      const s = n.rn.status();
      lines.push(
        `${s.id} ${s.role} term=${s.term} leader=${s.leader ?? '-'} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} ${describeConf(s.conf)}`,
      );
    }
    return lines.join('\n');
  }

  /** The log of `id` as `term/index data`, one per line. */
  log(id: NodeId): string {
    const n = this.node(id);
    const l = n.rn.raft.log;
    const out: string[] = [];
    const first = l.firstIndex();
    const last = l.lastIndex();
    if (first > 1) out.push(`(snapshot ${l.term(first - 1) ?? '?'}/${first - 1})`);
    if (last >= first)
      for (const e of l.slice(first, last + 1, Number.MAX_SAFE_INTEGER)) out.push(describeEntry(e));
    return out.length === 0 ? '(empty)' : out.join('\n');
  }

  flush(): string {
    const s = this.out.join('\n');
    this.out = [];
    return s;
  }
}

/** Writes one Ready's durable part into a memory storage (the simulator's fsync). */
export function persist(
  s: MemoryStorage,
  hs: HardState | undefined,
  entries: readonly Entry[],
  snapshot: Snapshot | undefined,
): void {
  if (snapshot) s.applySnapshot(snapshot);
  if (entries.length > 0) s.append(entries);
  if (hs) s.setHardState(hs);
}
