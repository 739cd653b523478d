import { expect } from 'vitest';
import type { RaftConfig } from '../../../src/core/config.js';
import { encodeConfChange } from '../../../src/core/membership.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
} from '../../../src/core/messages.js';
import { SeededRand } from '../../../src/core/rand.js';
import { RawNode } from '../../../src/core/raw-node.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import { RaftError } from '../../../src/errors.js';
import { Cluster, persist, type TestNode } from '../../support/cluster.js';

/** Small builders shared by the core unit tests. */

export type NodeCfg = Omit<RaftConfig, 'storage' | 'id'>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const bytes = (s: string): Uint8Array => encoder.encode(s);
export const text = (b: Uint8Array): string => decoder.decode(b);

/** A membership of `voters` (and `learners`). */
export function conf(voters: NodeId[], learners: NodeId[] = []): ConfState {
  return { voters, outgoing: [], learners, learnersNext: [] };
}

/** A normal entry; its data names its position (`t3/i7`) unless given. */
export function entry(index: number, term: number, data?: string): Entry {
  return { index, term, type: 'normal', data: bytes(data ?? `t${term}/i${index}`) };
}

/** Entries with the given terms at indexes `from`, `from + 1`, ... */
export function entries(terms: readonly number[], from = 1): Entry[] {
  return terms.map((t, i) => entry(from + i, t));
}

/** A `conf` entry carrying `cc`. */
export function confEntry(index: number, term: number, cc: ConfChange): Entry {
  return { index, term, type: 'conf', data: encodeConfChange(cc) };
}

/** A memory storage holding `log` (terms from index 1), `hardState` and membership `voters`. */
export function storageWith(
  voters: NodeId[],
  opts: {
    terms?: readonly number[];
    log?: Entry[];
    hardState?: Partial<HardState>;
    learners?: NodeId[];
  } = {},
): MemoryStorage {
  const log = opts.log ?? entries(opts.terms ?? []);
  const s = new MemoryStorage({ conf: conf(voters, opts.learners ?? []), entries: log });
  if (opts.hardState) s.setHardState({ term: 0, vote: undefined, commit: 0, ...opts.hardState });
  return s;
}

/** A RawNode with a fixed seed (unless `cfg.rand` is given). */
export function rawNode(id: NodeId, storage: MemoryStorage, cfg: NodeCfg = {}, seed = 1): RawNode {
  return new RawNode({ id, storage, rand: new SeededRand(seed), ...cfg });
}

/** Everything one or more Ready batches produced. */
export interface Drained {
  /** Messages that may go before the batch is persisted. */
  messages: Message[];
  /** Messages that had to wait for the batch to be persisted. */
  persisted: Message[];
  committed: Entry[];
  readStates: ReadState[];
}

/** Processes every Ready of `rn` the way a node would (persist into `storage`, advance). */
export function drain(rn: RawNode, storage: MemoryStorage): Drained {
  const out: Drained = { messages: [], persisted: [], committed: [], readStates: [] };
  while (rn.hasReady()) {
    const rd = rn.ready();
    out.messages.push(...rd.messages);
    persist(storage, rd.hardState, rd.entries, rd.snapshot);
    out.persisted.push(...rd.persistedMessages);
    out.committed.push(...rd.committedEntries);
    out.readStates.push(...rd.readStates);
    rn.advance(rd);
  }
  return out;
}

/** All messages `d` carries, in order (messages first). */
export function allMsgs(d: Drained): Message[] {
  return [...d.messages, ...d.persisted];
}

/** The message shape(s) whose `type` is `T` (also for shapes sharing one interface, e.g. vote/prevote). */
export type MessageOf<T extends Message['type']> = Message & { readonly type: T };

/** The messages of one type (optionally to one node). */
export function ofType<T extends Message['type']>(
  msgs: readonly Message[],
  type: T,
  to?: NodeId,
): MessageOf<T>[] {
  return msgs.filter((m): m is MessageOf<T> => m.type === type && (to === undefined || m.to === to));
}

/** A quiet hand-stepped cluster of `ids` (all voters). */
export function cluster(
  ids: NodeId[],
  cfg: NodeCfg = {},
  storages: Record<NodeId, MemoryStorage> = {},
): Cluster {
  const c = new Cluster();
  c.verbose = false;
  ids.forEach((id, i) => {
    c.add(id, ids, { rand: new SeededRand(1000 + i * 7919), ...cfg }, storages[id]);
  });
  return c;
}

/**
 * Processes Readys and delivers messages until quiet, except that nodes in `hold` receive
 * nothing (their messages queue in their inbox). `onDeliver` sees each delivered message.
 * Returns the number of delivery rounds.
 */
export function settle(
  c: Cluster,
  opts: { hold?: readonly NodeId[]; onDeliver?: (m: Message) => void; maxRounds?: number } = {},
): number {
  const hold = new Set(opts.hold ?? []);
  const max = opts.maxRounds ?? 10_000;
  for (let round = 0; round < max; round++) {
    let busy = false;
    for (const id of c.nodes.keys()) while (c.processReady(id)) busy = true;
    for (const [id, n] of c.nodes) {
      if (hold.has(id) || n.inbox.length === 0) continue;
      if (opts.onDeliver) for (const m of n.inbox) opts.onDeliver(m);
      c.deliver(id);
      busy = true;
    }
    if (!busy) return round;
  }
  throw new Error('cluster did not settle');
}

/** Elects `id` by calling campaign() and settling; asserts it won. */
export function elect(c: Cluster, id: NodeId): TestNode {
  const n = c.node(id);
  n.rn.campaign();
  c.stabilize();
  expect(n.rn.raft.role).toBe('leader');
  return n;
}

/** Terms of the whole log of `n` (index 1 first; snapshot not included). */
export function logTerms(n: TestNode | RawNode): number[] {
  const rn = n instanceof RawNode ? n : n.rn;
  const l = rn.raft.log;
  const out: number[] = [];
  for (let i = l.firstIndex(); i <= l.lastIndex(); i++) out.push(l.term(i)!);
  return out;
}

/** The whole log of `n` as entries. */
export function logOf(n: TestNode): Entry[] {
  const l = n.rn.raft.log;
  if (l.lastIndex() < l.firstIndex()) return [];
  return l.slice(l.firstIndex(), l.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
}

/** Ticks node `id` until `until()` holds (at most `max` ticks); returns the ticks taken. */
export function tickUntil(c: Cluster, id: NodeId, until: () => boolean, max = 1000): number {
  for (let i = 1; i <= max; i++) {
    c.node(id).rn.tick();
    if (until()) return i;
  }
  throw new Error(`condition not reached within ${max} ticks`);
}

/** The `code` of the RaftError `f` throws (or the error's text), undefined if it returns. */
export function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof RaftError ? e.code : String(e);
  }
  return undefined;
}

/** Drops every queued message in every inbox. */
export function dropAll(c: Cluster): void {
  for (const n of c.nodes.values()) n.inbox = [];
}
