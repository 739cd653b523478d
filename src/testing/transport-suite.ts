import { afterEach, describe, expect, it } from 'vitest';
import type { Entry, Message, NodeId } from '../core/messages.js';
import type { Transport, TransportEvents } from '../transport/transport.js';

/**
 * The shared conformance suite of the {@link Transport} contract (STYLE.md convention 8), run
 * against every implementation:
 *
 * ```ts
 * runTransportSuite('memory', () => {
 *   const net = new MemoryNetwork();
 *   return { create: (id, events) => net.transport(id, { events }), addressOf: (t) => t.id };
 * });
 * ```
 */

/** How the suite builds and addresses transports of one implementation. */
export interface TransportHarness {
  /** A new, not yet started transport named `id` that reports to `events`. */
  create(id: NodeId, events: TransportEvents): Transport | Promise<Transport>;
  /** The address other transports pass to `addPeer` to reach `t` (called after `t.start()`). */
  addressOf(t: Transport): string;
  /** Called after each test, once every transport is closed. */
  dispose?(): void | Promise<void>;
}

/** Everything one transport saw during a test. */
interface Node {
  readonly id: NodeId;
  readonly t: Transport;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly snapshots: [NodeId, boolean][];
  /** When set, the handler throws for the messages it matches (after recording them). */
  throwOn: ((m: Message) => boolean) | undefined;
}

const enc = new TextEncoder();

