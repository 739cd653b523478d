/**
 * The vocabulary of the core: log entries, persistent state, membership and the
 * one discriminated union of messages (STYLE.md convention 2).
 *
 * Node identity: {@link NodeId} is a `string` (the `--name` of a server, e.g. `"n1"`).
 * "No node" / "no leader" is `undefined`, never an empty string.
 */

/** A position in the replicated log; the first real entry has index 1. */
export type Index = number;
/** A Raft term (§5.1); terms start at 0 and only grow. */
export type Term = number;
/** The name of a server; unique within a cluster. */
export type NodeId = string;

/** What an entry carries. */
export type EntryType =
  /** An opaque command for the state machine (an empty one is the leader's no-op, §8). */
  | 'normal'
  /** A membership change: `data` is an encoded {@link ConfChange} (see membership.ts). */
  | 'conf';

/** One log entry. `data` is opaque bytes the core never inspects (except for `conf` entries). */
export interface Entry {
  readonly term: Term;
  readonly index: Index;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** The state a server must persist before answering anything (Figure 2 "persistent state"). */
export interface HardState {
  readonly term: Term;
  /** Who this server voted for in `term`, if anyone. */
  readonly vote: NodeId | undefined;
  /** The highest index known committed. Persisted so a restart need not re-learn it. */
  readonly commit: Index;
}

/**
 * A cluster membership (§6). In a joint configuration C_old,new, `voters` is C_new and
 * `outgoing` is C_old (non-empty only while joint). Learners receive the log but never vote.
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  /** C_old while in joint consensus; empty otherwise. */
  readonly outgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /**
   * Learners that become voters when the joint configuration is left (a voter demoted to a
   * learner stays a voter of C_old until then).
   */
  readonly learnersNext: readonly NodeId[];
}

/** What a snapshot covers: everything up to and including `index` (§7). */
export interface SnapshotMeta {
  readonly index: Index;
  readonly term: Term;
  /** The membership as of `index`. */
  readonly conf: ConfState;
}

/** A snapshot: its metadata and the state machine's bytes. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** One change to membership. */
export type ConfChangeOp = 'add-voter' | 'add-learner' | 'remove';

/** A single-node step within a {@link ConfChange}. */
export interface ConfChangeItem {
  readonly op: ConfChangeOp;
  readonly node: NodeId;
}

/**
 * A membership change. One item that adds or removes one voter may take the simple path;
 * anything else goes through joint consensus C_old,new → C_new (§6). `leaveJoint` is the
 * (empty) change the leader appends to move from C_old,new to C_new.
 */
export interface ConfChange {
  readonly changes: readonly ConfChangeItem[];
  /** Force joint consensus even for a single change. */
  readonly joint?: boolean;
  /** The transition out of a joint configuration; `changes` is empty. */
  readonly leaveJoint?: boolean;
}

/** A read request confirmed safe to serve once the state machine applied `index` (§8 ReadIndex). */
export interface ReadState {
  readonly index: Index;
  readonly context: Uint8Array;
}

/** Fields every message carries. */
interface Base {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term; 0 for local messages that carry no term. */
  readonly term: Term;
}

