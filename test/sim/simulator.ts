import { isRaftError } from '../../src/errors.js';
import type { RaftBugs } from '../../src/core/raft.js';
import { describeEntry, describeMessage } from '../../src/core/describe.js';
import type { ConfState, Entry, Message, NodeId, Snapshot } from '../../src/core/messages.js';
import { EMPTY_CONF } from '../../src/core/messages.js';
import {
  allMembers,
  applyConfChange,
  decodeConfChange,
  encodeConfChange,
} from '../../src/core/membership.js';
import type { ConfChange, ConfChangeItem } from '../../src/core/messages.js';
import { SeededRand } from '../../src/core/rand.js';
import { RawNode } from '../../src/core/raw-node.js';
import type { Ready } from '../../src/core/ready.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { StorageUpdate } from '../../src/storage/storage.js';
import { allInvariants, type Invariant } from './invariants/index.js';
import { HASH0, decodeSimSnapshot, digest, encodeSimSnapshot } from './state-digest.js';

/**
 * The deterministic cluster simulator (DESIGN.md "Testing"). One seed decides everything:
 * the cluster's shape and configuration, the network's faults, crashes, client load, and
 * every interleaving. N in-memory nodes run over a network that drops, delays, duplicates
 * and reorders messages and makes and heals partitions (including one-way ones); nodes crash
 * and restart with exactly what they had persisted. The Figure 3 properties are checked
 * after every step (invariants/), then a liveness phase heals everything and requires a
 * leader and fresh commits within a bounded number of ticks.
 */

/** Time is counted in steps; a tick happens every TICK steps. */
const TICK = 10;

export interface SimOptions {
  readonly seed: number;
  /** Cluster size; default chosen by the seed among 3, 5, 7. */
  readonly nodes?: number;
  /** Ticks of chaos (safety phase). Default 300. */
  readonly ticks?: number;
  /** Ticks allowed for recovery after healing (liveness phase). Default 300. */
  readonly livenessTicks?: number;
  /** Print every event. */
  readonly trace?: boolean;
  /** Deliberate bugs to switch on (to prove the checks have teeth). @internal */
  readonly bugs?: RaftBugs;
  /**
   * A deliberate bug in the simulated application: its snapshots record the state from before
   * the last applied entry (a snapshot not taken at the applied index). @internal
   */
  readonly staleSnapshots?: boolean;
  /** Called with every batch a node makes durable (to mirror it into another store). */
  readonly onPersist?: (node: NodeId, update: StorageUpdate) => void;
  /** Called when a node takes a snapshot and compacts its log (to mirror it into another store). */
  readonly onCompact?: (node: NodeId, snapshot: Snapshot, compactTo: number) => void;
  /** Pin parts of the seed-drawn profile (e.g. a hostile one for the teeth tests). */
  readonly profile?: Partial<SimProfile>;
}

/** The knobs a seed draws: cluster configuration and fault rates. */
export interface SimProfile {
  preVote: boolean;
  checkQuorum: boolean;
  electionTicks: number;
  heartbeatTicks: number;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
  dropRate: number;
  dupRate: number;
  maxDelay: number;
  crashRate: number;
  partitionRate: number;
  proposeRate: number;
  readRate: number;
  /** Probability per step that the leader proposes a random membership change. */
  membershipRate: number;
  /** Servers that start outside the configuration (candidates for adding). */
  spares: number;
  /** §7: a node snapshots its state machine every this many applied entries (0: never). */
  snapshotEvery: number;
  /** Commit propagation with the next append or tick (`lazyCommit`) instead of at once. */
  lazyCommit: boolean;
  /** Entries kept in the log below a snapshot (the catch-up margin). */
  snapshotMargin: number;
  /**
   * One founder crashes when the run starts and stays down until the liveness phase, which
   * it can only pass by catching up (through a snapshot when the log was compacted past it).
   */
  longCrash: boolean;
}

export interface SimFailure {
  readonly step: number;
  readonly invariant: string;
  readonly section: string;
  readonly detail: string;
}

export interface SimResult {
  readonly seed: number;
  readonly shape: string;
  readonly failure?: SimFailure;
  readonly stats: {
    steps: number;
    leaders: number;
    committed: number;
    reads: number;
    crashes: number;
    /** Snapshots taken / installed from a leader, over all nodes. */
    snapshots: number;
    installs: number;
  };
  /** The node kept down through the safety phase (profile `longCrash`), and its installs. */
  readonly longCrashed?: { readonly id: NodeId; readonly installs: number };
}

