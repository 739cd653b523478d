/**
 * `tsraft/testing` — the exported test kit: the in-memory storage and shared conformance
 * suites, so users can check their own implementations of tsraft's contracts.
 */
export { MemoryStorage } from '../storage/memory-storage.js';
export { runStorageSuite, type StorageSuiteOptions } from './storage-suite.js';
export { MemoryNetwork, MemoryTransport } from '../transport/memory-transport.js';
export { runTransportSuite, everyMessageType } from './transport-suite.js';
