import { NotLeaderError, RaftError, isRaftError } from '../errors.js';
import type { RaftConfig } from '../core/config.js';
import { decodeConfChange, encodeConfChange } from '../core/membership.js';
import type { ConfChange, Entry, Index, Message, NodeId, Term } from '../core/messages.js';
import { SeededRand } from '../core/rand.js';
import type { RaftBugs } from '../core/raft.js';
import { RawNode, type Status } from '../core/raw-node.js';
import type { Ready } from '../core/ready.js';
import type { Storage } from '../storage/storage.js';
import type { Transport } from '../transport/transport.js';
import { silentLogger, type Logger } from './logger.js';
import { Snapshots, type SnapshotInfo, type SnapshotPolicy, type SnapshotStatus } from './snapshots.js';
import type { Command, StateMachine } from './state-machine.js';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Options of a {@link RaftNode}. */
export interface NodeOptions<R> {
  readonly id: NodeId;
  readonly storage: Storage;
  readonly transport: Transport;
  readonly stateMachine: StateMachine<R>;
  /**
   * The voters of a brand-new cluster. When storage is empty, the node bootstraps its log
   * with one membership entry naming them (every founding member writes the same entry).
   * Ignored when storage already holds state.
   */
  readonly initialMembers?: readonly NodeId[];
  /** Milliseconds per tick. Default 50. */
  readonly tickMs?: number;
  /** Core settings. Defaults here: electionTicks 12 (0.6–1.2 s), heartbeatTicks 2 (100 ms), lazyCommit. */
  readonly raft?: Omit<RaftConfig, 'id' | 'storage' | 'applied'>;
  /** How long `propose()` and `read()` wait before rejecting with TIMEOUT. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** At most this many proposals are appended in one batch. Default 4096. */
  readonly maxBatch?: number;
  /** When to take snapshots and how much log to keep below them (§7). */
  readonly snapshot?: SnapshotPolicy;
  readonly logger?: Logger;
  /** Called once if the node stops itself (storage failure, broken invariant). */
  readonly onFatal?: (err: Error) => void;
  /**
   * Deliberate bugs, for the fault suite to prove it catches them. Never set in production.
   * `ackBeforePersist`: send acknowledgements (votes, append acks) before the write, and write
   * slowly, as a store that acknowledges before fsync would. Core bugs go to the core.
   * @internal
   */
  readonly unsafeBugs?: { readonly ackBeforePersist?: boolean } & RaftBugs;
}

interface PendingProposal<R> {
  readonly data: Uint8Array;
  readonly type: 'normal' | 'conf';
  resolve(v: { index: Index; result: R | undefined }): void;
  reject(e: Error): void;
  deadline: number;
  term?: Term;
}

interface PendingRead {
  resolve(index: Index): void;
  reject(e: Error): void;
  deadline: number;
  index?: Index;
  lease?: boolean;
}

/**
 * The node runtime: drives a {@link RawNode} with a tick timer, a transport, durable storage
 * and a state machine, following the Ready contract (docs/ready-contract.md): send what may
 * go now, persist (one sync), send acknowledgements, apply, advance.
 *
 * Proposals that arrive while a write is in flight are batched into the next one.
 *
 * @example
 * ```ts
 * const node = await RaftNode.start({ id: 'n1', storage, transport, stateMachine, initialMembers: ['n1', 'n2', 'n3'] });
 * const result = await node.propose(new TextEncoder().encode('incr 1'));
 * const index = await node.read(); // linearizable: state is current once applied to `index`
 * await node.stop();
 * ```
 */
export class RaftNode<R = unknown> {
  readonly id: NodeId;
  private readonly rn: RawNode;
  private readonly opts: NodeOptions<R>;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly maxBatch: number;
  private ticker: NodeJS.Timeout | undefined;
  private running = false;
  private scheduled = false;
  private stopped = false;
  private fatal: Error | undefined;
  private idle: Promise<void> = Promise.resolve();
  private idleResolve: (() => void) | undefined;
  private queued: PendingProposal<R>[] = [];
  private readonly proposals = new Map<Index, PendingProposal<R>>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly waitingReads: PendingRead[] = [];
  private readSeq = 0;
  private applied: Index;
  private leader: NodeId | undefined;
  private readonly leaderWatchers = new Set<(leader: NodeId | undefined) => void>();
  private readonly snaps: Snapshots;

