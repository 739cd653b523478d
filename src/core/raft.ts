import { NotLeaderError, RaftError } from '../errors.js';
import type { ResolvedConfig } from './config.js';
import { invariant } from './invariant.js';
import { RaftLog } from './log.js';
import {
  applyConfChange,
  decodeConfChange,
  encodeConfChange,
  isJoint,
  isVoter as confHasVoter,
} from './membership.js';
import {
  EMPTY_CONF,
  unreachable,
  type AppMsg,
  type ConfChange,
  type ConfState,
  type Entry,
  type HeartbeatMsg,
  type Index,
  type Message,
  type NodeId,
  type PropMsg,
  type ReadIndexMsg,
  type ReadState,
  type SnapMsg,
  type Snapshot,
  type Term,
  type VoteMsg,
} from './messages.js';
import { ReadOnly, decodeRound } from './read-only.js';
import {
  bcastAppend,
  bcastHeartbeat,
  flushCommit,
  handleAppendResponse,
  handleHeartbeatResponse,
  maybeSendAppend,
  sendTimeoutNow,
} from './replication.js';
import { ProgressTracker } from './tracker.js';

/** The role a server plays (§5.1), with PreVote's extra step before candidacy. */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state worth reporting when it changes. */
export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | undefined;
}

/** A configuration entry in the log (newest last), so truncation can roll membership back. */
interface ConfPoint {
  readonly index: Index;
  readonly conf: ConfState;
}

/** Messages that acknowledge durable state: they may only leave once the batch is persisted. */
const AFTER_PERSIST: ReadonlySet<Message['type']> = new Set(['vote', 'vote-resp', 'app-resp']);

/** Test-only fault switches that let the simulator prove its checks have teeth. @internal */
export interface RaftBugs {
  /** Commit by counting replicas of any entry, ignoring §5.4.2's current-term rule. */
  commitPreviousTerm?: boolean;
  /** Grant every vote request in a term, not just the first. */
  doubleVote?: boolean;
  /** Grant votes without §5.4.1's check that the candidate's log is at least as up to date. */
  skipUpToDateCheck?: boolean;
}

/**
 * The Raft algorithm for one server, as a value you step. It performs no I/O: messages to
 * send accumulate in `msgs` / `msgsAfterPersist`, entries to persist in the log's unstable
 * tail; {@link RawNode} turns them into `Ready` batches.
 *
 * Roles are behaviour (STYLE.md convention 3): `become*` swaps `stepRole` and `tickRole`.
 */
