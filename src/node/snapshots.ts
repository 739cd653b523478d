import { RaftError, isRaftError } from '../errors.js';
import { applyConfChange, decodeConfChange } from '../core/membership.js';
import type { ConfState, Entry, Index, Message, SnapMsg, SnapshotMeta, Term } from '../core/messages.js';
import type { RawNode } from '../core/raw-node.js';
import {
  SNAPSHOT_CHUNK_BYTES,
  collectSnapshotData,
  type ReceivedSnapshot,
  type SnapshotData,
  type Storage,
} from '../storage/storage.js';
import type { IncomingSnapshot, SnapshotSink, Transport } from '../transport/transport.js';
import type { Logger } from './logger.js';
import type { StateMachine } from './state-machine.js';

/**
 * When the node takes snapshots and how much log it keeps below them (§7 log compaction).
 * A snapshot is taken at the applied index once the log applied since the last one exceeds
 * `entries` entries or `bytes` bytes; the log is then compacted up to `catchUpEntries` below
 * the snapshot, so a follower only slightly behind still catches up from the log.
 */
export interface SnapshotPolicy {
  /** Entries applied since the last snapshot that trigger the next one. 0: never automatically. Default 100,000 (etcd's default). */
  readonly entries?: number;
  /** Bytes of entries applied since the last snapshot that trigger the next one. 0: no byte trigger. Default 64 MiB. */
  readonly bytes?: number;
  /** Entries kept in the log below a snapshot for slow followers. Default 5,000. */
  readonly catchUpEntries?: number;
}

/** A snapshot's position, as `RaftNode.snapshot()` and `snapshotStatus()` report it. */
export interface SnapshotInfo {
  readonly index: Index;
  readonly term: Term;
}

/** What the snapshot machinery knows, for status pages, metrics and tests. */
export interface SnapshotStatus {
  /** The newest durable snapshot. */
  readonly index: Index;
  readonly term: Term;
  /** A snapshot is being taken now (the state machine keeps applying meanwhile). */
  readonly taking: boolean;
  /** Snapshots taken / installed from a leader since the node started. */
  readonly taken: number;
  readonly installed: number;
  /** Entries and bytes applied since the last snapshot. */
  readonly entriesSince: number;
  readonly bytesSince: number;
  /** Milliseconds the last snapshot took, from capture to durable. */
  readonly lastTakeMs: number;
}

/** What {@link Snapshots} needs from the node that owns it. */
export interface SnapshotHost {
  readonly rn: RawNode;
  readonly storage: Storage;
  readonly transport: Transport;
  readonly stateMachine: StateMachine<unknown>;
  readonly log: Logger;
  /** The index the state machine has applied. */
  appliedIndex(): Index;
  /** Step a message received from a peer into the core (and schedule the loop). */
  step(m: Message): void;
  /** Schedule the loop. */
  kick(): void;
  /** Stop the node (a storage failure). */
  fatal(e: Error): void;
  /** Tell the core that sending a snapshot to `peer` finished or failed. */
  reportSnapshot(peer: string, ok: boolean): void;
  /** True once the node stopped or died. */
  stopped(): boolean;
}

const EMPTY = new Uint8Array(0);
const RESTORE_CHUNK_BYTES = 256 * 1024;
const key = (m: SnapshotMeta): string => `${m.index}/${m.term}`;

interface Waiter {
  resolve(info: SnapshotInfo): void;
  reject(e: Error): void;
}

/**
 * The node side of §7: taking snapshots at the applied index by policy or on request (the
 * bytes are written while applying continues), compacting the log, streaming snapshots to
 * followers that need them, receiving and installing a leader's snapshot, and restoring the
 * state machine from the current one.
 */
export class Snapshots implements SnapshotSink {
  private readonly entriesTrigger: number;
  private readonly bytesTrigger: number;
  private readonly catchUp: number;
  /** Membership as of the applied index (what a snapshot taken now records). */
  private conf: ConfState;
  private lastIndex: Index;
  private lastTerm: Term;
  private bytesSince = 0;
  /** No automatic attempt before this applied index (after a failure). */
  private retryAt = 0;
  private taking: Promise<void> | undefined;
  private waiters: Waiter[] = [];
  private taken = 0;
  private installed = 0;
  private lastTakeMs = 0;
  /** Snapshot bytes received from a leader, by `index/term`, until installed or discarded. */
  private readonly received = new Map<string, ReceivedSnapshot>();

  constructor(
    private readonly host: SnapshotHost,
    policy: SnapshotPolicy = {},
  ) {
    this.entriesTrigger = nonNegative('snapshot.entries', policy.entries ?? 100_000);
    this.bytesTrigger = nonNegative('snapshot.bytes', policy.bytes ?? 64 * 1024 * 1024);
    this.catchUp = nonNegative('snapshot.catchUpEntries', policy.catchUpEntries ?? 5_000);
    const meta = host.storage.snapshot().meta;
    this.conf = meta.conf;
    this.lastIndex = meta.index;
    this.lastTerm = meta.term;
  }

