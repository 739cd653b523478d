import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Message, NodeId, SnapMsg } from '../../../src/core/messages.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';
import {
  decodeSnapAck,
  decodeSnapFrame,
  encodeSnapAck,
  encodeSnapBegin,
  encodeSnapData,
  encodeSnapEnd,
} from '../../../src/transport/snapshot-frames.js';
import { TcpTransport } from '../../../src/transport/tcp-transport.js';
import type { IncomingSnapshot, SnapshotPayload, SnapshotSink } from '../../../src/transport/transport.js';

/**
 * §7 InstallSnapshot in chunks over the transports: checksummed frames, flow control that keeps
 * heartbeats flowing beside a large snapshot, bounded memory on both sides, and a clean
 * failure (then a restart from the beginning) when the connection drops.
 */

const SECRET = 'snapshot-stream-secret';
const CONF = { voters: ['a', 'b', 'c'], outgoing: [], learners: [], learnersNext: [] };

let open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.map((t) => t.close()));
  open = [];
});

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function snapMsg(from: NodeId, to: NodeId, index = 100): SnapMsg {
  return {
    type: 'snap',
    from,
    to,
    term: 3,
    snapshot: { meta: { index, term: 2, conf: CONF }, data: new Uint8Array(0) },
  };
}

/** `size` bytes of a recognisable pattern, produced in `chunk`-byte pieces; counts what was read. */
function payload(size: number, chunk: number): SnapshotPayload & { produced: number; released: number } {
  const p = {
    size,
    produced: 0,
    released: 0,
    chunks: {
      async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
        for (let o = 0; o < size; o += chunk) {
          const n = Math.min(chunk, size - o);
          const c = new Uint8Array(n);
          for (let k = 0; k < n; k += 4096) c[k] = ((o + k) >>> 12) & 0xff;
          p.produced += n;
          yield c;
        }
      },
    },
    release(): void {
      p.released++;
    },
  };
  return p;
}

interface Rx {
  sink: SnapshotSink;
  got: { m: SnapMsg; bytes: number; chunks: Uint8Array[] }[];
  finished: number;
  aborted: string[];
  written: number;
}

function sink(opts: { writeDelayMs?: number; keep?: boolean; refuse?: boolean } = {}): Rx {
  const rx: Rx = { sink: { begin: () => undefined }, got: [], finished: 0, aborted: [], written: 0 };
  rx.sink = {
    begin(m, size): IncomingSnapshot | undefined {
      if (opts.refuse === true) return undefined;
      const rec = { m, bytes: 0, chunks: [] as Uint8Array[] };
      rx.got.push(rec);
      expect(size).toBeGreaterThanOrEqual(0);
      return {
        async write(c) {
          if (opts.writeDelayMs !== undefined) await sleep(opts.writeDelayMs);
          rec.bytes += c.byteLength;
          rx.written += c.byteLength;
          if (opts.keep === true) rec.chunks.push(c.slice());
        },
        async finish() {
          rx.finished++;
        },
        abort(reason) {
          rx.aborted.push(reason);
        },
      };
    },
  };
  return rx;
}

async function pair(rxOpts: Parameters<typeof sink>[0] = {}): Promise<{
  a: TcpTransport;
  b: TcpTransport;
  rx: Rx;
  atB: Message[];
  sent: boolean[];
}> {
  const sent: boolean[] = [];
  const atB: Message[] = [];
  const b = new TcpTransport({ id: 'b', listen: '127.0.0.1:0', secret: SECRET });
  const rx = sink(rxOpts);
  await b.start((m) => atB.push(m), rx.sink);
  const a = new TcpTransport({
    id: 'a',
    listen: '127.0.0.1:0',
    secret: SECRET,
    peers: { b: `127.0.0.1:${b.address().port}` },
    backoffMinMs: 10,
    backoffMaxMs: 50,
    events: { onSnapshotSent: (_p, ok) => sent.push(ok) },
  });
  await a.start(() => undefined);
  open.push(a, b);
  return { a, b, rx, atB, sent };
}

