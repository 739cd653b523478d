/**
 * tsraft — the Raft consensus algorithm for TypeScript and Node.js.
 *
 * The public API is what this file re-exports (STYLE.md convention 9).
 */
export * from './core/index.js';
export * from './errors.js';
export type {
  ReceivedSnapshot,
  SnapshotData,
  SnapshotReader,
  SnapshotReceiver,
  SnapshotToSave,
  Storage,
  StorageUpdate,
} from './storage/storage.js';
export { MemoryStorage } from './storage/memory-storage.js';
export { RaftNode, type NodeOptions } from './node/node.js';
export type { SnapshotInfo, SnapshotPolicy, SnapshotStatus } from './node/snapshots.js';
export type { StateMachine, Command } from './node/state-machine.js';
export { jsonLogger, silentLogger, type Logger, type LogLevel } from './node/logger.js';
export { FileStorage, type FileStorageOptions } from './storage/file-storage.js';
export { TcpTransport, type TcpTransportOptions } from './transport/tcp-transport.js';
export type {
  IncomingSnapshot,
  MessageHandler,
  SnapshotPayload,
  SnapshotSink,
  Transport,
  TransportEvents,
} from './transport/transport.js';
export * from './client/index.js';