interface InFlight {
  readonly at: number;
  readonly m: Message;
  /**
   * Not a delivery but the transport's verdict on a snapshot message sent by `m.from`:
   * delivered (`ok`) or lost (a real transport reports it; the leader retries on failure).
   */
  readonly report?: { readonly ok: boolean };
}

export interface SimNode {
  readonly id: NodeId;
  rn: RawNode;
  readonly storage: MemoryStorage;
  up: boolean;
  /** A Ready taken but not yet persisted; lost on crash. */
  pending: { rd: Ready; at: number } | undefined;
  /** The state machine: applied entries' data by index (a register log). */
  appliedIndex: number;
  /** Reads in flight: context → newest acknowledged write when the read began. */
  reads: Map<string, number>;
  /** Proposals this node made as leader: index → data, acknowledged once applied here. */
  proposals: Map<number, string>;
  /** Clock rate jitter: this node skips a tick with this probability. */
  readonly skew: number;
  /** Digest of the state machine: a hash chained over every applied entry (a snapshot holds it). */
  hash: number;
  /** Membership as of the applied index (recorded in snapshots). */
  appliedConf: ConfState;
  /** Index of the newest snapshot this node took or installed. */
  snapIndex: number;
  /** Snapshots this node installed from a leader. */
  installs: number;
  /** The digest before the last applied entry (for the `staleSnapshots` bug). */
  prevHash: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Formats a seed the way failures print it. */
export function formatSeed(seed: number): string {
  return `0x${(seed >>> 0).toString(16).padStart(8, '0')}`;
}

export class Simulator {
  readonly rand: SeededRand;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly ids: NodeId[];
  private net: InFlight[] = [];
  private cut = new Set<string>();
  private now = 0;
  private readonly invariants: Invariant[] = allInvariants();
  private failure: SimFailure | undefined;
  /** The newest write acknowledged to a client (its log index). */
  ackedIndex = 0;
  private seq = 0;
  private readonly trace: boolean;
  readonly shape: string;
  private readonly stats = {
    steps: 0,
    leaders: 0,
    committed: 0,
    reads: 0,
    crashes: 0,
    snapshots: 0,
    installs: 0,
  };
  private readonly snapshotEvery: number;
  private readonly snapshotMargin: number;
  /** The node kept down through the safety phase, if any. */
  private readonly longCrashed: NodeId | undefined;
  // Fault profile, drawn from the seed.
  private readonly dropRate: number;
  private readonly dupRate: number;
  private readonly maxDelay: number;
  private readonly crashRate: number;
  private readonly partitionRate: number;
  private readonly proposeRate: number;
  private readonly readRate: number;
  private readonly membershipRate: number;
  private healed = false;