/** Polls `cond` until it holds, failing with `what` after `ms`. */
async function waitFor(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function entry(index: number, term: number, text: string): Entry {
  return { index, term, type: 'normal', data: enc.encode(text) };
}

/** An AppendEntries numbered `seq` (its entry carries the number, so order can be checked). */
function app(from: NodeId, to: NodeId, seq: number): Message {
  return {
    type: 'app',
    from,
    to,
    term: 1,
    prevIndex: seq,
    prevTerm: 1,
    commit: seq,
    entries: [entry(seq + 1, 1, `entry-${seq}`)],
  };
}

function seqOf(m: Message): number {
  if (m.type !== 'app') throw new Error(`expected app, got ${m.type}`);
  return m.prevIndex;
}

/** One message of every type, from `from` to `to`. */
export function everyMessageType(from: NodeId, to: NodeId): Message[] {
  const base = { from, to, term: 7 };
  const ctx = enc.encode('read-ctx');
  return [
    { ...base, type: 'hup' },
    { ...base, type: 'hup', transfer: true },
    { ...base, type: 'beat' },
    { ...base, type: 'check-quorum' },
    {
      ...base,
      type: 'prop',
      entries: [entry(0, 0, 'proposal'), { index: 0, term: 0, type: 'conf', data: enc.encode('cc') }],
    },
    { ...base, type: 'vote', lastLogIndex: 41, lastLogTerm: 6 },
    { ...base, type: 'prevote', lastLogIndex: 41, lastLogTerm: 6, transfer: false },
    { ...base, type: 'vote-resp', reject: false },
    { ...base, type: 'prevote-resp', reject: true },
    {
      ...base,
      type: 'app',
      prevIndex: 40,
      prevTerm: 6,
      commit: 39,
      entries: [entry(41, 7, 'x'), entry(42, 7, '')],
    },
    { ...base, type: 'app-resp', reject: true, index: 40, hintIndex: 30, hintTerm: 5 },
    { ...base, type: 'heartbeat', commit: 39, context: ctx },
    { ...base, type: 'heartbeat-resp', context: new Uint8Array(0) },
    {
      ...base,
      type: 'snap',
      snapshot: {
        meta: {
          index: 100,
          term: 6,
          conf: { voters: [from, to], outgoing: [], learners: ['l1'], learnersNext: [] },
        },
        data: enc.encode('snapshot-bytes'),
      },
    },
    { ...base, type: 'snap-status', reject: false },
    { ...base, type: 'unreachable' },
    { ...base, type: 'transfer-leader', transferee: to },
    { ...base, type: 'timeout-now' },
    { ...base, type: 'read-index', context: ctx, lease: true },
    { ...base, type: 'read-index-resp', index: 42, context: ctx, reject: false },
  ];
}

/** Runs the {@link Transport} conformance suite against the implementation `harness` builds. */
export function runTransportSuite(name: string, makeHarness: () => TransportHarness): void {
  describe(`Transport contract: ${name}`, () => {
    let harness: TransportHarness | undefined;
    let nodes: Node[] = [];

    afterEach(async () => {
      await Promise.all(nodes.map((n) => n.t.close()));
      nodes = [];
      await harness?.dispose?.();
      harness = undefined;
    });

    /** Starts transports named `ids` and makes every one a peer of every other. */
    async function cluster(...ids: NodeId[]): Promise<Node[]> {
      harness = makeHarness();
      const h = harness;
      const out: Node[] = [];
      for (const id of ids) {
        const received: Message[] = [];
        const unreachable: NodeId[] = [];
        const snapshots: [NodeId, boolean][] = [];
        const t = await h.create(id, {
          onUnreachable: (p) => unreachable.push(p),
          onSnapshotSent: (p, ok) => snapshots.push([p, ok]),
        });
        const node: Node = { id, t, received, unreachable, snapshots, throwOn: undefined };
        out.push(node);
        nodes.push(node);
        await t.start((m) => {
          received.push(m);
          if (node.throwOn?.(m) === true) throw new Error('handler failure (on purpose)');
        });
      }
      for (const a of out) for (const b of out) if (a !== b) a.t.addPeer(b.id, h.addressOf(b.t));
      return out;
    }

    it('delivers one message of every type, intact and in order', async () => {
      const [a, b] = await cluster('a', 'b');
      const msgs = everyMessageType('a', 'b');
      a!.t.send(msgs);
      await waitFor(() => b!.received.length === msgs.length, `${msgs.length} messages at b`);
      expect(b!.received).toEqual(msgs);
    });

    it('keeps per-link FIFO order across many batches', async () => {
      const [a, b] = await cluster('a', 'b');
      let seq = 0;
      for (let batch = 0; batch < 60; batch++) {
        const size = 1 + ((batch * 7) % 23);
        const msgs: Message[] = [];
        for (let i = 0; i < size; i++) msgs.push(app('a', 'b', seq++));
        a!.t.send(msgs);
        if (batch % 10 === 0) await sleep(1);
      }
      await waitFor(() => b!.received.length === seq, `${seq} messages at b`);
      expect(b!.received.map(seqOf)).toEqual(Array.from({ length: seq }, (_, i) => i));
      const last = b!.received[seq - 1]!;
      expect(last.type === 'app' && new TextDecoder().decode(last.entries[0]!.data)).toBe(`entry-${seq - 1}`);
    });

    it('routes one mixed batch to several peers, each in its own order', async () => {
      const [a, b, c] = await cluster('a', 'b', 'c');
      const msgs: Message[] = [];
      for (let i = 0; i < 50; i++) msgs.push(app('a', i % 3 === 0 ? 'c' : 'b', i));
      a!.t.send(msgs);
      const toB = msgs.filter((m) => m.to === 'b').map(seqOf);
      const toC = msgs.filter((m) => m.to === 'c').map(seqOf);
      await waitFor(
        () => b!.received.length === toB.length && c!.received.length === toC.length,
        'both peers',
      );
      expect(b!.received.map(seqOf)).toEqual(toB);
      expect(c!.received.map(seqOf)).toEqual(toC);
    });

    it('carries messages in both directions at once', async () => {
      const [a, b] = await cluster('a', 'b');
      for (let i = 0; i < 20; i++) {
        a!.t.send([app('a', 'b', i)]);
        b!.t.send([app('b', 'a', i)]);
      }
      await waitFor(() => a!.received.length === 20 && b!.received.length === 20, '20 messages each way');
      expect(a!.received.every((m) => m.from === 'b')).toBe(true);
      expect(b!.received.every((m) => m.from === 'a')).toBe(true);
    });

    it('a closed peer does not hold back the others and is reported unreachable', async () => {
      const [a, b, c] = await cluster('a', 'b', 'c');
      a!.t.send([app('a', 'c', 0)]);
      await waitFor(() => c!.received.length === 1, 'c up');
      await c!.t.close();
      let seq = 0;
      for (let round = 0; round < 20; round++) {
        a!.t.send([app('a', 'c', seq), app('a', 'b', seq), app('a', 'c', seq + 1)]);
        seq += 2;
        await sleep(2);
      }
      await waitFor(() => b!.received.length === 20, 'all 20 messages at b');
      expect(b!.received.map(seqOf)).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
      await waitFor(() => a!.unreachable.includes('c'), 'c reported unreachable');
      expect(a!.unreachable.filter((p) => p === 'b')).toEqual([]);
    });

    it('reports a snapshot sent once delivered, and failed to a dead peer', async () => {
      const [a, b, c] = await cluster('a', 'b', 'c');
      const snap = everyMessageType('a', 'b').find((m) => m.type === 'snap')!;
      a!.t.send([app('a', 'b', 0), snap, app('a', 'b', 1)]);
      await waitFor(() => a!.snapshots.length === 1, 'snapshot report');
      expect(a!.snapshots).toEqual([['b', true]]);
      await waitFor(() => b!.received.length === 3, 'three messages at b');
      expect(b!.received[1]).toEqual(snap);

      await c!.t.close();
      a!.t.send([app('a', 'c', 0)]);
      await waitFor(() => a!.unreachable.includes('c'), 'c reported unreachable');
      a!.t.send([{ ...snap, to: 'c' }]);
      await waitFor(() => a!.snapshots.length === 2, 'second snapshot report');
      expect(a!.snapshots[1]).toEqual(['c', false]);
    });

    it('drops messages to an unknown peer without throwing, and reports it unreachable', async () => {
      const [a, b] = await cluster('a', 'b');
      expect(() => a!.t.send([app('a', 'nobody', 0), app('a', 'b', 1)])).not.toThrow();
      await waitFor(() => b!.received.length === 1, 'the message to b');
      await waitFor(() => a!.unreachable.includes('nobody'), 'unknown peer reported');
    });

    it('removePeer stops delivery to that peer; addPeer restores it', async () => {
      const [a, b, c] = await cluster('a', 'b', 'c');
      a!.t.send([app('a', 'b', 0)]);
      await waitFor(() => b!.received.length === 1, 'first message at b');
      a!.t.removePeer('b');
      a!.t.send([app('a', 'b', 1), app('a', 'c', 1)]);
      await waitFor(() => c!.received.length === 1, 'message at c');
      await sleep(30);
      expect(b!.received.map(seqOf)).toEqual([0]);
      a!.t.addPeer('b', harness!.addressOf(b!.t));
      a!.t.send([app('a', 'b', 2)]);
      await waitFor(() => b!.received.length === 2, 'message after addPeer');
      expect(b!.received.map(seqOf)).toEqual([0, 2]);
    });

    it('survives a handler that throws', async () => {
      const [a, b] = await cluster('a', 'b');
      b!.throwOn = (m) => seqOf(m) === 0;
      a!.t.send([app('a', 'b', 0), app('a', 'b', 1)]);
      a!.t.send([app('a', 'b', 2)]);
      await waitFor(() => b!.received.length === 3, 'messages after the throwing one');
      expect(b!.received.map(seqOf)).toEqual([0, 1, 2]);
    });

    it('close() is idempotent; send() after close() neither throws nor delivers', async () => {
      const [a, b] = await cluster('a', 'b');
      await Promise.all([a!.t.close(), a!.t.close()]);
      await a!.t.close();
      expect(() => a!.t.send([app('a', 'b', 0)])).not.toThrow();
      await sleep(30);
      expect(b!.received).toEqual([]);
    });

    it('rejects a second start()', async () => {
      const [a] = await cluster('a');
      await expect(a!.t.start(() => {})).rejects.toThrow();
    });
  });
}