export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  term: Term = 0;
  vote: NodeId | undefined = undefined;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  role: Role = 'follower';
  leader: NodeId | undefined = undefined;

  /** Ticks since the election timer was reset (leaders: since the last CheckQuorum). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /**
   * Ticks since we last heard from a live leader (or were one, or started). While it is below
   * the election timeout we ignore vote requests (§6: "minimum election timeout"): this keeps
   * removed or partitioned servers from disrupting, and is what leader leases rest on. It
   * starts at 0 on restart, so a restarted server honours any lease it may have forgotten.
   */
  ticksSinceLeader = 0;
  /** Monotonic tick counter (the core's only notion of time). */
  now = 0;

  /** The server leadership is being transferred to, if any. */
  leadTransferee: NodeId | undefined = undefined;
  /** A TimeoutNow went out this term: leases are off, as the transferee may ignore them. */
  leaseRevoked = false;
  /** Index of the newest membership change this leader appended; one at a time (§6). */
  pendingConfIndex: Index = 0;
  /** Bytes of entries this leader appended that are not yet committed (back-pressure). */
  uncommittedSize = 0;
  readonly readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its term (§8). */
  pendingReads: ReadIndexMsg[] = [];
  readStates: ReadState[] = [];

  msgs: Message[] = [];
  msgsAfterPersist: Message[] = [];

  /** Membership by log position: confs[0] is the base (snapshot/initial), newest last. */
  private confs: ConfPoint[];
  /** @internal */
  bugs: RaftBugs = {};

  private stepRole: (m: Message) => void;
  private tickRole: () => void;

  constructor(cfg: ResolvedConfig) {
    this.id = cfg.id;
    this.cfg = cfg;
    const storage = cfg.storage;
    this.log = new RaftLog(storage, cfg.maxCommittedBytesPerReady);
    const { hardState, confState } = storage.initialState();
    const snap = storage.snapshot();
    this.confs = [{ index: snap.meta.index, conf: confState ?? EMPTY_CONF }];
    // §6: a server uses the newest configuration in its log, committed or not. Entries kept
    // below the snapshot (a catch-up margin) are already part of its membership: skip them.
    const first = Math.max(storage.firstIndex(), snap.meta.index + 1);
    const last = storage.lastIndex();
    for (let i = first; i <= last;) {
      const batch = storage.entries(i, last + 1, 64 * 1024 * 1024);
      for (const e of batch) if (e.type === 'conf') this.pushConf(e);
      i += batch.length;
      if (batch.length === 0) break;
    }
    this.tracker = new ProgressTracker(EMPTY_CONF, cfg.maxInflightMsgs, cfg.maxInflightBytes);
    this.tracker.setConf(this.currentConf(), last + 1);
    if (hardState.term > 0 || hardState.vote !== undefined || hardState.commit > 0) {
      invariant(
        hardState.commit >= this.log.committed && hardState.commit <= last,
        () => `persisted commit ${hardState.commit} outside [${this.log.committed}, ${last}]`,
      );
      this.term = hardState.term;
      this.vote = hardState.vote;
      this.log.commitTo(hardState.commit);
    }
    if (cfg.applied > 0) this.log.appliedTo(Math.min(cfg.applied, this.log.committed));
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.becomeFollower(this.term, undefined);
    // A server that has never seen a term has no lease to honour; a restarted one may have
    // acknowledged a leader just before it crashed, so it waits out one election timeout.
    this.ticksSinceLeader = this.term === 0 ? cfg.electionTicks : 0;
  }

  // ---------------------------------------------------------------- membership

  /** The configuration in force: the newest in the log (§6). */
  currentConf(): ConfState {
    return this.confs[this.confs.length - 1]!.conf;
  }

  /** Index of the newest configuration entry (or the base). */
  currentConfIndex(): Index {
    return this.confs[this.confs.length - 1]!.index;
  }

  private pushConf(e: Entry): void {
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
      this.confs.push({ index: e.index, conf: applyConfChange(this.currentConf(), cc) });
    } catch {
      // A malformed or inapplicable change is committed as a no-op: every server decodes the
      // same bytes the same way, so all skip it alike.
    }
  }

  /** Called after entries from `ents[0].index` on were (re)written: roll membership to match. */
  private onLogWritten(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const from = ents[0]!.index;
    const before = this.currentConf();
    while (this.confs.length > 1 && this.confs[this.confs.length - 1]!.index >= from) this.confs.pop();
    for (const e of ents) if (e.type === 'conf') this.pushConf(e);
    // Forget points that can no longer be truncated (at or below commit), keeping one base.
    while (this.confs.length > 1 && this.confs[1]!.index <= this.log.committed) this.confs.shift();
    if (this.currentConf() !== before) this.applyConf();
  }

  private applyConf(): void {
    const conf = this.currentConf();
    this.tracker.setConf(conf, this.log.lastIndex() + 1);
    if (this.role !== 'leader') return;
    const self = this.tracker.progress.get(this.id);
    if (self) self.maybeUpdate(this.persistedIndex());
    if (this.leadTransferee !== undefined && !this.tracker.isVoter(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    // The quorum changed: commit may move; new members need the log.
    this.maybeCommit();
    bcastAppend(this, false);
  }

  /**
   * True when this server may campaign: it votes in the configuration in force — or that
   * configuration removes it but is not committed yet while it did vote in the committed one.
   * Without the second case a removal could deadlock: if the server being removed holds the
   * only copy of C_new, no one else can win (their logs are behind) and it would not try. It
   * campaigns counting votes of C_new only (its own does not count), which is as safe as any
   * election (§6: a leader need not be part of the configuration it manages).
   */
  promotable(): boolean {
    if (this.log.unstable.snapshot !== undefined) return false;
    if (this.tracker.isVoter(this.id)) return true;
    if (this.currentConfIndex() <= this.log.committed) return false;
    let committedConf: ConfState | undefined;
    for (const p of this.confs) if (p.index <= this.log.committed) committedConf = p.conf;
    return committedConf !== undefined && confHasVoter(committedConf, this.id);
  }

  // ---------------------------------------------------------------- sending

  /** Queues a message; acknowledgements wait for the batch to be persisted. */
  send(m: Message): void {
    if (AFTER_PERSIST.has(m.type)) this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }

  // ---------------------------------------------------------------- role transitions

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = undefined;
    }
    this.leader = undefined;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.cfg.rand.intn(this.cfg.electionTicks);
    this.abortLeaderTransfer();
    this.leaseRevoked = false;
    this.tracker.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.tracker.progress) {
      pr.becomeProbe();
      pr.match = 0;
      pr.next = last + 1;
      pr.ackedRound = 0;
      pr.sentCommit = 0;
      pr.recentActive = false;
      if (id === this.id) pr.match = this.persistedIndex();
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.pendingReads = [];
  }

  becomeFollower(term: Term, leader: NodeId | undefined): void {
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.reset(term);
    this.leader = leader;
    this.role = 'follower';
  }

  becomePreCandidate(): void {
    invariant(this.role !== 'leader', () => 'leader cannot become pre-candidate');
    // PreVote changes neither term nor vote: a failed pre-election leaves no trace.
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.tracker.resetVotes();
    this.leader = undefined;
    this.role = 'pre-candidate';
  }

  becomeCandidate(): void {
    invariant(this.role !== 'leader', () => 'leader cannot become candidate');
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomeLeader(): void {
    invariant(this.role !== 'follower', () => 'follower cannot become leader directly');
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    this.reset(this.term);
    this.leader = this.id;
    this.role = 'leader';
    this.ticksSinceLeader = 0;
    const self = this.tracker.progress.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.match = this.persistedIndex();
      self.next = this.log.lastIndex() + 1;
    }
    // Conservatively treat any uncommitted entry as a possible pending membership change.
    this.pendingConfIndex = this.log.lastIndex();
    // §8: a no-op entry of our own term, so entries of earlier terms can commit with it
    // (Figure 8) and ReadIndex learns the commit index.
    this.appendEntries([{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }], false);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    this.now++;
    this.tickRole();
  }

  private tickElection(): void {
    this.electionElapsed++;
    this.ticksSinceLeader++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step({ type: 'hup', from: this.id, to: this.id, term: 0 });
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.ticksSinceLeader = 0;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) this.step({ type: 'check-quorum', from: this.id, to: this.id, term: 0 });
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === 'leader' && this.leadTransferee !== undefined) this.abortLeaderTransfer();
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.step({ type: 'beat', from: this.id, to: this.id, term: 0 });
    } else if (this.cfg.lazyCommit) {
      flushCommit(this);
    }
  }

  // ---------------------------------------------------------------- elections

  /**
   * Starts an election: `pre-vote` first asks whether we could win without changing any
   * term; `election` is the real one (§5.2); `transfer` is an election the leader asked for
   * with TimeoutNow (it skips PreVote, and voters ignore their leader lease for it).
   */
  campaign(mode: 'pre-vote' | 'election' | 'transfer'): void {
    if (!this.promotable()) return;
    if (this.role === 'leader') return;
    const pre = mode === 'pre-vote';
    const transfer = mode === 'transfer';
    let voteTerm: Term;
    if (pre) {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.tracker.recordVote(this.id, true);
    if (this.tracker.tallyVotes().result === 'won') {
      // A single-voter cluster wins at once.
      if (pre) this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const id of this.tracker.voterIds()) {
      if (id === this.id) continue;
      const m: VoteMsg = {
        type: pre ? 'prevote' : 'vote',
        from: this.id,
        to: id,
        term: voteTerm,
        lastLogIndex,
        lastLogTerm,
        ...(transfer ? { transfer: true } : {}),
      };
      this.send(m);
    }
  }

  private handleVoteRequest(m: VoteMsg): void {
    // §5.2, §5.4.1: one vote per term, only for a log at least as up to date as ours.
    const canVote =
      this.vote === m.from ||
      (this.vote === undefined && this.leader === undefined) ||
      (m.type === 'prevote' && m.term > this.term) ||
      (this.bugs.doubleVote === true && m.type === 'vote');
    const respType = m.type === 'vote' ? 'vote-resp' : 'prevote-resp';
    const upToDate =
      this.bugs.skipUpToDateCheck === true || this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    if (canVote && upToDate) {
      // A granted PreVote answers in the term asked for, so the candidate can count it.
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  // ---------------------------------------------------------------- step

  /**
   * Processes one message. Local requests that cannot be served throw a {@link RaftError};
   * network messages that cannot be served are dropped (their senders retry).
   */
  step(m: Message): void {
    if (m.term === 0) {
      // Local message, or a message that carries no term.
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'prevote') {
        const inLease = this.cfg.checkQuorum && this.ticksSinceLeader < this.cfg.electionTicks;
        // §6: a server that heard from a leader within the minimum election timeout ignores
        // vote requests, so a removed or partitioned server cannot depose a live leader.
        if (inLease && m.transfer !== true) return;
      }
      if (m.type === 'prevote') {
        // Answering a PreVote never changes our term.
      } else if (m.type === 'prevote-resp' && !m.reject) {
        // A granted PreVote carries the term the pre-candidate asked for.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, undefined);
      }
    } else if (m.term < this.term) {
      if (m.type === 'app' || m.type === 'heartbeat') {
        // A stale leader (e.g. partitioned away): tell it our term so it steps down (Figure 2:
        // "reply false if term < currentTerm" carries our term). Without this a node whose term
        // ran ahead could never rejoin: under PreVote or CheckQuorum its vote requests are
        // ignored, and as a learner it cannot campaign at all (found by the simulator).
        this.send({
          type: 'app-resp',
          from: this.id,
          to: m.from,
          term: this.term,
          reject: false,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
        });
      } else if (m.type === 'prevote') {
        this.send({ type: 'prevote-resp', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case 'hup':
        if (m.transfer === true) this.campaign('transfer');
        // Our own vote is a vote too: while we would ignore another candidate's request (§6)
        // we do not start an election either, or a leader's lease could be broken. The timer
        // never fires this early (ticksSinceLeader >= electionElapsed); only an explicit
        // campaign() is refused here.
        else if (this.cfg.checkQuorum && this.ticksSinceLeader < this.cfg.electionTicks) return;
        else this.campaign(this.cfg.preVote ? 'pre-vote' : 'election');
        return;
      case 'vote':
      case 'prevote':
        this.handleVoteRequest(m);
        return;
      default:
        this.stepRole(m);
    }
  }

  /** Throws for local requests, drops for remote ones. */
  private refuse(m: Message, err: RaftError): void {
    if (m.from === this.id) throw err;
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'beat':
        bcastHeartbeat(this);
        return;
      case 'check-quorum':
        if (!this.tracker.quorumActive(this.id)) {
          this.becomeFollower(this.term, undefined);
          return;
        }
        for (const [id, pr] of this.tracker.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case 'prop':
        this.leaderPropose(m);
        return;
      case 'read-index':
        this.leaderReadIndex(m);
        return;
      case 'app-resp':
        handleAppendResponse(this, m);
        return;
      case 'heartbeat-resp':
        handleHeartbeatResponse(this, m.from, decodeRound(m.context));
        return;
      case 'snap-status': {
        const pr = this.tracker.progress.get(m.from);
        if (!pr || pr.state !== 'snapshot') return;
        if (m.reject) pr.pendingSnapshot = 0;
        // Wait for the follower's append response (or the next heartbeat) before probing.
        pr.becomeProbe();
        pr.probeSent = true;
        return;
      }
      case 'unreachable': {
        const pr = this.tracker.progress.get(m.from);
        if (pr && pr.state === 'replicate') pr.becomeProbe();
        return;
      }
      case 'transfer-leader':
        this.leaderTransfer(m.transferee, m.from);
        return;
      case 'hup':
      case 'vote':
      case 'prevote':
      case 'vote-resp':
      case 'prevote-resp':
      case 'app':
      case 'heartbeat':
      case 'snap':
      case 'timeout-now':
      case 'read-index-resp':
        return; // §5.2 Election Safety: no other leader exists in our term; nothing to do
      default:
        return unreachable(m);
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'prop':
        this.refuse(m, new NotLeaderError(undefined));
        return;
      case 'app':
      case 'heartbeat':
      case 'snap':
        // The leader of our term: follow it, and honour its lease like any follower (§6).
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'vote-resp':
      case 'prevote-resp': {
        const mine = this.role === 'candidate' ? 'vote-resp' : 'prevote-resp';
        if (m.type !== mine) return;
        this.tracker.recordVote(m.from, !m.reject);
        const { result } = this.tracker.tallyVotes();
        if (result === 'won') {
          if (this.role === 'pre-candidate') this.campaign('election');
          else {
            this.becomeLeader();
            bcastAppend(this, true);
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, undefined);
        }
        return;
      }
      case 'read-index':
        this.refuse(m, new NotLeaderError(undefined));
        return;
      case 'transfer-leader':
        this.refuse(m, new NotLeaderError(undefined));
        return;
      case 'hup':
      case 'beat':
      case 'check-quorum':
      case 'vote':
      case 'prevote':
      case 'app-resp':
      case 'heartbeat-resp':
      case 'snap-status':
      case 'unreachable':
      case 'timeout-now':
      case 'read-index-resp':
        return;
      default:
        return unreachable(m);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
        if (this.leader === undefined) {
          this.refuse(m, new NotLeaderError(undefined));
        } else if (this.cfg.forwardProposals && m.from === this.id) {
          this.send({ ...m, to: this.leader, term: 0 });
        } else {
          this.refuse(m, new NotLeaderError(this.leader));
        }
        return;
      case 'app':
        this.heardFromLeader(m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case 'transfer-leader':
        if (this.leader === undefined) this.refuse(m, new NotLeaderError(undefined));
        else if (m.from === this.id) this.send({ ...m, to: this.leader, term: 0 });
        return;
      case 'timeout-now':
        // Only the current leader may hand over; a stale TimeoutNow is ignored.
        if (m.from !== this.leader) return;
        this.campaign('transfer');
        return;
      case 'read-index':
        if (this.leader === undefined) this.refuse(m, new NotLeaderError(undefined));
        else if (m.from === this.id) this.send({ ...m, to: this.leader, term: 0 });
        return;
      case 'read-index-resp':
        if (!m.reject) this.readStates.push({ index: m.index, context: m.context });
        return;
      case 'hup':
      case 'beat':
      case 'check-quorum':
      case 'vote':
      case 'prevote':
      case 'vote-resp':
      case 'prevote-resp':
      case 'app-resp':
      case 'heartbeat-resp':
      case 'snap-status':
      case 'unreachable':
        return;
      default:
        return unreachable(m);
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.ticksSinceLeader = 0;
    this.leader = from;
  }

  // ---------------------------------------------------------------- follower side

  private handleAppend(m: AppMsg): void {
    const committed = this.log.committed;
    if (m.prevIndex < committed) {
      // Everything up to our commit index matches any leader's log (Leader Completeness).
      this.sendAppResp(m.from, false, committed);
      return;
    }
    const res = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (res !== undefined) {
      this.onLogWritten(res.appended);
      this.sendAppResp(m.from, false, res.lastNew);
      return;
    }
    // §5.3 with fast backtracking: tell the leader the last index whose term is at most
    // prevTerm, so it can skip a whole conflicting term per round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    this.send({
      type: 'app-resp',
      from: this.id,
      to: m.from,
      term: this.term,
      reject: true,
      index: m.prevIndex,
      hintIndex: hint.index,
      hintTerm: hint.term,
    });
  }

  private sendAppResp(to: NodeId, reject: boolean, index: Index): void {
    this.send({
      type: 'app-resp',
      from: this.id,
      to,
      term: this.term,
      reject,
      index,
      hintIndex: 0,
      hintTerm: 0,
    });
  }

  private handleHeartbeat(m: HeartbeatMsg): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeat-resp', from: this.id, to: m.from, term: this.term, context: m.context });
  }

  private handleSnapshot(m: SnapMsg): void {
    if (this.restore(m.snapshot)) this.sendAppResp(m.from, false, this.log.lastIndex());
    else this.sendAppResp(m.from, false, this.log.committed);
  }

  /**
   * §7 InstallSnapshot on a follower. Returns true if the snapshot replaced the log; false
   * if it was stale or our log already contains its last entry (then the log is kept and
   * only the commit index moves).
   */
  restore(s: Snapshot): boolean {
    const { index, term } = s.meta;
    if (index <= this.log.committed) return false;
    if (this.role !== 'follower') return false;
    if (this.log.matchTerm(index, term)) {
      // Our log holds the snapshot's last entry: keep the suffix that follows it.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(s);
    this.confs = [{ index, conf: s.meta.conf }];
    this.applyConf();
    return true;
  }

  // ---------------------------------------------------------------- leader side

  /** Appends entries as leader; `count`: whether they count toward back-pressure. */
  appendEntries(ents: readonly Entry[], count: boolean): Index {
    let last = this.log.lastIndex();
    const size = count ? ents.reduce((s, e) => s + e.data.byteLength, 0) : 0;
    if (count && this.cfg.maxUncommittedBytes > 0 && this.uncommittedSize > 0) {
      if (this.uncommittedSize + size > this.cfg.maxUncommittedBytes) {
        throw new RaftError(
          'BACK_PRESSURE',
          `too many uncommitted bytes (${this.uncommittedSize} + ${size} > ${this.cfg.maxUncommittedBytes})`,
        );
      }
    }
    this.uncommittedSize += size;
    const stamped: Entry[] = new Array<Entry>(ents.length);
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      stamped[i] = { term: this.term, index: ++last, type: e.type, data: e.data };
    }
    this.log.append(stamped);
    this.onLogWritten(stamped);
    // The leader counts itself only once the entries are persisted (see advance()).
    return last;
  }

  /** Releases back-pressure for entries now committed and handed to the application. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.uncommittedSize === 0) return;
    let s = 0;
    for (const e of ents) s += e.data.byteLength;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - s);
  }

  private leaderPropose(m: PropMsg): void {
    if (m.entries.length === 0) {
      this.refuse(m, new RaftError('BAD_REQUEST', 'a proposal needs at least one entry'));
      return;
    }
    if (!this.tracker.progress.has(this.id)) {
      // Removed from the configuration: we are only finishing the change (§6).
      this.refuse(m, new RaftError('PROPOSAL_DROPPED', 'this leader is being removed from the cluster'));
      return;
    }
    if (this.leadTransferee !== undefined) {
      this.refuse(
        m,
        new RaftError('TRANSFER_IN_PROGRESS', `leadership is being transferred to ${this.leadTransferee}`),
      );
      return;
    }
    for (const e of m.entries) {
      if (e.type !== 'conf') continue;
      const err = this.checkConfChange(e);
      if (err) {
        this.refuse(m, err);
        return;
      }
    }
    try {
      this.appendEntries(m.entries, true);
    } catch (e) {
      if (e instanceof RaftError) {
        this.refuse(m, e);
        return;
      }
      throw e;
    }
    for (const e of m.entries) if (e.type === 'conf') this.pendingConfIndex = this.log.lastIndex();
    bcastAppend(this, false);
  }

  private checkConfChange(e: Entry): RaftError | undefined {
    if (this.pendingConfIndex > this.log.committed) {
      return new RaftError(
        'CONF_CHANGE_IN_PROGRESS',
        `a membership change (index ${this.pendingConfIndex}) is not committed yet`,
      );
    }
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch (err) {
      return err as RaftError;
    }
    const conf = this.currentConf();
    if (isJoint(conf) && !cc.leaveJoint) {
      return new RaftError('CONF_CHANGE_IN_PROGRESS', 'the joint configuration has not been left yet');
    }
    try {
      applyConfChange(conf, cc);
    } catch (err) {
      return err as RaftError;
    }
    return undefined;
  }

  /** Commit as far as a quorum allows (the caller tells followers); act on membership. */
  maybeCommit(): boolean {
    const q = this.tracker.committed();
    const moved = this.bugs.commitPreviousTerm
      ? q > this.log.committed && (this.log.commitTo(Math.min(q, this.log.lastIndex())), true)
      : this.log.maybeCommit(q, this.term);
    if (!moved) return false;
    this.onLeaderCommit();
    // Stepping down on removal ends our part: the caller must not broadcast as a follower.
    return this.role === 'leader';
  }

  private onLeaderCommit(): void {
    // Forget membership points that can no longer change.
    while (this.confs.length > 1 && this.confs[1]!.index <= this.log.committed) this.confs.shift();
    const conf = this.currentConf();
    const confIndex = this.currentConfIndex();
    if (confIndex <= this.log.committed) {
      if (isJoint(conf) && this.pendingConfIndex <= this.log.committed) {
        // §6: once C_old,new commits, the leader appends C_new.
        this.appendEntries(
          [{ term: 0, index: 0, type: 'conf', data: encodeConfChange({ changes: [], leaveJoint: true }) }],
          false,
        );
        this.pendingConfIndex = this.log.lastIndex();
      } else if (!confHasVoter(conf, this.id)) {
        // §6: a leader not in C_new steps down once C_new commits; hand over to the most
        // caught-up voter so the cluster does not wait an election timeout.
        let best: NodeId | undefined;
        let bestMatch = -1;
        for (const id of this.tracker.voterIds()) {
          const pr = this.tracker.progress.get(id);
          if (pr && pr.match > bestMatch) {
            best = id;
            bestMatch = pr.match;
          }
        }
        bcastAppend(this, true);
        if (best !== undefined && bestMatch === this.log.lastIndex()) sendTimeoutNow(this, best);
        this.becomeFollower(this.term, undefined);
        return;
      }
    }
    this.releasePendingReads();
  }

  /** §8: reads wait until the leader has committed an entry of its own term. */
  committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private releasePendingReads(): void {
    if (this.pendingReads.length === 0 || !this.committedInTerm()) return;
    const reads = this.pendingReads;
    this.pendingReads = [];
    for (const m of reads) this.leaderReadIndex(m);
  }

  private leaderReadIndex(m: ReadIndexMsg): void {
    if (!this.committedInTerm()) {
      this.pendingReads.push(m);
      return;
    }
    const index = this.log.committed;
    if (this.tracker.voterIds().length === 1 && this.tracker.isVoter(this.id)) {
      this.answerRead(m.from, m.context, index);
      return;
    }
    if (m.lease === true && this.leaseValid()) {
      this.answerRead(m.from, m.context, index);
      return;
    }
    if (this.readOnly.add({ context: m.context, index, from: m.from })) bcastHeartbeat(this);
  }

  /** True while the leader's lease (see read-only.ts) guarantees no other leader exists. */
  leaseValid(): boolean {
    if (!this.cfg.checkQuorum || this.leaseRevoked || this.leadTransferee !== undefined) return false;
    return this.now < this.readOnly.confirmedStart + this.cfg.electionTicks - this.cfg.leaseMarginTicks;
  }

  answerRead(to: NodeId, context: Uint8Array, index: Index): void {
    if (to === this.id) this.readStates.push({ index, context });
    else
      this.send({
        type: 'read-index-resp',
        from: this.id,
        to,
        term: this.term,
        index,
        context,
        reject: false,
      });
  }

  private leaderTransfer(transferee: NodeId, from: NodeId): void {
    const pr = this.tracker.progress.get(transferee);
    if (!pr || pr.isLearner) {
      if (from === this.id) throw new RaftError('BAD_REQUEST', `${transferee} is not a voter`);
      return;
    }
    if (transferee === this.id) return;
    if (this.leadTransferee === transferee) return;
    this.abortLeaderTransfer();
    // The transfer must finish within one election timeout (checked in tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) sendTimeoutNow(this, transferee);
    else maybeSendAppend(this, transferee, true);
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = undefined;
  }

  // ---------------------------------------------------------------- durability feedback

  /**
   * Highest index durably persisted locally and still part of our log: everything before the
   * unstable tail. The leader counts itself toward a quorum only up to here.
   */
  persistedIndex(): Index {
    return this.log.unstable.offset - 1;
  }

  /** A batch was persisted (the unstable log already moved); a leader counts its own copy. */
  onPersisted(): void {
    if (this.role !== 'leader') return;
    const self = this.tracker.progress.get(this.id);
    if (self && self.maybeUpdate(this.persistedIndex())) {
      if (this.maybeCommit()) bcastAppend(this, !this.cfg.lazyCommit);
    }
  }
}