describe('snapshot frames', () => {
  it('round-trip, and a chunk or stream that fails its checksum is refused', () => {
    const m = snapMsg('a', 'b');
    const begin = decodeSnapFrame(encodeSnapBegin(7, 1234, m).subarray(4));
    expect(begin).toEqual({ kind: 'begin', stream: 7, size: 1234, msg: m });
    const [h, d] = encodeSnapData(7, 4096, new Uint8Array([1, 2, 3]));
    const frame = Buffer.concat([h!, d!]).subarray(4);
    const data = decodeSnapFrame(frame);
    expect(data).toMatchObject({ kind: 'data', stream: 7, offset: 4096 });
    expect([...(data as { data: Uint8Array }).data]).toEqual([1, 2, 3]);
    const bad = Buffer.from(frame);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x10;
    expect(() => decodeSnapFrame(bad)).toThrow(/checksum/);
    expect(decodeSnapFrame(encodeSnapEnd(7, 3, 99).subarray(4))).toEqual({
      kind: 'end',
      stream: 7,
      size: 3,
      crc: 99,
    });
    expect(decodeSnapAck(encodeSnapAck({ stream: 7, ok: false, reason: 'nope' }).subarray(4))).toEqual({
      stream: 7,
      ok: false,
      reason: 'nope',
    });
    // A begin frame may not smuggle snapshot data.
    const withData = { ...m, snapshot: { ...m.snapshot, data: new Uint8Array(1) } };
    expect(() => decodeSnapFrame(encodeSnapBegin(1, 1, withData).subarray(4))).not.toThrow();
  });
});

