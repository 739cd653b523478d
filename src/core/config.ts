import { ConfigError } from '../errors.js';
import type { LogStorage } from './log-storage.js';
import type { Index, NodeId } from './messages.js';
import { SeededRand, hashString, type Rand } from './rand.js';

/**
 * Configuration of one Raft core. A documented plain object, resolved once by
 * {@link resolveConfig} (STYLE.md convention 15).
 */
export interface RaftConfig {
  /** This server's name. Must be non-empty. */
  readonly id: NodeId;
  /** Where the durable log, hard state and membership are read from. */
  readonly storage: LogStorage;
  /**
   * Election timeout T in ticks. A follower campaigns after a random timeout in [T, 2T)
   * ticks without hearing from a leader (§5.2). Default 10.
   */
  readonly electionTicks?: number;
  /** A leader sends heartbeats every this many ticks. Must be below `electionTicks`. Default 1. */
  readonly heartbeatTicks?: number;
  /** The index the state machine has already applied (on restart). Default: none. */
  readonly applied?: Index;
  /** Upper bound in bytes of the entries in one append message. Default 1 MiB. */
  readonly maxSizePerMsg?: number;
  /** At most this many append messages in flight per follower (pipelining window). Default 256. */
  readonly maxInflightMsgs?: number;
  /** At most this many bytes in flight per follower; 0 means no byte limit. Default 0. */
  readonly maxInflightBytes?: number;
  /**
   * A leader refuses proposals (`BACK_PRESSURE`) while more than this many bytes of
   * entries are uncommitted. 0 means unlimited. Default 64 MiB.
   */
  readonly maxUncommittedBytes?: number;
  /** At most this many bytes of committed entries in one `Ready`. Default 64 MiB. */
  readonly maxCommittedBytesPerReady?: number;
  /** Run a PreVote round before a real election (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** A leader steps down if it has not heard from a quorum within an election timeout. Default true. */
  readonly checkQuorum?: boolean;
  /**
   * Ticks the leader subtracts from its lease to allow for clocks (tick rates) that run at
   * different speeds on different servers. Lease reads are only safe if, over one election
   * timeout, no server's ticks run faster than the leader's by more than this. Default
   * `ceil(electionTicks / 5)` (a 20% drift bound).
   */
  readonly leaseMarginTicks?: number;
  /** A follower forwards proposals to the leader instead of refusing them. Default false. */
  readonly forwardProposals?: boolean;
  /**
   * When the commit index moves, tell followers with the next append or at the next tick
   * instead of with an immediate empty append. Under closed-loop load this halves the
   * messages per batch; followers learn a commit up to one tick later (their linearizable
   * reads are unaffected: the confirming heartbeat carries the commit). Default false.
   */
  readonly lazyCommit?: boolean;
  /** Seeded randomness for election timeouts. Default: seeded from a hash of `id`. */
  readonly rand?: Rand;
}

/** A {@link RaftConfig} with every default filled in. */
export interface ResolvedConfig {
  readonly id: NodeId;
  readonly storage: LogStorage;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly applied: Index;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
  readonly maxUncommittedBytes: number;
  readonly maxCommittedBytesPerReady: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly leaseMarginTicks: number;
  readonly forwardProposals: boolean;
  readonly lazyCommit: boolean;
  readonly rand: Rand;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new ConfigError(`${name} must be a positive integer (got ${v})`);
  return v;
}

function nonNegativeInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0)
    throw new ConfigError(`${name} must be a non-negative integer (got ${v})`);
  return v;
}

/** Fills in defaults and checks every rule; throws {@link ConfigError} naming the rule broken. */
export function resolveConfig(c: RaftConfig): ResolvedConfig {
  if (typeof c.id !== 'string' || c.id === '') throw new ConfigError('id must be a non-empty string');
  if (!c.storage) throw new ConfigError('storage is required');
  const electionTicks = positiveInt('electionTicks', c.electionTicks ?? 10);
  const heartbeatTicks = positiveInt('heartbeatTicks', c.heartbeatTicks ?? 1);
  if (electionTicks <= heartbeatTicks) {
    throw new ConfigError('electionTicks must be greater than heartbeatTicks');
  }
  const leaseMarginTicks = nonNegativeInt(
    'leaseMarginTicks',
    c.leaseMarginTicks ?? Math.ceil(electionTicks / 5),
  );
  if (leaseMarginTicks >= electionTicks)
    throw new ConfigError('leaseMarginTicks must be below electionTicks');
  return {
    id: c.id,
    storage: c.storage,
    electionTicks,
    heartbeatTicks,
    applied: nonNegativeInt('applied', c.applied ?? 0),
    maxSizePerMsg: positiveInt('maxSizePerMsg', c.maxSizePerMsg ?? 1024 * 1024),
    maxInflightMsgs: positiveInt('maxInflightMsgs', c.maxInflightMsgs ?? 256),
    maxInflightBytes: nonNegativeInt('maxInflightBytes', c.maxInflightBytes ?? 0),
    maxUncommittedBytes: nonNegativeInt('maxUncommittedBytes', c.maxUncommittedBytes ?? 64 * 1024 * 1024),
    maxCommittedBytesPerReady: positiveInt(
      'maxCommittedBytesPerReady',
      c.maxCommittedBytesPerReady ?? 64 * 1024 * 1024,
    ),
    preVote: c.preVote ?? true,
    checkQuorum: c.checkQuorum ?? true,
    leaseMarginTicks,
    forwardProposals: c.forwardProposals ?? false,
    lazyCommit: c.lazyCommit ?? false,
    rand: c.rand ?? new SeededRand(hashString(c.id)),
  };
}