  /** Restores the state machine from the current snapshot (on start). */
  static async restoreStateMachine(storage: Storage, sm: StateMachine<unknown>): Promise<SnapshotMeta> {
    // Smaller chunks than for sending: parsing one is a pause in the event loop.
    const reader = storage.readSnapshot(RESTORE_CHUNK_BYTES);
    if (reader.meta.index === 0) {
      reader.close();
      return reader.meta;
    }
    try {
      if (sm.restoreStream !== undefined) await sm.restoreStream(reader.chunks);
      else await sm.restore(await collectSnapshotData(reader.chunks));
    } finally {
      reader.close();
    }
    return reader.meta;
  }

  status(): SnapshotStatus {
    return {
      index: this.lastIndex,
      term: this.lastTerm,
      taking: this.taking !== undefined,
      taken: this.taken,
      installed: this.installed,
      entriesSince: this.host.appliedIndex() - this.lastIndex,
      bytesSince: this.bytesSince,
      lastTakeMs: this.lastTakeMs,
    };
  }

  // ---------------------------------------------------------------- applying

  /** Committed entries were applied (the node calls this right after `apply`). */
  onApplied(entries: readonly Entry[]): void {
    for (const e of entries) {
      this.bytesSince += e.data.byteLength;
      if (e.type !== 'conf') continue;
      try {
        this.conf = applyConfChange(this.conf, decodeConfChange(e.data));
      } catch {
        // A malformed or inapplicable change is a no-op everywhere (as in the core).
      }
    }
  }

  // ---------------------------------------------------------------- taking