  private constructor(opts: NodeOptions<R>, rn: RawNode) {
    this.opts = opts;
    this.id = opts.id;
    this.rn = rn;
    this.log = opts.logger ?? silentLogger;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxBatch = opts.maxBatch ?? 4096;
    this.applied = rn.raft.log.applied;
    this.snaps = new Snapshots(
      {
        rn,
        storage: opts.storage,
        transport: opts.transport,
        stateMachine: opts.stateMachine as StateMachine<unknown>,
        log: this.log,
        appliedIndex: () => this.applied,
        step: (m) => this.onMessage(m),
        kick: () => this.kick(),
        fatal: (e) => this.die(e),
        reportSnapshot: (peer, ok) => this.reportSnapshot(peer, ok),
        stopped: () => this.stopped || this.fatal !== undefined,
      },
      opts.snapshot,
    );
  }

  /**
   * Opens a node on `storage` (bootstrapping a new cluster's log when it is empty and
   * `initialMembers` is given), restores the state machine from the latest snapshot, starts
   * the transport and the tick timer.
   */
  static async start<R>(opts: NodeOptions<R>): Promise<RaftNode<R>> {
    const s = opts.storage;
    if (s.lastIndex() === 0 && s.initialState().hardState.term === 0 && opts.initialMembers) {
      const members = [...opts.initialMembers];
      if (!members.includes(opts.id)) {
        throw new RaftError(
          'CONFIG_INVALID',
          `initial members (${members.join(', ')}) must include ${opts.id}`,
        );
      }
      // Every founding member writes the same first entry: a committed membership of term 1.
      const cc: ConfChange = { changes: members.map((node) => ({ op: 'add-voter' as const, node })) };
      await s.save({
        hardState: { term: 1, vote: undefined, commit: 1 },
        entries: [{ term: 1, index: 1, type: 'conf', data: encodeConfChange(cc) }],
      });
    }
    const snap = await Snapshots.restoreStateMachine(s, opts.stateMachine as StateMachine<unknown>);
    const seed = (Date.now() ^ (process.pid << 8)) >>> 0;
    const rn = new RawNode({
      electionTicks: 12,
      heartbeatTicks: 2,
      // Commits reach followers with the next append or tick, not an extra message round.
      lazyCommit: true,
      rand: new SeededRand(seed),
      ...opts.raft,
      id: opts.id,
      storage: s,
      applied: snap.index,
    });
    if (opts.unsafeBugs) rn.raft.bugs = { ...opts.unsafeBugs };
    const node = new RaftNode(opts, rn);
    await opts.transport.start((m) => node.onMessage(m), node.snaps);
    node.ticker = setInterval(() => node.onTick(), opts.tickMs ?? 50);
    node.log('info', 'node-started', { id: opts.id, term: rn.raft.term, lastIndex: rn.raft.log.lastIndex() });
    node.kick();
    return node;
  }

  // ------------------------------------------------------------------ public API

  /**
   * Proposes a command; resolves with the state machine's result once it is applied here.
   * Rejects with `NotLeaderError` (with a leader hint: nothing was appended), `BACK_PRESSURE`
   * or `TRANSFER_IN_PROGRESS` (not appended), `PROPOSAL_DROPPED` (definitely not applied),
   * `TIMEOUT` or `STOPPED` (outcome unknown: it may still apply).
   */
  async propose(data: Uint8Array): Promise<R> {
    const r = await this.enqueue(data, 'normal');
    return r.result as R;
  }

  /** Like {@link propose}, also returning the log index the command was applied at. */
  proposeWithIndex(data: Uint8Array): Promise<{ index: Index; result: R | undefined }> {
    return this.enqueue(data, 'normal');
  }

  /** Proposes a membership change; resolves with its log index once applied. */
  async proposeConfChange(cc: ConfChange): Promise<Index> {
    return (await this.enqueue(encodeConfChange(cc), 'conf')).index;
  }

  private enqueue(
    data: Uint8Array,
    type: 'normal' | 'conf',
  ): Promise<{ index: Index; result: R | undefined }> {
    const err = this.refusal();
    if (err) return Promise.reject(err);
    if (this.rn.raft.role !== 'leader') return Promise.reject(new NotLeaderError(this.rn.raft.leader));
    return new Promise((resolve, reject) => {
      this.queued.push({ data, type, resolve, reject, deadline: Date.now() + this.timeoutMs });
      this.kick();
    });
  }