describe('TcpTransport: streamed snapshots', () => {
  it('a 24 MiB snapshot arrives in order and whole; ok is reported only after the receiver took it in', async () => {
    const { a, rx, sent } = await pair({ keep: true });
    const p = payload(24 << 20, 1 << 20);
    a.sendSnapshot(snapMsg('a', 'b'), p);
    await waitFor(() => sent.length === 1, 'the outcome');
    expect(sent).toEqual([true]);
    expect(rx.finished).toBe(1);
    expect(p.released).toBe(1);
    const got = Buffer.concat(rx.got[0]!.chunks);
    expect(got.byteLength).toBe(24 << 20);
    for (let o = 0; o < got.byteLength; o += 4096) expect(got[o]).toBe((o >>> 12) & 0xff);
    expect(rx.got[0]!.m).toEqual(snapMsg('a', 'b'));
    expect(a.linkStats()['b']).toMatchObject({ snapshotsSent: 1, snapshotBytes: 24 << 20 });
  });

  it('heartbeats to the same peer keep flowing between the chunks of a large snapshot (flow control)', async () => {
    // The receiver writes slowly (2 ms per 256 KiB chunk): the stream takes a while.
    const { a, rx, atB, sent } = await pair({ writeDelayMs: 2 });
    const p = payload(48 << 20, 256 << 10);
    a.sendSnapshot(snapMsg('a', 'b'), p);
    const delays: number[] = [];
    const sentAt = new Map<number, number>();
    let seq = 0;
    const beat = setInterval(() => {
      const n = ++seq;
      sentAt.set(n, Date.now());
      a.send([{ type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: n, context: new Uint8Array(0) }]);
    }, 10);
    try {
      await waitFor(() => rx.written > 8 << 20, 'part of the stream');
      const seen = atB.length;
      await waitFor(() => atB.length >= seen + 20, 'heartbeats during the stream');
      for (const m of atB) if (m.type === 'heartbeat') delays.push(Date.now() - sentAt.get(m.commit)!);
      // Memory stays bounded on the sender: it reads ahead of the receiver's disk by a few
      // MiB (socket buffers and the low-water mark), not by the whole snapshot.
      expect(p.produced - rx.written).toBeLessThan(16 << 20);
    } finally {
      clearInterval(beat);
    }
    await waitFor(() => sent.length === 1, 'the outcome', 30_000);
    expect(sent).toEqual([true]);
    // Heartbeats waited behind at most about one low-water mark of snapshot data.
    expect(Math.max(...delays)).toBeLessThan(500);
  });

  it('a dropped connection fails the stream on both sides; the next attempt starts over and succeeds', async () => {
    const { a, b, rx, sent } = await pair({ writeDelayMs: 5 });
    a.sendSnapshot(snapMsg('a', 'b'), payload(16 << 20, 256 << 10));
    await waitFor(() => rx.written > 1 << 20, 'the stream under way');
    // Cut the connection from the receiving side (as a crash of the follower's network would).
    for (const s of (b as unknown as { inbound: Set<Socket> }).inbound) s.destroy();
    await waitFor(() => sent.length === 1, 'the failure');
    expect(sent).toEqual([false]);
    await waitFor(() => rx.aborted.length === 1, 'the receiver aborting');
    expect(rx.finished).toBe(0);
    // Once the link is back, the leader sends it again, from the beginning.
    await waitFor(() => a.linkStats()['b']?.state === 'up', 'the link back up');
    a.sendSnapshot(snapMsg('a', 'b'), payload(4 << 20, 256 << 10));
    await waitFor(() => sent.length === 2, 'the second outcome');
    expect(sent[1]).toBe(true);
    expect(rx.got[1]!.bytes).toBe(4 << 20);
  });

  it('a receiver that refuses, a sink that fails to install, a payload shorter than announced: all reported failed', async () => {
    const refusing = await pair({ refuse: true });
    refusing.a.sendSnapshot(snapMsg('a', 'b'), payload(1 << 20, 1 << 18));
    await waitFor(() => refusing.sent.length === 1, 'refusal');
    expect(refusing.sent).toEqual([false]);

    const { a, rx, sent } = await pair();
    const broken = rx.sink.begin;
    rx.sink.begin = (m, size) => {
      const inc = broken(m, size)!;
      return { ...inc, finish: () => Promise.reject(new Error('disk full')) };
    };
    a.sendSnapshot(snapMsg('a', 'b'), payload(1 << 20, 1 << 18));
    await waitFor(() => sent.length === 1, 'install failure');
    expect(sent).toEqual([false]);
    rx.sink.begin = broken;
    const short = payload(1 << 20, 1 << 18);
    a.sendSnapshot(snapMsg('a', 'b'), { ...short, size: (1 << 20) + 1 });
    await waitFor(() => sent.length === 2, 'short payload');
    expect(sent[1]).toBe(false);
  });

  it('a newer snapshot replaces one in progress; only the newer one is reported', async () => {
    const { a, rx, sent } = await pair({ writeDelayMs: 3 });
    a.sendSnapshot(snapMsg('a', 'b', 100), payload(8 << 20, 256 << 10));
    await waitFor(() => rx.written > 0, 'the first under way');
    a.sendSnapshot(snapMsg('a', 'b', 200), payload(1 << 20, 256 << 10));
    await waitFor(() => sent.length === 1, 'an outcome');
    await sleep(100);
    expect(sent).toEqual([true]);
    expect(rx.got.at(-1)!.m.snapshot.meta.index).toBe(200);
    expect(rx.finished).toBe(1);
  });
});

describe('MemoryTransport: streamed snapshots', () => {
  it('chunks go to the peer’s sink; a partition loses the stream', async () => {
    const net = new MemoryNetwork();
    const sent: boolean[] = [];
    const a = net.transport('a', { events: { onSnapshotSent: (_p, ok) => sent.push(ok) } });
    const b = net.transport('b');
    const rx = sink({ keep: true });
    await a.start(() => undefined);
    await b.start(() => undefined, rx.sink);
    a.sendSnapshot(snapMsg('a', 'b'), payload(300_000, 100_000));
    await waitFor(() => sent.length === 1, 'outcome');
    expect(sent).toEqual([true]);
    expect(rx.got[0]!.bytes).toBe(300_000);
    net.block('a', 'b');
    a.sendSnapshot(snapMsg('a', 'b'), payload(300_000, 100_000));
    await waitFor(() => sent.length === 2, 'outcome');
    expect(sent[1]).toBe(false);
  });
});
