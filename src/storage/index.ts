/**
 * Durable storage: the {@link Storage} contract, its on-disk implementation and its in-memory twin.
 */
export type {
  ReceivedSnapshot,
  SnapshotData,
  SnapshotReader,
  SnapshotReceiver,
  SnapshotToSave,
  Storage,
  StorageUpdate,
} from './storage.js';
export { SNAPSHOT_CHUNK_BYTES, collectSnapshotData } from './storage.js';
export { FileStorage, type FileStorageOptions } from './file-storage.js';
export { MemoryStorage, type MemoryStorageOptions, type MemoryStorageState } from './memory-storage.js';
export { nodeFs, type StorageFs } from './fs.js';
export { DirLock } from './dir-lock.js';
