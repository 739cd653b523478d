import { RaftError } from '../errors.js';
import { resolveConfig, type RaftConfig } from './config.js';
import { encodeConfChange } from './membership.js';
import {
  isLocalMessage,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Index,
  type Message,
  type NodeId,
  type Term,
} from './messages.js';
import type { ProgressState } from './progress.js';
import { Raft, type Role, type SoftState } from './raft.js';
import type { Ready } from './ready.js';

/** Where a proposal landed in the leader's log. */
export interface Proposed {
  readonly index: Index;
  readonly term: Term;
}

/** A snapshot of the core's state, for status pages, tests and the dashboard. */
export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly leader: NodeId | undefined;
  readonly term: Term;
  readonly vote: NodeId | undefined;
  readonly commit: Index;
  readonly applied: Index;
  readonly lastIndex: Index;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId | undefined;
  /** Per-peer replication progress; only on the leader. */
  readonly progress?: ReadonlyMap<
    NodeId,
    { match: Index; next: Index; state: ProgressState; isLearner: boolean; inflight: number }
  >;
}

/**
 * The core's public face: a Raft server as a value you step (DESIGN.md "core").
 *
 * Inputs: {@link tick}, {@link step}, {@link propose}, {@link proposeConfChange},
 * {@link readIndex}, {@link transferLeadership}, {@link campaign}. Output: {@link ready}
 * returns one {@link Ready} batch and {@link advance} acknowledges it; until then
 * {@link hasReady} is false, so there is at most one batch in flight.
 *
 * @example
 * ```ts
 * const node = new RawNode({ id: 'n1', storage });
 * node.tick();                        // every tick interval
 * node.step(messageFromNetwork);      // for every message received
 * while (node.hasReady()) {
 *   const rd = node.ready();
 *   send(rd.messages);
 *   await storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
 *   send(rd.persistedMessages);
 *   apply(rd.committedEntries);
 *   node.advance(rd);
 * }
 * ```
 */
export class RawNode {
  /** The algorithm itself. Exposed for tests and the simulator. @internal */
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | undefined = undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(resolveConfig(config));
    this.prevSoft = { role: this.raft.role, leader: this.raft.leader };
    this.prevHard = { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** Advances logical time by one tick (election and heartbeat timers). */
  tick(): void {
    this.raft.tick();
  }

  /** Steps a message received from a peer. Local message types are refused. */
  step(m: Message): void {
    if (isLocalMessage(m) || m.type === 'prop') {
      if (m.type !== 'prop' || m.from === this.raft.id) {
        throw new RaftError('BAD_REQUEST', `message type ${m.type} cannot come from the network`);
      }
    }
    if (m.to !== this.raft.id) return;
    this.raft.step(m);
  }

  /** Starts an election now (skipping the timeout; PreVote still applies). */
  campaign(): void {
    this.raft.step({ type: 'hup', from: this.raft.id, to: this.raft.id, term: 0 });
  }

  /**
   * Proposes a command. On the leader it is appended and its position returned; on a
   * follower with `forwardProposals` it is forwarded (returns undefined). Throws
   * `NotLeaderError` (with a leader hint), `BACK_PRESSURE` or `TRANSFER_IN_PROGRESS`.
   */
  propose(data: Uint8Array): Proposed | undefined {
    return this.proposeEntry({ term: 0, index: 0, type: 'normal', data });
  }

  /**
   * Proposes several commands as one batch (one append, one message per follower). Returns
   * the position of the last one on the leader. Same errors as {@link propose}.
   */
  proposeBatch(data: readonly Uint8Array[]): Proposed | undefined {
    const entries: Entry[] = new Array<Entry>(data.length);
    for (let i = 0; i < data.length; i++) entries[i] = { term: 0, index: 0, type: 'normal', data: data[i]! };
    return this.proposeEntries(entries);
  }

  /** Proposes a membership change (§6); refused while another one is uncommitted. */
  proposeConfChange(cc: ConfChange): Proposed | undefined {
    return this.proposeEntry({ term: 0, index: 0, type: 'conf', data: encodeConfChange(cc) });
  }

  private proposeEntry(e: Entry): Proposed | undefined {
    return this.proposeEntries([e]);
  }

  /**
   * A leader appends `entries` right after its last index (or throws); where they landed is
   * known even if appending them made it step down (a removal committing) or append more (the
   * automatic leave-joint entry). On a follower they are forwarded or refused.
   */
  private proposeEntries(entries: Entry[]): Proposed | undefined {
    const r = this.raft;
    const wasLeader = r.role === 'leader';
    const before = r.log.lastIndex();
    const term = r.term;
    r.step({ type: 'prop', from: r.id, to: r.id, term: 0, entries });
    if (!wasLeader) return undefined;
    return { index: before + entries.length, term };
  }

  /**
   * Asks for a linearizable read (§8 ReadIndex). When safe, a `ReadState` with this
   * `context` appears in a `Ready`: serve the read once the state machine has applied its
   * index. `lease`: the leader may answer from its lease without a heartbeat round (see
   * `leaseMarginTicks` for the clock assumption); it falls back to a round otherwise.
   */
  readIndex(context: Uint8Array, options: { lease?: boolean } = {}): void {
    const r = this.raft;
    r.step({
      type: 'read-index',
      from: r.id,
      to: r.id,
      term: 0,
      context,
      ...(options.lease === true ? { lease: true } : {}),
    });
  }

  /** Hands leadership to `to` (TimeoutNow once it is caught up). */
  transferLeadership(to: NodeId): void {
    const r = this.raft;
    r.step({ type: 'transfer-leader', from: r.id, to: r.id, term: 0, transferee: to });
  }

  /** The transport could not reach `id`: stop pipelining to it until it answers again. */
  reportUnreachable(id: NodeId): void {
    this.raft.step({ type: 'unreachable', from: id, to: this.raft.id, term: 0 });
  }

  /** Sending a snapshot to `id` finished (`ok`) or failed. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step({ type: 'snap-status', from: id, to: this.raft.id, term: 0, reject: !ok });
  }

  /** True when a batch is waiting and none is outstanding. */
  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    return (
      r.role !== this.prevSoft.role ||
      r.leader !== this.prevSoft.leader ||
      r.term !== this.prevHard.term ||
      r.vote !== this.prevHard.vote ||
      r.log.committed !== this.prevHard.commit ||
      r.log.unstable.entries.length > 0 ||
      r.log.unstable.snapshot !== undefined ||
      r.msgs.length > 0 ||
      r.msgsAfterPersist.length > 0 ||
      r.readStates.length > 0 ||
      r.log.hasNextCommittedEnts()
    );
  }

