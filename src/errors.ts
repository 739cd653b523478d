/**
 * The one error catalogue of tsraft (STYLE.md convention 6).
 *
 * Every error tsraft raises on purpose is a {@link RaftError} whose `code` is one of
 * {@link RaftErrorCode}. Each code's documentation says what the caller may conclude
 * from it: whether the operation may have taken effect, and whether a retry is safe.
 */

/** Every code a {@link RaftError} may carry. */
export type RaftErrorCode =
  /** This node is not the leader. The proposal was NOT appended; retry on the leader (`leaderHint`). */
  | 'NOT_LEADER'
  /** The proposal was dropped before being appended (e.g. no leader known). Safe to retry. */
  | 'PROPOSAL_DROPPED'
  /** The leader has too many uncommitted bytes outstanding. NOT appended; retry after a back-off. */
  | 'BACK_PRESSURE'
  /** A leadership transfer is in progress; proposals are refused until it ends. NOT appended; retry later. */
  | 'TRANSFER_IN_PROGRESS'
  /** A membership change is already pending; only one may be in flight. NOT appended. */
  | 'CONF_CHANGE_IN_PROGRESS'
  /** The requested log index was compacted into a snapshot. */
  | 'COMPACTED'
  /** The requested log entries are not (yet) available from storage. */
  | 'UNAVAILABLE'
  /** The requested snapshot is temporarily unavailable; the leader will retry. */
  | 'SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  /** A log or snapshot file failed its checksum or is structurally broken. The node refuses to start. */
  | 'CORRUPT_LOG'
  /** A write to durable storage failed (ENOSPC, EIO, ...). The node stops acknowledging anything (fail-stop). */
  | 'STORAGE_FAILED'
  /** Another process holds the data directory. */
  | 'DIR_LOCKED'
  /** An on-disk format this version does not understand. */
  | 'UNSUPPORTED_FORMAT'
  /** The node was stopped. An in-flight proposal MAY have been applied: outcome unknown. */
  | 'STOPPED'
  /** The operation timed out. It MAY have been applied: outcome unknown. */
  | 'TIMEOUT'
  /** A configuration value broke a rule; the message names the rule. */
  | 'CONFIG_INVALID'
  /** A request was malformed. Nothing was applied. */
  | 'BAD_REQUEST'
  /** An internal invariant broke. The node stops; this is a bug. */
  | 'INVARIANT';

/** Base class of every error tsraft raises on purpose. */
export class RaftError extends Error {
  override name = 'RaftError';
  constructor(
    readonly code: RaftErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Refused because this node is not the leader; `leaderHint` names the leader if one is known. */
export class NotLeaderError extends RaftError {
  override name = 'NotLeaderError';
  constructor(
    readonly leaderHint: string | undefined,
    message = leaderHint === undefined
      ? 'not the leader; no leader known'
      : `not the leader; leader is ${leaderHint}`,
  ) {
    super('NOT_LEADER', message);
  }
}

/** A configuration value broke the named rule. */
export class ConfigError extends RaftError {
  override name = 'ConfigError';
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

/** Durable data is corrupt; `file` and `offset` say where. */
export class CorruptionError extends RaftError {
  override name = 'CorruptionError';
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super('CORRUPT_LOG', `${file} at byte offset ${offset}: ${reason}`);
  }
}

/** True when `e` is a RaftError carrying `code`. */
export function isRaftError(e: unknown, code?: RaftErrorCode): e is RaftError {
  return e instanceof RaftError && (code === undefined || e.code === code);
}
