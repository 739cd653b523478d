/**
 * The tsraft key-value client: {@link KvClient} talks to the HTTP API of `tsraft serve`
 * (DESIGN.md "kv") with failover, leader discovery and exactly-once writes.
 *
 * @example
 * ```ts
 * import { KvClient } from 'tsraft/client';
 * const kv = new KvClient({ endpoints: ['http://127.0.0.1:2379'] });
 * await kv.put('greeting', 'hello');
 * console.log(await kv.getString('greeting'));
 * kv.close();
 * ```
 *
 * @module
 */
export { KvClient } from './client.js';
export type {
  CallOptions,
  ClusterMember,
  ClusterStatus,
  DeleteResult,
  GetOptions,
  GetResult,
  HealthStatus,
  KvClientOptions,
  KvItem,
  ListOptions,
  ReadConsistency,
  WriteOptions,
  WriteResult,
} from './client.js';
export { KvClientError, PreconditionFailedError, isKvClientError, type KvClientErrorCode } from './errors.js';