/** Local: start an election (the election timer fired, or `campaign()` was called). */
export interface HupMsg extends Base {
  readonly type: 'hup';
  /** Set when leadership is being transferred to us (TimeoutNow): skip PreVote and leases. */
  readonly transfer?: boolean;
}
/** Local: the heartbeat timer fired on a leader. */
export interface BeatMsg extends Base {
  readonly type: 'beat';
}
/** Local: a leader checks whether a quorum is still active (CheckQuorum). */
export interface CheckQuorumMsg extends Base {
  readonly type: 'check-quorum';
}
/** A client proposal, local or forwarded by a follower. Entries have no term/index yet. */
export interface PropMsg extends Base {
  readonly type: 'prop';
  readonly entries: readonly Entry[];
}
/** RequestVote (§5.2) or its PreVote form (§9.6 of the thesis). */
export interface VoteMsg extends Base {
  readonly type: 'vote' | 'prevote';
  readonly lastLogIndex: Index;
  readonly lastLogTerm: Term;
  /** The election was triggered by a leadership transfer: ignore the leader lease. */
  readonly transfer?: boolean;
}
/** Answer to a (pre)vote. For a granted PreVote, `term` is the term the candidate asked for. */
export interface VoteRespMsg extends Base {
  readonly type: 'vote-resp' | 'prevote-resp';
  readonly reject: boolean;
}
/** AppendEntries (§5.3). An empty `entries` is still a consistency probe. */
export interface AppMsg extends Base {
  readonly type: 'app';
  /** Index and term of the entry just before `entries`. */
  readonly prevIndex: Index;
  readonly prevTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: Index;
}
/** Answer to AppendEntries. On reject, `hintIndex`/`hintTerm` let the leader skip a whole term. */
export interface AppRespMsg extends Base {
  readonly type: 'app-resp';
  readonly reject: boolean;
  /** On success: the follower's last index matching the leader. On reject: the rejected prevIndex. */
  readonly index: Index;
  /** On reject: the follower's best guess of the largest index that may match. */
  readonly hintIndex: Index;
  /** On reject: the term of the follower's entry at `hintIndex` (0 if none). */
  readonly hintTerm: Term;
}
/** Heartbeat: keeps followers from campaigning and carries the commit index. */
export interface HeartbeatMsg extends Base {
  readonly type: 'heartbeat';
  /** min(leader commit, follower match): never past what the follower is known to hold. */
  readonly commit: Index;
  /** Non-empty when this heartbeat round confirms leadership for a ReadIndex request. */
  readonly context: Uint8Array;
}
export interface HeartbeatRespMsg extends Base {
  readonly type: 'heartbeat-resp';
  readonly context: Uint8Array;
}
/** InstallSnapshot (§7). */
export interface SnapMsg extends Base {
  readonly type: 'snap';
  readonly snapshot: Snapshot;
}
/** Local: the node reports whether sending a snapshot to `from` succeeded. */
export interface SnapStatusMsg extends Base {
  readonly type: 'snap-status';
  readonly reject: boolean;
}
/** Local: the node reports that `from` could not be reached. */
export interface UnreachableMsg extends Base {
  readonly type: 'unreachable';
}
/** Ask the leader to hand leadership to `transferee` (may arrive forwarded from a follower). */
export interface TransferLeaderMsg extends Base {
  readonly type: 'transfer-leader';
  readonly transferee: NodeId;
}
/** The leader tells an up-to-date follower to campaign at once. */
export interface TimeoutNowMsg extends Base {
  readonly type: 'timeout-now';
}
/** A ReadIndex request (local, or forwarded from a follower to the leader). */
export interface ReadIndexMsg extends Base {
  readonly type: 'read-index';
  readonly context: Uint8Array;
  /** Serve from the leader's lease when it holds one, without a confirmation round. */
  readonly lease?: boolean;
}
/** The leader's answer to a forwarded ReadIndex request. `reject` when not leader any more. */
export interface ReadIndexRespMsg extends Base {
  readonly type: 'read-index-resp';
  readonly index: Index;
  readonly context: Uint8Array;
  readonly reject: boolean;
}

/** Every message the core sends or receives. */
export type Message =
  | HupMsg
  | BeatMsg
  | CheckQuorumMsg
  | PropMsg
  | VoteMsg
  | VoteRespMsg
  | AppMsg
  | AppRespMsg
  | HeartbeatMsg
  | HeartbeatRespMsg
  | SnapMsg
  | SnapStatusMsg
  | UnreachableMsg
  | TransferLeaderMsg
  | TimeoutNowMsg
  | ReadIndexMsg
  | ReadIndexRespMsg;

/** The `type` tag of every message. */
export type MessageType = Message['type'];

/** Messages that never cross the network. */
export function isLocalMessage(m: Message): boolean {
  return (
    m.type === 'hup' ||
    m.type === 'beat' ||
    m.type === 'check-quorum' ||
    m.type === 'snap-status' ||
    m.type === 'unreachable'
  );
}

/** Responses (their loss only slows things down; they never start anything). */
export function isResponse(m: Message): boolean {
  return (
    m.type === 'vote-resp' ||
    m.type === 'prevote-resp' ||
    m.type === 'app-resp' ||
    m.type === 'heartbeat-resp' ||
    m.type === 'read-index-resp'
  );
}

/** Encoded payload size of an entry, the unit of every byte limit. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 24;
}

/** Exhaustiveness check for `switch` over a union (`default: return unreachable(m)`). */
export function unreachable(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}

/** An empty membership. */
export const EMPTY_CONF: ConfState = Object.freeze({
  voters: [],
  outgoing: [],
  learners: [],
  learnersNext: [],
});

/** An empty hard state. */
export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: undefined, commit: 0 });
