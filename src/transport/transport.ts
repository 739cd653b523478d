import type { Message, NodeId } from '../core/messages.js';

/** Called for every message that arrives from a peer. Must not throw. */
export type MessageHandler = (m: Message) => void;

/** What a transport reports about its peers (for logs, metrics and the core's flow control). */
export interface TransportEvents {
  /** A send to `peer` failed or its link went down: the node calls `reportUnreachable`. */
  onUnreachable?(peer: NodeId): void;
  /** A link to `peer` came up / went down (for structured logs). */
  onLinkChange?(peer: NodeId, up: boolean): void;
  /** A snapshot message to `peer` was delivered (`ok`) or lost: the node calls `reportSnapshot`. */
  onSnapshotSent?(peer: NodeId, ok: boolean): void;
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
  /** Start accepting connections and deliver incoming messages to `handler`. */
  start(handler: MessageHandler): Promise<void>;
  /** Queue messages for their `to` peers. */
  send(msgs: readonly Message[]): void;
  /** Add or update a peer's address (e.g. `tcp://127.0.0.1:2380` or `127.0.0.1:2380`). */
  addPeer(id: NodeId, address: string): void;
  /** Forget a peer and close its link. */
  removePeer(id: NodeId): void;
  /** Close every link and the listener. Idempotent. */
  close(): Promise<void>;
}