  /** Ask for a snapshot at the applied index; resolves once it is durable. */
  request(): Promise<SnapshotInfo> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.host.kick();
    });
  }

  /** Fails every waiting request (the node stopped). */
  failAll(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** True while a snapshot is being written. */
  get busy(): boolean {
    return this.taking !== undefined;
  }

  /** Resolves once no snapshot is being written. */
  async idle(): Promise<void> {
    while (this.taking !== undefined) await this.taking;
  }

  /**
   * Called by the loop between Ready batches, when the state machine is exactly at the applied
   * index: starts a snapshot if one was asked for or the policy says so.
   */
  maybeTake(): void {
    if (this.taking !== undefined || this.host.stopped()) return;
    const applied = this.host.appliedIndex();
    const since = applied - this.lastIndex;
    const due =
      this.waiters.length > 0 ||
      (applied >= this.retryAt &&
        since > 0 &&
        ((this.entriesTrigger > 0 && since >= this.entriesTrigger) ||
          (this.bytesTrigger > 0 && this.bytesSince >= this.bytesTrigger)));
    if (!due) return;
    const served = this.waiters.splice(0);
    if (since <= 0) {
      for (const w of served) w.resolve({ index: this.lastIndex, term: this.lastTerm });
      return;
    }
    const started = Date.now();
    let meta: SnapshotMeta;
    let data: Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>;
    try {
      const term = this.host.rn.raft.log.term(applied);
      if (term === undefined)
        throw new RaftError('INVARIANT', `the term of applied index ${applied} is unknown`);
      meta = { index: applied, term, conf: this.conf };
      // Captured now, between applies; the bytes are produced and written while applying goes on.
      data = this.host.stateMachine.snapshot();
    } catch (e) {
      for (const w of served) w.reject(e as Error);
      this.retryAt = applied + Math.max(1, this.entriesTrigger);
      this.host.log('warn', 'snapshot-failed', { index: applied, error: (e as Error).message });
      return;
    }
    const bytesAtCapture = this.bytesSince;
    const compactTo = Math.max(0, meta.index - this.catchUp);
    this.host.log('info', 'snapshot-begin', { index: meta.index, term: meta.term });
    this.taking = (async () => {
      try {
        const bytes: SnapshotData = data instanceof Promise ? await data : data;
        await this.host.storage.saveSnapshot({ meta, data: bytes }, compactTo);
        if (meta.index > this.lastIndex) {
          this.lastIndex = meta.index;
          this.lastTerm = meta.term;
          this.bytesSince = Math.max(0, this.bytesSince - bytesAtCapture);
        }
        this.taken++;
        this.lastTakeMs = Date.now() - started;
        this.host.log('info', 'snapshot-taken', {
          index: meta.index,
          term: meta.term,
          compactedTo: this.host.storage.firstIndex() - 1,
          ms: this.lastTakeMs,
        });
        for (const w of served) w.resolve({ index: this.lastIndex, term: this.lastTerm });
      } catch (e) {
        this.retryAt = meta.index + Math.max(1, this.entriesTrigger);
        this.host.log('warn', 'snapshot-failed', { index: meta.index, error: (e as Error).message });
        for (const w of served) w.reject(e as Error);
        if (isRaftError(e, 'STORAGE_FAILED')) this.host.fatal(e);
      } finally {
        this.taking = undefined;
        this.host.kick();
      }
    })();
  }

  // ---------------------------------------------------------------- sending

  /**
   * Sends an InstallSnapshot message the core produced. The bytes stream from storage (the
   * current snapshot, which may be newer than the one the core named: it is committed state
   * all the same); a transport that cannot stream gets them inline.
   */
  send(m: SnapMsg): void {
    const h = this.host;
    const reader = h.storage.readSnapshot(SNAPSHOT_CHUNK_BYTES);
    if (reader.meta.index === 0) {
      reader.close();
      h.reportSnapshot(m.to, false);
      return;
    }
    const msg: SnapMsg = { ...m, snapshot: { meta: reader.meta, data: EMPTY } };
    h.log('debug', 'snapshot-send', { to: m.to, index: reader.meta.index, bytes: reader.size });
    const t = h.transport;
    if (t.sendSnapshot !== undefined) {
      t.sendSnapshot(msg, { size: reader.size, chunks: reader.chunks, release: () => reader.close() });
      return;
    }
    collectSnapshotData(reader.chunks).then(
      (data) => t.send([{ ...msg, snapshot: { meta: reader.meta, data } }]),
      (e: unknown) => {
        reader.close();
        h.log('warn', 'snapshot-send-failed', { to: m.to, error: (e as Error).message });
        h.reportSnapshot(m.to, false);
      },
    );
  }

  // ---------------------------------------------------------------- receiving (SnapshotSink)

  /** A leader starts streaming a snapshot to us. */
  begin(m: SnapMsg, size: number): IncomingSnapshot | undefined {
    const h = this.host;
    if (h.stopped()) return undefined;
    const meta = m.snapshot.meta;
    if (meta.index <= h.rn.raft.log.committed || h.rn.raft.log.matchTerm(meta.index, meta.term)) {
      // Stale, or our log already holds its last entry (§7: keep the log): let the core answer
      // (the leader then replicates from the log) instead of receiving the bytes.
      h.step(m);
      return undefined;
    }
    const rx = h.storage.receiveSnapshot(meta);
    h.log('info', 'snapshot-receive-begin', {
      from: m.from,
      index: meta.index,
      term: meta.term,
      bytes: size,
    });
    return {
      write: (chunk) => rx.write(chunk),
      finish: async () => {
        const got = await rx.finish();
        if (h.stopped()) {
          await got.discard();
          throw new RaftError('STOPPED', 'the node stopped');
        }
        const k = key(meta);
        const prev = this.received.get(k);
        if (prev !== undefined) void prev.discard().catch(() => undefined);
        this.received.set(k, got);
        h.log('info', 'snapshot-received', { from: m.from, index: meta.index, bytes: got.size });
        h.step(m);
        // The core takes it unless stale or already covered by our log (§7): then drop the bytes.
        const pending = h.rn.raft.log.unstable.snapshot;
        if (pending === undefined || key(pending.meta) !== k) {
          this.received.delete(k);
          await got.discard();
        }
      },
      abort: (reason) => {
        h.log('warn', 'snapshot-receive-aborted', { from: m.from, index: meta.index, reason });
        void rx.abort().catch(() => undefined);
      },
    };
  }

  /** The received bytes of the snapshot a Ready asks to install, if they were streamed. */
  takeReceived(meta: SnapshotMeta): ReceivedSnapshot | undefined {
    const k = key(meta);
    const got = this.received.get(k);
    this.received.delete(k);
    // Anything older can never be installed now.
    for (const [other, r] of this.received) {
      if (r.meta.index <= meta.index) {
        this.received.delete(other);
        void r.discard().catch(() => undefined);
      }
    }
    return got;
  }

  /**
   * A leader's snapshot was persisted (its Ready): restore the state machine from it (§7: the
   * state machine is reset to the snapshot's contents).
   */
  async onInstalled(meta: SnapshotMeta): Promise<void> {
    const started = Date.now();
    await Snapshots.restoreStateMachine(this.host.storage, this.host.stateMachine);
    this.conf = meta.conf;
    this.lastIndex = meta.index;
    this.lastTerm = meta.term;
    this.bytesSince = 0;
    this.installed++;
    this.host.log('info', 'snapshot-installed', {
      index: meta.index,
      term: meta.term,
      ms: Date.now() - started,
    });
  }

  /** Drops received bytes that were never installed (the node stops). */
  async close(): Promise<void> {
    const all = [...this.received.values()];
    this.received.clear();
    await Promise.all(all.map((r) => r.discard().catch(() => undefined)));
  }
}

function nonNegative(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) {
    throw new RaftError('CONFIG_INVALID', `${name} must be a non-negative integer (got ${v})`);
  }
  return v;
}
