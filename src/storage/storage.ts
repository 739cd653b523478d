import type { Entry, HardState, Index, Snapshot, SnapshotMeta } from '../core/messages.js';
import type { LogStorage } from '../core/log-storage.js';

/**
 * A snapshot's bytes: all in memory, or a stream of chunks read once (a large state machine
 * produces its snapshot piece by piece from an immutable view, so it is never whole in memory).
 */
export type SnapshotData = Uint8Array | AsyncIterable<Uint8Array>;

/** A snapshot the state machine took, for {@link Storage.saveSnapshot}. */
export interface SnapshotToSave {
  readonly meta: SnapshotMeta;
  readonly data: SnapshotData;
}

/**
 * The current snapshot opened for reading (to send it to a follower, or to restore the state
 * machine from it). The bytes are checked against the stored checksum as they are read: a
 * mismatch ends the iteration with `RaftError('CORRUPT_LOG')`, never with bad bytes.
 *
 * Iterate `chunks` once, or `close()` it: a reader keeps its snapshot readable even if a newer
 * one replaces it meanwhile.
 */
export interface SnapshotReader {
  readonly meta: SnapshotMeta;
  /** Total bytes `chunks` yields. */
  readonly size: number;
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Release the snapshot without (or before) reading it all. Idempotent. */
  close(): void;
}

/**
 * Snapshot bytes being received from a leader (InstallSnapshot, §7). Write them in order,
 * then {@link finish}; nothing is installed until a `save()` names the result.
 */
export interface SnapshotReceiver {
  /** Append the next chunk. */
  write(chunk: Uint8Array): Promise<void>;
  /** Every byte arrived: make them durable (not installed) and return the handle. */
  finish(): Promise<ReceivedSnapshot>;
  /** Give up (a dropped connection, a bad checksum): remove what was written. Idempotent. */
  abort(): Promise<void>;
}

/**
 * Received snapshot bytes, durable but not installed. Pass it as `StorageUpdate.received` with
 * the snapshot it belongs to, or {@link discard} it. A crash before either leaves garbage the
 * next open removes.
 */
export interface ReceivedSnapshot {
  readonly meta: SnapshotMeta;
  readonly size: number;
  /** Remove the bytes (the snapshot was stale, or superseded). Idempotent. */
  discard(): Promise<void>;
}

/**
 * One durable write: what a `Ready` batch asks to persist. Applied in this order:
 * snapshot (if any: replaces the log up to its index), then entries (an entry whose index
 * is already present truncates that index and everything after it first: the conflicting
 * suffix, §5.3), then the hard state. All of it is durable when `save()` resolves.
 */
export interface StorageUpdate {
  readonly hardState?: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot | undefined;
  /**
   * The bytes of `snapshot`, received earlier through {@link Storage.receiveSnapshot} (its
   * `data` is then ignored): installing them moves a file instead of writing the bytes again.
   */
  readonly received?: ReceivedSnapshot | undefined;
}

/**
 * The storage contract: the core's synchronous read view plus asynchronous durable writes.
 *
 * Implementations: `MemoryStorage` (the in-memory twin, for tests and the simulator) and
 * `FileStorage` (write-ahead log on disk). Both are checked by the same conformance suite,
 * `runStorageSuite` in `tsraft/testing`.
 *
 * Snapshots (§7) may be larger than memory should hold: they are saved from a stream
 * ({@link saveSnapshot}), read as a stream ({@link readSnapshot}) and received as a stream
 * ({@link receiveSnapshot}). `snapshot().data` (the core's view) may load the bytes on access;
 * the node itself never asks for it.
 *
 * Fail-stop: once a write fails (ENOSPC, EIO, EROFS...), that `save()` rejects with
 * `RaftError('STORAGE_FAILED')` and so does every later write; nothing is acknowledged again.
 */
export interface Storage extends LogStorage {
  /** Persist one batch with a single sync (group commit). Reads reflect it once it resolves. */
  save(update: StorageUpdate): Promise<void>;
  /**
   * Record a snapshot taken by the state machine at `snapshot.meta.index` (which must be in
   * the log and at or below the commit index), then drop log entries at or below
   * `compactTo` (<= snapshot index; defaults to it). Crash-safe: a crash leaves either the
   * old or the new state. Appends keep going while the bytes are written; a snapshot no newer
   * than the current one when the write completes is not recorded (the compaction still is).
   * An error from a streamed `data` rejects this call only; a disk error is fail-stop.
   */
  saveSnapshot(snapshot: SnapshotToSave, compactTo?: Index): Promise<void>;
  /** Open the current snapshot's bytes as a stream of chunks (at most `chunkSize` each). */
  readSnapshot(chunkSize?: number): SnapshotReader;
  /** Start receiving the bytes of a snapshot described by `meta` (see {@link SnapshotReceiver}). */
  receiveSnapshot(meta: SnapshotMeta): SnapshotReceiver;
  /** Release files and locks. Idempotent. */
  close(): Promise<void>;
}

/** Default chunk size of {@link Storage.readSnapshot}: 1 MiB. */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20;

/** Reads a whole {@link SnapshotData} into one buffer (small snapshots, tests). */
export async function collectSnapshotData(data: SnapshotData): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  const parts: Uint8Array[] = [];
  for await (const c of data) parts.push(c);
  return concatBytes(parts);
}

/** One buffer holding `parts` in order (no copy for a single part). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
