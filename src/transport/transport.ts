import type { Message, NodeId, SnapMsg } from '../core/messages.js';

/** Called for every message that arrives from a peer. Must not throw. */
export type MessageHandler = (m: Message) => void;

/** What a transport reports about its peers (for logs, metrics and the core's flow control). */
export interface TransportEvents {
  /** A send to `peer` failed or its link went down: the node calls `reportUnreachable`. */
  onUnreachable?(peer: NodeId): void;
  /** A link to `peer` came up / went down (for structured logs). */
  onLinkChange?(peer: NodeId, up: boolean): void;
  /**
   * A snapshot message to `peer` was delivered (`ok`: for a streamed one, received, checked
   * and taken in by the peer) or lost: the node calls `reportSnapshot`.
   */
  onSnapshotSent?(peer: NodeId, ok: boolean): void;
}

/** The bytes of a snapshot to stream to a peer: read lazily, once, in chunks. */
export interface SnapshotPayload {
  /** Total bytes `chunks` yields. */
  readonly size: number;
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Called once when the transport is done with `chunks` (sent, failed or abandoned). */
  release?(): void;
}

/**
 * Where a transport that streams snapshots delivers incoming ones (the node provides it).
 * The transport checks every chunk and the whole stream against their checksums before
 * calling `finish`.
 */
export interface SnapshotSink {
  /**
   * A snapshot stream from `m.from` begins: `m` is the InstallSnapshot message (its
   * `snapshot.data` empty) and `size` bytes follow. Returns where to put them, or `undefined`
   * to refuse the stream (the sender is told it failed).
   */
  begin(m: SnapMsg, size: number): IncomingSnapshot | undefined;
}

/** One snapshot being received (see {@link SnapshotSink}). */
export interface IncomingSnapshot {
  /** The next chunk, in order. The transport waits for it before writing more. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Every byte arrived and checked: make them durable and step the message. Resolves once the
   * node has taken the snapshot in (the sender is then told it was delivered), rejects to
   * tell the sender it failed.
   */
  finish(): Promise<void>;
  /** The stream broke (connection lost, bad checksum): drop what was received. */
  abort(reason: string): void;
}

/**
 * Moves core messages between servers. Implementations: `TcpTransport` (real peers) and
 * `MemoryTransport` (tests), both checked by the shared transport suite.
 *
 * Contract:
 * - `send()` never blocks and never throws for an unreachable peer: messages to a slow or
 *   dead peer are queued within a bound, then dropped (Raft retries), and never delay
 *   messages to other peers.
 * - Messages to one peer arrive in the order sent, or not at all (per-link FIFO).
 * - Messages from unauthenticated or malformed sources are never delivered.
 */
export interface Transport {
  /** This server's name. */
  readonly id: NodeId;
  /**
   * Start accepting connections and deliver incoming messages to `handler`; a transport that
   * streams snapshots delivers them to `snapshots` instead (when given).
   */
  start(handler: MessageHandler, snapshots?: SnapshotSink): Promise<void>;
  /** Queue messages for their `to` peers. */
  send(msgs: readonly Message[]): void;
  /**
   * Optional power: send an InstallSnapshot message whose bytes stream from `payload` in
   * chunks (bounded memory on both sides, interleaved with other messages to that peer, never
   * delaying other peers). The outcome is reported through `onSnapshotSent`: `ok` once the
   * peer has received, checked and taken in the whole snapshot. Without this method the node
   * sends snapshots inline, as one message.
   */
  sendSnapshot?(m: SnapMsg, payload: SnapshotPayload): void;
  /** Add or update a peer's address (e.g. `tcp://127.0.0.1:2380` or `127.0.0.1:2380`). */
  addPeer(id: NodeId, address: string): void;
  /** Forget a peer and close its link. */
  removePeer(id: NodeId): void;
  /** Close every link and the listener. Idempotent. */
  close(): Promise<void>;
}