  /**
   * Submits a command without waiting for its outcome; a follower forwards it to the leader
   * when `raft.forwardProposals` is on. For idempotent housekeeping (e.g. publishing this
   * member's attributes); returns false if it could not even be submitted.
   */
  submit(data: Uint8Array): boolean {
    if (this.refusal()) return false;
    try {
      this.rn.propose(data);
    } catch {
      return false;
    }
    this.kick();
    return true;
  }

  /**
   * A linearizable read barrier (§8 ReadIndex): resolves with an index once this node's
   * state machine has applied it and it is safe to read local state. `lease`: let the
   * leader answer from its lease (see README for the clock assumption).
   */
  read(options: { lease?: boolean } = {}): Promise<Index> {
    const err = this.refusal();
    if (err) return Promise.reject(err);
    const ctx = `${this.id}:${++this.readSeq}`;
    return new Promise((resolve, reject) => {
      const pr: PendingRead = {
        resolve,
        reject,
        deadline: Date.now() + this.timeoutMs,
        lease: options.lease === true,
      };
      this.reads.set(ctx, pr);
      try {
        this.rn.readIndex(utf8Encoder.encode(ctx), options.lease === true ? { lease: true } : {});
      } catch (e) {
        this.reads.delete(ctx);
        reject(e as Error);
        return;
      }
      this.kick();
    });
  }

  /** Hands leadership to `to`. Resolves once `to` is leader, rejects on timeout. */
  async transferLeadership(to: NodeId): Promise<void> {
    const err = this.refusal();
    if (err) throw err;
    this.rn.transferLeadership(to);
    this.kick();
    const deadline = Date.now() + this.timeoutMs;
    while (Date.now() < deadline) {
      if (this.leader === to) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new RaftError('TIMEOUT', `leadership did not move to ${to} in time`);
  }

  /** The transport could not reach `peer` (the leader stops pipelining to it). */
  reportUnreachable(peer: NodeId): void {
    if (this.stopped || this.fatal) return;
    this.rn.reportUnreachable(peer);
    this.kick();
  }

  /** A snapshot send to `peer` finished or failed. */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    if (this.stopped || this.fatal) return;
    this.rn.reportSnapshot(peer, ok);
    this.kick();
  }

  /**
   * Takes a snapshot at the applied index now (§7; the policy in `NodeOptions.snapshot` also
   * takes them automatically) and compacts the log below it, keeping the catch-up margin.
   * Resolves with the snapshot's position once it is durable; applying and serving go on
   * meanwhile.
   */
  snapshot(): Promise<SnapshotInfo> {
    const err = this.refusal();
    if (err) return Promise.reject(err);
    return this.snaps.request();
  }

  /** The newest snapshot and the snapshot machinery's counters. */
  snapshotStatus(): SnapshotStatus {
    return this.snaps.status();
  }

  /** Starts an election now. */
  campaign(): void {
    this.rn.campaign();
    this.kick();
  }

  /** The core's status plus the runtime's applied index. */
  status(): Status & { appliedIndex: Index } {
    return { ...this.rn.status(), appliedIndex: this.applied };
  }

  /** The leader this node knows of. */
  leaderId(): NodeId | undefined {
    return this.leader;
  }

  /** Whether this node is the leader. */
  isLeader(): boolean {
    return this.rn.raft.role === 'leader';
  }

  /** The index applied to the state machine. */
  appliedIndex(): Index {
    return this.applied;
  }

  /** Calls `fn` whenever the known leader changes. Returns an unsubscribe function. */
  onLeaderChange(fn: (leader: NodeId | undefined) => void): () => void {
    this.leaderWatchers.add(fn);
    return () => this.leaderWatchers.delete(fn);
  }

