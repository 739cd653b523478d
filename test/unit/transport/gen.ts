import {
  unreachable,
  type ConfState,
  type Entry,
  type Message,
  type MessageType,
  type NodeId,
} from '../../../src/core/messages.js';
import { SeededRand } from '../../../src/core/rand.js';
import { TYPE_CODES } from '../../../src/transport/codec.js';

/** Seeded generators of arbitrary messages for the codec's property tests. */

export const ALL_TYPES = Object.keys(TYPE_CODES) as MessageType[];

/** The seed of a run: `TSRAFT_SEED` (decimal or 0x…) if set, else a fresh one. */
export function runSeed(): number {
  const env = process.env['TSRAFT_SEED'];
  if (env !== undefined && env !== '') return Number(env) >>> 0;
  return (Math.random() * 0x1_0000_0000) >>> 0;
}

export class Gen {
  readonly rand: SeededRand;
  constructor(readonly seed: number) {
    this.rand = new SeededRand(seed);
  }

  int(n: number): number {
    return this.rand.intn(n);
  }
  bool(): boolean {
    return this.int(2) === 1;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** Small numbers mostly, with the edges (0, 2^32 ± 1, 2^53 - 1) now and then. */
  num(): number {
    switch (this.int(6)) {
      case 0:
        return 0;
      case 1:
        return this.pick([0xffffffff, 0x100000000, 0x100000001, Number.MAX_SAFE_INTEGER]);
      case 2:
        return this.int(0x1fffff) * 0x100000000 + this.rand.nextUint32();
      default:
        return this.int(100_000);
    }
  }
  bytes(max: number): Uint8Array {
    const n = this.int(max + 1);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** Payloads: mostly small, sometimes past the by-reference threshold. */
  payload(): Uint8Array {
    return this.int(20) === 0 ? this.bytes(20_000) : this.bytes(300);
  }
  id(): NodeId {
    return this.pick([
      'n1',
      'n2',
      'n3',
      'a-much-longer-node-name-0123456789',
      'ü-ñode-名前',
      'x'.repeat(300),
    ]);
  }
  ids(): NodeId[] {
    return Array.from({ length: this.int(5) }, () => this.id());
  }
  entries(): Entry[] {
    return Array.from({ length: this.int(12) }, () => ({
      term: this.num(),
      index: this.num(),
      type: this.bool() ? 'normal' : 'conf',
      data: this.payload(),
    }));
  }
  conf(): ConfState {
    return { voters: this.ids(), outgoing: this.ids(), learners: this.ids(), learnersNext: this.ids() };
  }
  optBool(): boolean | undefined {
    const k = this.int(3);
    return k === 0 ? undefined : k === 1;
  }

  message(type: MessageType = this.pick(ALL_TYPES)): Message {
    const base = { from: this.id(), to: this.id(), term: this.num() };
    switch (type) {
      case 'hup': {
        const transfer = this.optBool();
        return transfer === undefined ? { ...base, type } : { ...base, type, transfer };
      }
      case 'beat':
      case 'check-quorum':
      case 'unreachable':
      case 'timeout-now':
        return { ...base, type };
      case 'prop':
        return { ...base, type, entries: this.entries() };
      case 'vote':
      case 'prevote': {
        const m = { ...base, type, lastLogIndex: this.num(), lastLogTerm: this.num() };
        const transfer = this.optBool();
        return transfer === undefined ? m : { ...m, transfer };
      }
      case 'vote-resp':
      case 'prevote-resp':
      case 'snap-status':
        return { ...base, type, reject: this.bool() };
      case 'app':
        return {
          ...base,
          type,
          prevIndex: this.num(),
          prevTerm: this.num(),
          commit: this.num(),
          entries: this.entries(),
        };
      case 'app-resp':
        return {
          ...base,
          type,
          reject: this.bool(),
          index: this.num(),
          hintIndex: this.num(),
          hintTerm: this.num(),
        };
      case 'heartbeat':
        return { ...base, type, commit: this.num(), context: this.bytes(40) };
      case 'heartbeat-resp':
        return { ...base, type, context: this.bytes(40) };
      case 'snap':
        return {
          ...base,
          type,
          snapshot: {
            meta: { index: this.num(), term: this.num(), conf: this.conf() },
            data: this.payload(),
          },
        };
      case 'transfer-leader':
        return { ...base, type, transferee: this.id() };
      case 'read-index': {
        const lease = this.optBool();
        const m = { ...base, type, context: this.bytes(40) };
        return lease === undefined ? m : { ...m, lease };
      }
      case 'read-index-resp':
        return { ...base, type, index: this.num(), context: this.bytes(40), reject: this.bool() };
      default:
        return unreachable(type);
    }
  }
}