  constructor(readonly opts: SimOptions) {
    this.rand = new SeededRand(opts.seed);
    const r = this.rand;
    this.trace = opts.trace === true;
    const n = opts.nodes ?? [3, 5, 7][r.intn(3)]!;
    this.ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    const drawn: SimProfile = {
      preVote: r.float() < 0.8,
      checkQuorum: r.float() < 0.8,
      electionTicks: 10 + r.intn(10),
      heartbeatTicks: 1 + r.intn(3),
      maxInflightMsgs: [1, 4, 256][r.intn(3)]!,
      maxSizePerMsg: [64, 1024, 1 << 20][r.intn(3)]!,
      dropRate: [0, 0.01, 0.05, 0.2][r.intn(4)]!,
      dupRate: [0, 0.01, 0.05][r.intn(3)]!,
      maxDelay: [2, 10, 30, 80][r.intn(4)]!,
      crashRate: [0, 0.0005, 0.002][r.intn(3)]!,
      partitionRate: [0, 0.001, 0.005][r.intn(3)]!,
      proposeRate: [0.01, 0.05, 0.2][r.intn(3)]!,
      readRate: [0, 0.01, 0.05][r.intn(3)]!,
      membershipRate: [0, 0.001, 0.005][r.intn(3)]!,
      spares: 0,
      snapshotEvery: 0,
      snapshotMargin: 0,
      longCrash: false,
      lazyCommit: false,
    };
    if (drawn.membershipRate > 0) drawn.spares = r.intn(Math.min(3, n - 1) + 1);
    // Compaction knobs come from a generator of their own, so that every other draw (and so
    // every seed's run when compaction is off) stays what it was before they existed.
    const rc = new SeededRand((opts.seed ^ 0x5afe5eed) >>> 0);
    drawn.snapshotEvery = [0, 0, 5, 20, 60][rc.intn(5)]!;
    drawn.snapshotMargin = [0, 3, 15][rc.intn(3)]!;
    drawn.longCrash = drawn.snapshotEvery > 0 && rc.float() < 0.15;
    drawn.lazyCommit = new SeededRand((opts.seed ^ 0x1a2ec0de) >>> 0).float() < 0.5;
    const p: SimProfile = { ...drawn, ...opts.profile };
    const {
      preVote,
      checkQuorum,
      electionTicks,
      heartbeatTicks,
      maxInflightMsgs,
      maxSizePerMsg,
      lazyCommit,
    } = p;
    this.dropRate = p.dropRate;
    this.dupRate = p.dupRate;
    this.maxDelay = p.maxDelay;
    this.crashRate = p.crashRate;
    this.partitionRate = p.partitionRate;
    this.proposeRate = p.proposeRate;
    this.readRate = p.readRate;
    this.membershipRate = p.membershipRate;
    this.snapshotEvery = p.snapshotEvery;
    this.snapshotMargin = p.snapshotMargin;
    this.shape =
      `nodes=${n} prevote=${preVote} checkquorum=${checkQuorum} election=${electionTicks} heartbeat=${heartbeatTicks} ` +
      `inflight=${maxInflightMsgs} msgbytes=${maxSizePerMsg} drop=${this.dropRate} dup=${this.dupRate} ` +
      `delay=${this.maxDelay} crash=${this.crashRate} partition=${this.partitionRate} ` +
      `membership=${this.membershipRate} spares=${p.spares} ` +
      `snapshot=${this.snapshotEvery}/${this.snapshotMargin}${p.longCrash ? ' longcrash' : ''} lazycommit=${lazyCommit}`;
    // The founding voters bootstrap the log with one membership entry (as RaftNode does);
    // spares start empty and learn everything from the log once added.
    const founders = this.ids.slice(0, n - p.spares);
    this.longCrashed = p.longCrash ? founders[founders.length - 1] : undefined;
    const boot: Entry = {
      term: 1,
      index: 1,
      type: 'conf',
      data: encodeConfChange({ changes: founders.map((node) => ({ op: 'add-voter' as const, node })) }),
    };
    for (const id of this.ids) {
      const founder = founders.includes(id);
      const storage = new MemoryStorage(
        founder ? { hardState: { term: 1, vote: undefined, commit: 1 }, entries: [boot] } : {},
      );
      const node: SimNode = {
        id,
        rn: undefined as unknown as RawNode,
        storage,
        up: true,
        pending: undefined,
        appliedIndex: 0,
        reads: new Map(),
        proposals: new Map(),
        skew: r.float() < 0.3 ? r.float() * 0.1 : 0,
        hash: HASH0,
        appliedConf: EMPTY_CONF,
        snapIndex: 0,
        installs: 0,
        prevHash: HASH0,
      };
      this.nodes.set(id, node);
      this.start(node, {
        preVote,
        checkQuorum,
        electionTicks,
        heartbeatTicks,
        maxInflightMsgs,
        maxSizePerMsg,
        lazyCommit,
      });
    }
  }

  private cfgs = new Map<NodeId, object>();

  private start(n: SimNode, cfg?: object): void {
    if (cfg) this.cfgs.set(n.id, cfg);
    const c = this.cfgs.get(n.id)!;
    const seed = this.rand.nextUint32();
    // The state machine restarts from the latest snapshot (its digest) and re-applies the rest.
    const snap = n.storage.snapshot();
    n.rn = new RawNode({
      id: n.id,
      storage: n.storage,
      rand: new SeededRand(seed),
      ...c,
      applied: snap.meta.index,
    });
    if (this.opts.bugs) n.rn.raft.bugs = this.opts.bugs;
    n.up = true;
    n.pending = undefined;
    n.appliedIndex = snap.meta.index;
    n.hash = snap.meta.index > 0 ? decodeSimSnapshot(snap.data).hash : HASH0;
    n.appliedConf = snap.meta.index > 0 ? snap.meta.conf : EMPTY_CONF;
    n.snapIndex = snap.meta.index;
    n.reads.clear();
    n.proposals.clear();
  }