  /**
   * Graceful stop: refuse new work, let the in-flight batch finish (persisted and synced),
   * reject what is still pending with `STOPPED`, close the transport and storage.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.idle;
    this.failAll(new RaftError('STOPPED', 'the node stopped; the outcome of in-flight requests is unknown'));
    await this.opts.transport.close();
    // A snapshot being written finishes first (the storage must not close under it).
    await this.snaps.idle();
    await this.snaps.close();
    await this.opts.storage.close();
    this.log('info', 'node-stopped', { id: this.id });
  }

  // ------------------------------------------------------------------ the loop

  private refusal(): Error | undefined {
    if (this.fatal)
      return new RaftError('STOPPED', `the node stopped after a fatal error: ${this.fatal.message}`);
    if (this.stopped) return new RaftError('STOPPED', 'the node is stopped');
    return undefined;
  }

  private onMessage(m: Message): void {
    if (this.stopped) return;
    try {
      this.rn.step(m);
    } catch (e) {
      if (isRaftError(e, 'BAD_REQUEST')) {
        this.log('warn', 'bad-message', { from: m.from, type: m.type, error: (e as Error).message });
        return;
      }
      this.die(e as Error);
      return;
    }
    this.kick();
  }

  private onTick(): void {
    if (this.stopped) return;
    this.rn.tick();
    this.expire();
    this.kick();
  }

  /** Schedules the loop (coalescing many triggers into one run). */
  private kick(): void {
    if (this.scheduled || this.running || this.stopped || this.fatal) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.running || this.fatal) return;
    this.running = true;
    this.idle = new Promise((r) => (this.idleResolve = r));
    try {
      for (;;) {
        this.flushProposals();
        // Between batches the state machine is exactly at `applied`: a snapshot may start.
        this.snaps.maybeTake();
        if (!this.rn.hasReady()) break;
        await this.handleReady(this.rn.ready());
        // Let timers and I/O run between batches: proposers that re-propose from a resolved
        // promise (microtasks) would otherwise keep this loop going without ever yielding,
        // starving ticks, the network and snapshot writes. With nothing pending, go round at
        // once (and stop) rather than spend an event-loop turn finding that out.
        if (this.queued.length > 0 || this.rn.hasReady()) await new Promise<void>((r) => setImmediate(r));
      }
    } catch (e) {
      this.die(e as Error);
    } finally {
      this.running = false;
      this.idleResolve?.();
    }
  }

  /** Appends every queued proposal as one batch (§ batching: one write, one message per peer). */
  private flushProposals(): void {
    while (this.queued.length > 0) {
      const batch = this.queued.splice(0, this.maxBatch);
      const normal = batch.filter((p) => p.type === 'normal');
      const conf = batch.filter((p) => p.type === 'conf');
      if (normal.length > 0) this.proposeGroup(normal);
      for (const p of conf) this.proposeGroup([p]);
    }
  }

  private proposeGroup(group: PendingProposal<R>[]): void {
    try {
      // We may have stepped down since these were queued. Refuse them here: handing them to
      // the core could forward them (forwardProposals), and then "not the leader" would be a
      // lie — the new leader might apply them.
      if (this.rn.raft.role !== 'leader') throw new NotLeaderError(this.rn.raft.leader);
      let res;
      if (group[0]!.type === 'conf') {
        res = this.rn.proposeConfChange(decodeConfChange(group[0]!.data));
      } else {
        res = this.rn.proposeBatch(group.map((p) => p.data));
      }
      if (!res) throw new RaftError('INVARIANT', 'a leader did not append its proposal');
      const first = res.index - group.length + 1;
      for (let i = 0; i < group.length; i++) {
        const p = group[i]!;
        p.term = res.term;
        this.proposals.set(first + i, p);
      }
    } catch (e) {
      for (const p of group) p.reject(e as Error);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState.role, rd.softState.leader);
    if (rd.messages.length > 0) this.send(rd.messages);
    const early = this.opts.unsafeBugs?.ackBeforePersist === true;
    if (early && rd.persistedMessages.length > 0) this.send(rd.persistedMessages);
    if (rd.mustSync) {
      if (early && rd.entries.length > 0) await new Promise((r) => setTimeout(r, 20));
      // A leader's snapshot streamed to us is installed from the file it was received into.
      const received = rd.snapshot ? this.snaps.takeReceived(rd.snapshot.meta) : undefined;
      await this.opts.storage.save({
        hardState: rd.hardState,
        entries: rd.entries,
        snapshot: rd.snapshot,
        received,
      });
    }
    if (!early && rd.persistedMessages.length > 0) this.send(rd.persistedMessages);
    if (rd.snapshot) {
      // §7: the state machine is reset to the snapshot's contents (read back from storage).
      await this.snaps.onInstalled(rd.snapshot.meta);
      this.applied = rd.snapshot.meta.index;
    }
    if (rd.committedEntries.length > 0) await this.apply(rd.committedEntries);
    for (const rs of rd.readStates) {
      const ctx = utf8Decoder.decode(rs.context);
      const pr = this.reads.get(ctx);
      if (!pr) continue;
      this.reads.delete(ctx);
      pr.index = rs.index;
      this.waitingReads.push(pr);
    }
    this.releaseReads();
    this.rn.advance(rd);
  }

  /** Sends messages; InstallSnapshot messages stream their bytes from storage. */
  private send(msgs: readonly Message[]): void {
    let plain: Message[] | undefined;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      if (m.type !== 'snap') {
        plain?.push(m);
        continue;
      }
      plain ??= msgs.slice(0, i);
      this.snaps.send(m);
    }
    const out = plain ?? msgs;
    if (out.length > 0) this.opts.transport.send(out);
  }

  private async apply(entries: readonly Entry[]): Promise<void> {
    const cmds: Command[] = [];
    for (const e of entries) {
      if (e.type === 'normal' && e.data.byteLength > 0)
        cmds.push({ index: e.index, term: e.term, data: e.data });
      else if (e.type === 'conf')
        this.log('info', 'membership-applied', { index: e.index, conf: this.rn.status().conf });
    }
    const results = cmds.length > 0 ? await this.opts.stateMachine.apply(cmds) : [];
    this.snaps.onApplied(entries);
    let k = 0;
    for (const e of entries) {
      const isCmd = e.type === 'normal' && e.data.byteLength > 0;
      const result = isCmd ? results[k++] : undefined;
      const p = this.proposals.get(e.index);
      if (!p) continue;
      this.proposals.delete(e.index);
      if (p.term === e.term) p.resolve({ index: e.index, result });
      else
        p.reject(
          new RaftError('PROPOSAL_DROPPED', `entry ${e.index} was replaced by a new leader's; not applied`),
        );
    }
    this.applied = entries[entries.length - 1]!.index;
  }

  private releaseReads(): void {
    if (this.waitingReads.length === 0) return;
    let w = 0;
    for (const r of this.waitingReads) {
      if (r.index! <= this.applied) r.resolve(this.applied);
      else this.waitingReads[w++] = r;
    }
    this.waitingReads.length = w;
  }

  private onSoftState(role: string, leader: NodeId | undefined): void {
    if (leader !== this.leader) {
      this.log('info', 'leader-changed', { leader: leader ?? null, term: this.rn.raft.term, role });
      this.leader = leader;
      for (const fn of this.leaderWatchers) fn(leader);
    } else {
      this.log('debug', 'role-changed', { role, term: this.rn.raft.term });
    }
    if (leader !== undefined && this.reads.size > 0) {
      // A ReadIndex request sent to a previous leader may be lost with it: ask the new one.
      // Requests are keyed by their context, so a late answer from the old one is harmless.
      for (const [ctx, r] of this.reads) {
        try {
          this.rn.readIndex(utf8Encoder.encode(ctx), r.lease === true ? { lease: true } : {});
        } catch {
          // no leader after all: the read times out or is retried on the next change
        }
      }
    }
    if (role !== 'leader') {
      // Not leader any more: queued proposals were never appended.
      for (const p of this.queued) p.reject(new NotLeaderError(leader));
      this.queued = [];
    }
  }

  /** Rejects proposals and reads past their deadline (outcome unknown for proposals). */
  private expire(): void {
    const now = Date.now();
    for (const [i, p] of this.proposals) {
      if (p.deadline <= now) {
        this.proposals.delete(i);
        p.reject(new RaftError('TIMEOUT', 'the proposal was not applied in time; it may still apply'));
      }
    }
    for (const [ctx, r] of this.reads) {
      if (r.deadline <= now) {
        this.reads.delete(ctx);
        r.reject(new RaftError('TIMEOUT', 'the read could not be confirmed in time'));
      }
    }
    let w = 0;
    for (const r of this.waitingReads) {
      if (r.deadline <= now) r.reject(new RaftError('TIMEOUT', 'the read could not be confirmed in time'));
      else this.waitingReads[w++] = r;
    }
    this.waitingReads.length = w;
  }

  private failAll(err: Error): void {
    for (const p of this.queued) p.reject(err);
    this.queued = [];
    for (const p of this.proposals.values()) p.reject(err);
    this.proposals.clear();
    for (const r of this.reads.values()) r.reject(err);
    this.reads.clear();
    for (const r of this.waitingReads) r.reject(err);
    this.waitingReads.length = 0;
    this.snaps.failAll(err);
  }

  /** Fail-stop: a storage failure or a broken invariant. Nothing is acknowledged after it. */
  private die(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    if (this.ticker) clearInterval(this.ticker);
    this.log('error', 'node-fatal', { error: err.message, code: (err as RaftError).code });
    this.failAll(
      new RaftError('STOPPED', `the node stopped after a fatal error: ${err.message}`, { cause: err }),
    );
    void this.opts.transport.close();
    this.opts.onFatal?.(err);
  }
}
