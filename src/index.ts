/**
 * tsraft — the Raft consensus algorithm for TypeScript and Node.js.
 *
 * The public API is what this file re-exports (STYLE.md convention 9).
 */
export * from './core/index.js';
export * from './errors.js';
export type { Storage, StorageUpdate } from './storage/storage.js';
export { MemoryStorage } from './storage/memory-storage.js';