  node(id: NodeId): SimNode {
    return this.nodes.get(id)!;
  }

  live(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.nodes.values()) if (n.up) out.push(n);
    return out;
  }

  private log(s: string): void {
    if (this.trace) console.log(`[${this.now}] ${s}`);
  }

  private fail(inv: { name: string; section: string }, detail: string): void {
    if (!this.failure) this.failure = { step: this.now, invariant: inv.name, section: inv.section, detail };
  }

  // ------------------------------------------------------------------ network

  private send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (this.cut.has(`${m.from}>${m.to}`)) {
        if (this.trace) this.log(`drop(partition) ${describeMessage(m)}`);
        this.snapshotLost(m);
        continue;
      }
      if (!this.healed && this.rand.float() < this.dropRate) {
        if (this.trace) this.log(`drop ${describeMessage(m)}`);
        this.snapshotLost(m);
        continue;
      }
      const copies = !this.healed && this.rand.float() < this.dupRate ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        const delay = 1 + this.rand.intn(this.healed ? 3 : this.maxDelay);
        this.net.push({ at: this.now + delay, m });
      }
    }
  }

  /** A lost snapshot message is reported to its sender a little later (as a broken stream). */
  private snapshotLost(m: Message): void {
    if (m.type !== 'snap') return;
    this.net.push({
      at: this.now + 1 + this.rand.intn(this.healed ? 3 : this.maxDelay),
      m,
      report: { ok: false },
    });
  }

  private deliverDue(): void {
    if (this.net.length === 0) return;
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const f of this.net) (f.at <= this.now ? due : rest).push(f);
    if (due.length === 0) return;
    this.net = rest;
    // Messages due at the same step arrive in a random order (reordering).
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.rand.intn(i + 1);
      const t = due[i]!;
      due[i] = due[j]!;
      due[j] = t;
    }
    for (const { m, report } of due) {
      if (report !== undefined) {
        const sender = this.nodes.get(m.from);
        if (sender?.up === true) sender.rn.reportSnapshot(m.to, report.ok);
        continue;
      }
      const n = this.nodes.get(m.to);
      if (!n || !n.up) {
        this.snapshotLost(m);
        continue;
      }
      if (this.trace) this.log(`recv ${describeMessage(m)}`);
      n.rn.step(m);
      if (m.type === 'snap') this.net.push({ at: this.now + 1, m, report: { ok: true } });
    }
  }

  // ------------------------------------------------------------------ nodes

  /** Takes a Ready if none is outstanding; persists the outstanding one once its write "completes". */
  private driveNode(n: SimNode): void {
    if (!n.up) return;
    if (n.pending && n.pending.at <= this.now) {
      const { rd } = n.pending;
      n.pending = undefined;
      this.persistAndApply(n, rd);
    }
    if (!n.pending && n.rn.hasReady()) {
      const rd = n.rn.ready();
      if (rd.softState && this.trace) this.log(`${n.id} is ${rd.softState.role} term=${n.rn.raft.term}`);
      if (rd.softState?.role === 'leader') this.stats.leaders++;
      // Messages that may leave before the write completes do so now.
      this.send(rd.messages);
      const mustWait = rd.mustSync || rd.entries.length > 0 || rd.snapshot !== undefined;
      if (mustWait) n.pending = { rd, at: this.now + this.rand.intn(4) };
      else this.persistAndApply(n, rd);
    }
  }

  private persistAndApply(n: SimNode, rd: Ready): void {
    const s = n.storage;
    if (rd.snapshot) s.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      s.append(rd.entries);
      for (const inv of this.invariants) {
        const v = inv.onPersisted?.(this, n.id, rd.entries);
        if (v) this.fail(inv, v);
      }
    }
    if (rd.hardState) s.setHardState(rd.hardState);
    this.opts.onPersist?.(n.id, { hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
    this.send(rd.persistedMessages);
    if (rd.snapshot) {
      // §7: the state machine is reset to the snapshot's contents.
      const sn = rd.snapshot;
      n.appliedIndex = sn.meta.index;
      n.hash = decodeSimSnapshot(sn.data).hash;
      n.appliedConf = sn.meta.conf;
      n.snapIndex = sn.meta.index;
      n.installs++;
      this.stats.installs++;
      if (this.trace) this.log(`${n.id} INSTALL snapshot ${sn.meta.term}/${sn.meta.index}`);
      for (const inv of this.invariants) {
        const v = inv.onSnapshot?.(this, n.id, sn, 'installed');
        if (v) this.fail(inv, v);
      }
    }
    for (const e of rd.committedEntries) this.apply(n, e);
    this.maybeSnapshot(n);
    for (const rs of rd.readStates) {
      const ctx = dec.decode(rs.context);
      const acked = n.reads.get(ctx);
      if (acked === undefined) continue;
      n.reads.delete(ctx);
      this.stats.reads++;
      for (const inv of this.invariants) {
        const v = inv.onRead?.(this, n.id, rs.index, acked);
        if (v) this.fail(inv, v);
      }
    }
    n.rn.advance(rd);
  }

  /** §7: snapshot the state machine at the applied index and compact, keeping the margin. */
  private maybeSnapshot(n: SimNode): void {
    if (this.snapshotEvery === 0 || n.appliedIndex - n.snapIndex < this.snapshotEvery) return;
    const s = n.storage;
    const index = n.appliedIndex;
    const snap: Snapshot = {
      meta: { index, term: s.term(index), conf: n.appliedConf },
      data: encodeSimSnapshot(index, this.opts.staleSnapshots === true ? n.prevHash : n.hash),
    };
    const compactTo = Math.max(0, index - this.snapshotMargin);
    s.createSnapshot(snap, compactTo);
    this.opts.onCompact?.(n.id, snap, compactTo);
    n.snapIndex = index;
    this.stats.snapshots++;
    if (this.trace) this.log(`${n.id} SNAPSHOT ${snap.meta.term}/${index} compact to ${compactTo}`);
    for (const inv of this.invariants) {
      const v = inv.onSnapshot?.(this, n.id, snap, 'taken');
      if (v) this.fail(inv, v);
    }
  }

  private apply(n: SimNode, e: Entry): void {
    if (this.trace) this.log(`${n.id} apply ${describeEntry(e)}`);
    n.appliedIndex = e.index;
    n.prevHash = n.hash;
    n.hash = digest(n.hash, e);
    if (e.type === 'conf') {
      try {
        n.appliedConf = applyConfChange(n.appliedConf, decodeConfChange(e.data));
      } catch {
        // an inapplicable change is a no-op everywhere
      }
    }
    if (e.index > this.stats.committed) this.stats.committed = e.index;
    for (const inv of this.invariants) {
      const v = inv.onApplied?.(this, n.id, e);
      if (v) this.fail(inv, v);
    }
    const mine = n.proposals.get(e.index);
    if (mine !== undefined) {
      n.proposals.delete(e.index);
      // Acknowledged only if what was applied is what we proposed there.
      if (dec.decode(e.data) === mine && e.index > this.ackedIndex) this.ackedIndex = e.index;
    }
  }

  private crash(n: SimNode): void {
    this.log(`${n.id} CRASH`);
    this.stats.crashes++;
    n.up = false;
    n.pending = undefined; // an unfinished write is lost
  }

  private restart(n: SimNode): void {
    this.log(`${n.id} RESTART`);
    this.start(n);
  }

  // ------------------------------------------------------------------ faults and clients

  private randomPartition(): void {
    this.cut.clear();
    const kind = this.rand.intn(4);
    const ids = this.ids;
    if (kind === 0) {
      // Isolate one node (often the leader).
      const leader = this.live().find((n) => n.rn.raft.role === 'leader');
      const victim = leader && this.rand.float() < 0.5 ? leader.id : ids[this.rand.intn(ids.length)]!;
      for (const o of ids) if (o !== victim) this.cut.add(`${victim}>${o}`).add(`${o}>${victim}`);
      this.log(`PARTITION isolate ${victim}`);
    } else if (kind === 1) {
      // Random split into two sides.
      const side = new Set(ids.filter(() => this.rand.float() < 0.5));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.cut.add(`${a}>${b}`);
      this.log(`PARTITION split ${[...side].join(',')} | rest`);
    } else if (kind === 2) {
      // Bridge: two sides that only one node connects.
      const bridge = ids[this.rand.intn(ids.length)]!;
      const others = ids.filter((x) => x !== bridge);
      const side = new Set(others.slice(0, others.length >> 1));
      for (const a of others)
        for (const b of others) if (side.has(a) !== side.has(b)) this.cut.add(`${a}>${b}`);
      this.log(`PARTITION bridge via ${bridge}`);
    } else {
      // One-way cuts.
      const k = 1 + this.rand.intn(ids.length);
      for (let i = 0; i < k; i++) {
        const a = ids[this.rand.intn(ids.length)]!;
        const b = ids[this.rand.intn(ids.length)]!;
        if (a !== b) this.cut.add(`${a}>${b}`);
      }
      this.log(`PARTITION one-way ${[...this.cut].join(' ')}`);
    }
  }

  private propose(n: SimNode): void {
    const data = `v${++this.seq}`;
    try {
      const p = n.rn.propose(enc.encode(data));
      if (p) n.proposals.set(p.index, data);
    } catch (e) {
      if (!isRaftError(e)) throw e;
    }
  }

  private read(n: SimNode): void {
    const ctx = `r${++this.seq}`;
    try {
      n.rn.readIndex(enc.encode(ctx), { lease: this.rand.float() < 0.5 });
      n.reads.set(ctx, this.ackedIndex);
    } catch (e) {
      if (!isRaftError(e)) throw e;
    }
  }

  /** The leader proposes a random membership change (simple or joint). */
  private changeMembership(): void {
    const leader = this.live().find((n) => n.rn.raft.role === 'leader');
    if (!leader) return;
    const r = this.rand;
    const conf = leader.rn.raft.currentConf();
    const members = allMembers(conf);
    const outsiders = this.ids.filter((id) => !members.includes(id));
    const pick = <T>(xs: readonly T[]): T | undefined =>
      xs.length === 0 ? undefined : xs[r.intn(xs.length)];
    const one = (): ConfChangeItem | undefined => {
      switch (r.intn(4)) {
        case 0: {
          const x = pick(outsiders);
          return x ? { op: 'add-learner', node: x } : undefined;
        }
        case 1: {
          const x = pick([...conf.learners, ...outsiders]);
          return x ? { op: 'add-voter', node: x } : undefined;
        }
        case 2: {
          const x = pick(members);
          return x ? { op: 'remove', node: x } : undefined;
        }
        default: {
          const x = pick(conf.voters);
          return x ? { op: 'add-learner', node: x } : undefined;
        }
      }
    };
    let cc: ConfChange;
    if (r.float() < 0.3) {
      const items = [one(), one()].filter((x): x is ConfChangeItem => x !== undefined);
      const seen = new Set<string>();
      cc = { changes: items.filter((i) => !seen.has(i.node) && seen.add(i.node)), joint: true };
    } else {
      const item = one();
      if (!item) return;
      cc = { changes: [item] };
    }
    if (cc.changes.length === 0) return;
    try {
      leader.rn.proposeConfChange(cc);
      this.log(
        `${leader.id} CONF ${cc.joint ? 'joint ' : ''}${cc.changes.map((c) => `${c.op} ${c.node}`).join(', ')}`,
      );
    } catch (e) {
      if (!isRaftError(e)) throw e;
    }
  }

  // ------------------------------------------------------------------ the run

  private step(chaos: boolean): void {
    this.now++;
    this.stats.steps++;
    if (this.now % TICK === 0) {
      for (const n of this.nodes.values()) {
        if (!n.up) continue;
        if (chaos && n.skew > 0 && this.rand.float() < n.skew) continue;
        n.rn.tick();
      }
    }
    this.deliverDue();
    for (const n of this.nodes.values()) this.driveNode(n);
    if (chaos) {
      const r = this.rand;
      for (const n of this.nodes.values()) {
        if (n.up && r.float() < this.crashRate) this.crash(n);
        else if (!n.up && n.id !== this.longCrashed && r.float() < 0.01) this.restart(n);
      }
      if (r.float() < this.partitionRate) this.randomPartition();
      else if (this.cut.size > 0 && r.float() < this.partitionRate * 2) {
        this.cut.clear();
        this.log('HEAL');
      }
    }
    if (this.rand.float() < this.proposeRate) {
      const live = this.live();
      const leader = live.find((n) => n.rn.raft.role === 'leader');
      const target =
        leader && this.rand.float() < 0.8 ? leader : live[this.rand.intn(Math.max(1, live.length))];
      if (target) this.propose(target);
    }
    if (chaos && this.rand.float() < this.membershipRate) this.changeMembership();
    if (this.rand.float() < this.readRate) {
      const live = this.live();
      const target = live[this.rand.intn(Math.max(1, live.length))];
      if (target) this.read(target);
    }
    for (const inv of this.invariants) {
      const v = inv.afterStep?.(this);
      if (v) this.fail(inv, v);
    }
  }

  /** Runs the safety phase, then the liveness phase. */
  run(): SimResult {
    const ticks = this.opts.ticks ?? 300;
    if (this.longCrashed !== undefined) this.crash(this.node(this.longCrashed));
    for (let i = 0; i < ticks * TICK && !this.failure; i++) this.step(true);
    if (!this.failure) this.liveness();
    const base = {
      seed: this.opts.seed,
      shape: this.shape,
      stats: this.stats,
      ...(this.longCrashed !== undefined
        ? { longCrashed: { id: this.longCrashed, installs: this.node(this.longCrashed).installs } }
        : {}),
    };
    return this.failure ? { ...base, failure: this.failure } : base;
  }

  private liveness(): void {
    this.log('LIVENESS: heal everything');
    this.healed = true;
    this.cut.clear();
    for (const n of this.nodes.values()) if (!n.up) this.restart(n);
    const limit = (this.opts.livenessTicks ?? 300) * TICK;
    const start = this.now;
    let probe: { node: SimNode; index: number; data: string } | undefined;
    while (this.now - start < limit && !this.failure) {
      this.step(false);
      const leader = this.live().find((n) => n.rn.raft.role === 'leader');
      if (!leader) continue;
      if (!probe || probe.node !== leader || leader.rn.raft.term !== this.termOf(probe)) {
        const data = `probe${++this.seq}`;
        try {
          const p = leader.rn.propose(enc.encode(data));
          if (p) {
            probe = { node: leader, index: p.index, data };
            this.probeTerm = p.term;
          }
        } catch (e) {
          if (!isRaftError(e)) throw e;
        }
        continue;
      }
      // Done when every member of the leader's configuration applied the probe.
      const members = allMembers(leader.rn.raft.currentConf());
      if (members.every((id) => this.node(id).appliedIndex >= probe!.index)) return;
    }
    if (!this.failure) {
      const state = [...this.nodes.values()]
        .map((n) => {
          const s = n.rn.status();
          return `${n.id} ${s.role} term=${s.term} commit=${s.commit} applied=${n.appliedIndex} last=${s.lastIndex}`;
        })
        .join('; ');
      this.fail(
        { name: 'liveness', section: '§5.2' },
        `no leader committed a new entry on every node within ${limit / TICK} ticks after healing: ${state}`,
      );
    }
  }

  private probeTerm = 0;
  private termOf(_p: { node: SimNode }): number {
    return this.probeTerm;
  }
}

/**
 * A profile that makes the paper's Figure 8 likely: three servers, no PreVote, tiny
 * messages and windows, lossy slow links and frequent crashes.
 */
export const HOSTILE: Partial<SimProfile> = {
  preVote: false,
  maxInflightMsgs: 1,
  maxSizePerMsg: 64,
  dropRate: 0.2,
  maxDelay: 80,
  crashRate: 0.002,
  partitionRate: 0.005,
  proposeRate: 0.2,
};

/** Runs one seed. */
export function simulate(opts: SimOptions): SimResult {
  return new Simulator(opts).run();
}

/** The failure report STYLE.md convention 13 asks for. */
export function formatFailure(r: SimResult): string {
  const f = r.failure!;
  return (
    `seed ${formatSeed(r.seed)} FAILED at step ${f.step}: ${f.invariant} (${f.section})\n` +
    `  ${f.detail}\n` +
    `  shape: ${r.shape}\n` +
    `  replay: npm run sim -- --seed ${formatSeed(r.seed)} --trace`
  );
}