  /** Takes the next batch. Call {@link advance} with it before asking for another. */
  ready(): Ready {
    if (this.outstanding) throw new RaftError('BAD_REQUEST', 'advance() the previous Ready first');
    const r = this.raft;
    const soft: SoftState = { role: r.role, leader: r.leader };
    const softChanged = soft.role !== this.prevSoft.role || soft.leader !== this.prevSoft.leader;
    const hard: HardState = { term: r.term, vote: r.vote, commit: r.log.committed };
    const termVoteChanged = hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote;
    const hardChanged = termVoteChanged || hard.commit !== this.prevHard.commit;
    const entries = r.log.unstable.entries.slice();
    const snapshot = r.log.unstable.snapshot;
    const committedEntries = r.log.nextCommittedEnts();
    let messages: Message[];
    let persistedMessages: Message[];
    if (termVoteChanged) {
      // A new term or vote must be durable before we say anything in it.
      messages = [];
      persistedMessages = r.msgs.length === 0 ? r.msgsAfterPersist : r.msgs.concat(r.msgsAfterPersist);
    } else {
      messages = r.msgs;
      persistedMessages = r.msgsAfterPersist;
    }
    r.msgs = [];
    r.msgsAfterPersist = [];
    // The heartbeats of the newest read round are on their way now: later reads need a new one.
    r.readOnly.open = false;
    const rd: Ready = {
      softState: softChanged ? soft : undefined,
      hardState: hardChanged ? hard : undefined,
      entries,
      snapshot,
      committedEntries,
      messages,
      persistedMessages,
      readStates: r.readStates,
      mustSync: termVoteChanged || entries.length > 0 || snapshot !== undefined,
    };
    r.readStates = [];
    if (committedEntries.length > 0) {
      r.log.applyingTo(committedEntries[committedEntries.length - 1]!.index);
      if (r.role === 'leader') r.reduceUncommittedSize(committedEntries);
    }
    this.prevSoft = soft;
    this.prevHard = hard;
    this.outstanding = rd;
    return rd;
  }

  /** Acknowledges that `rd` was persisted, sent and applied as the Ready contract says. */
  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new RaftError('BAD_REQUEST', 'advance() takes the last Ready');
    this.outstanding = undefined;
    const r = this.raft;
    if (rd.snapshot) {
      const idx = rd.snapshot.meta.index;
      r.log.unstable.stableSnapTo(idx);
      if (r.log.applied < idx) {
        r.log.applied = idx;
        r.log.applying = Math.max(r.log.applying, idx);
      }
    }
    const last = rd.entries[rd.entries.length - 1];
    if (last) r.log.unstable.stableTo(last.index, last.term);
    const applied = rd.committedEntries[rd.committedEntries.length - 1];
    if (applied) r.log.appliedTo(applied.index);
    r.onPersisted();
  }

  /** The core's state now. */
  status(): Status {
    const r = this.raft;
    const base = {
      id: r.id,
      role: r.role,
      leader: r.leader,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      conf: r.currentConf(),
      leadTransferee: r.leadTransferee,
    };
    if (r.role !== 'leader') return base;
    const progress = new Map<
      NodeId,
      { match: Index; next: Index; state: ProgressState; isLearner: boolean; inflight: number }
    >();
    for (const [id, pr] of r.tracker.progress) {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        isLearner: pr.isLearner,
        inflight: pr.inflights.length,
      });
    }
    return { ...base, progress };
  }
}
