/**
 * Durable storage: the {@link Storage} contract, its on-disk implementation and its in-memory twin.
 */
export type { Storage, StorageUpdate } from './storage.js';
export { FileStorage, type FileStorageOptions } from './file-storage.js';
export { MemoryStorage, type MemoryStorageOptions, type MemoryStorageState } from './memory-storage.js';
export { nodeFs, type StorageFs } from './fs.js';
export { DirLock } from './dir-lock.js';
