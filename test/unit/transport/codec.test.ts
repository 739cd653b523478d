import { describe, expect, it } from 'vitest';
import type { Message } from '../../../src/core/messages.js';
import { isRaftError } from '../../../src/errors.js';
import {
  CODEC_VERSION,
  DEFAULT_REF_THRESHOLD,
  decodeMessage,
  encodedSize,
  encodeFrames,
  encodeMessage,
  TYPE_CODES,
} from '../../../src/transport/codec.js';
import { FrameDecoder } from '../../../src/transport/framing.js';
import { ALL_TYPES, Gen, runSeed } from './gen.js';

const SEED = runSeed();
const hex = `0x${SEED.toString(16).padStart(8, '0')}`;
// Printed so that any failure can be replayed exactly.
console.log(
  `codec property tests: seed ${hex} (replay: TSRAFT_SEED=${hex} npx vitest run test/unit/transport)`,
);

/** Asserts that `f` throws a RaftError BAD_REQUEST (and nothing else). */
function expectBadRequest(f: () => unknown): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected a throw').toBeDefined();
  if (!isRaftError(thrown, 'BAD_REQUEST')) throw new Error(`expected BAD_REQUEST, got ${String(thrown)}`);
}

/** Decodes untrusted bytes: either a message or BAD_REQUEST, never anything else. */
function decodeOrBad(b: Uint8Array): Message | undefined {
  try {
    return decodeMessage(b);
  } catch (e) {
    if (!isRaftError(e, 'BAD_REQUEST')) throw new Error(`decode threw a non-BAD_REQUEST error: ${String(e)}`);
    return undefined;
  }
}

/**
 * The message with every byte array replaced by its base64 text (and tagged with its class), so
 * that deep equality stays fast on large payloads yet still sees every key and byte.
 */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array)
    return `${x.constructor.name}:${Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64')}`;
  if (Array.isArray(x)) return x.map(plain);
  if (x !== null && typeof x === 'object') {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  }
  return x;
}

function concat(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** Every frame payload in `stream`, fed to a decoder in random-sized pieces. */
function splitAndDecode(stream: Buffer, g: Gen, maxPiece: number): Buffer[] {
  const d = new FrameDecoder();
  const frames: Buffer[] = [];
  for (let at = 0; at < stream.byteLength;) {
    const n = 1 + g.int(maxPiece);
    d.push(stream.subarray(at, at + n), (f) => frames.push(f));
    at += n;
  }
  expect(d.bufferedBytes).toBe(0);
  return frames;
}

describe(`codec round trip (seed ${hex})`, () => {
  it('decode(encode(m)) equals m for random messages of every type', () => {
    const g = new Gen(SEED);
    for (let i = 0; i < 3000; i++) {
      const m = g.message(ALL_TYPES[i % ALL_TYPES.length]);
      const bytes = encodeMessage(m);
      expect(bytes.byteLength).toBe(encodedSize(m));
      expect(bytes[0]).toBe(CODEC_VERSION);
      expect(bytes[1]).toBe(TYPE_CODES[m.type]);
      // toStrictEqual: an optional flag that was absent must stay absent.
      expect(plain(decodeMessage(bytes))).toStrictEqual(plain(m));
    }
  });

  it('batches of frames survive any split into TCP-like chunks', () => {
    const g = new Gen(SEED ^ 0x5bd1e995);
    for (let round = 0; round < 60; round++) {
      const msgs = Array.from({ length: 1 + g.int(30) }, () => g.message());
      const { chunks, bytes } = encodeFrames(msgs);
      const stream = concat(chunks);
      expect(stream.byteLength).toBe(bytes);
      const frames = splitAndDecode(stream, g, round % 3 === 0 ? 3 : 70_000);
      expect(plain(frames.map((f) => decodeMessage(f)))).toStrictEqual(plain(msgs));
    }
  });

  it('copying everything (refThreshold Infinity) gives the same bytes as the by-reference form', () => {
    const g = new Gen(SEED + 1);
    const msgs = Array.from({ length: 40 }, () => g.message('app'));
    const byRef = encodeFrames(msgs);
    const copied = encodeFrames(msgs, { refThreshold: Infinity });
    expect(copied.chunks).toHaveLength(1);
    expect(concat(copied.chunks).equals(concat(byRef.chunks))).toBe(true);
  });
});

describe('codec: cheap AppendEntries', () => {
  const data = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
  const app = (sizes: number[]): Message => ({
    type: 'app',
    from: 'n1',
    to: 'n2',
    term: 3,
    prevIndex: 10,
    prevTerm: 3,
    commit: 9,
    entries: sizes.map((n, i) => ({ term: 3, index: 11 + i, type: 'normal', data: data(n, i) })),
  });

  it('writes a batch of small entries into one buffer', () => {
    const { chunks } = encodeFrames([app(Array(256).fill(256)), app([1, 2, 3])]);
    expect(chunks).toHaveLength(1);
  });

  it('passes large payloads by reference, not by copy', () => {
    const m = app([10, DEFAULT_REF_THRESHOLD, 20]);
    const { chunks } = encodeFrames([m]);
    expect(chunks).toHaveLength(3);
    const big = m.type === 'app' ? m.entries[1]!.data : new Uint8Array();
    expect(chunks[1]!.buffer).toBe(big.buffer);
    expect(chunks[1]!.byteOffset).toBe(big.byteOffset);
  });

  it('decodes entry data as views of the received frame (zero copy)', () => {
    const frame = encodeMessage(app([100, 200]));
    const m = decodeMessage(frame);
    if (m.type !== 'app') throw new Error('expected app');
    for (const e of m.entries) expect(e.data.buffer).toBe(frame.buffer);
    expect(m.entries[1]!.data).toStrictEqual(data(200, 1));
  });

  it('accepts plain Uint8Array input as well as Buffer', () => {
    const b = encodeMessage(app([5]));
    const copy = new Uint8Array(b.byteLength + 3).subarray(3);
    copy.set(b);
    expect(decodeMessage(copy)).toStrictEqual(decodeMessage(b));
  });
});

describe('codec: untrusted input', () => {
  const g = new Gen(SEED ^ 0x9e3779b9);

  it('every strict prefix of a valid encoding is BAD_REQUEST', () => {
    for (const type of ALL_TYPES) {
      const b = encodeMessage(g.message(type));
      // Payloads can be large; check every prefix of the head and a sample beyond it.
      for (let n = 0; n < b.byteLength; n += n < 300 ? 1 : 1 + g.int(500)) {
        expectBadRequest(() => decodeMessage(b.subarray(0, n)));
      }
    }
  });

  it('trailing bytes after a message are BAD_REQUEST', () => {
    const b = encodeMessage(g.message('heartbeat'));
    expectBadRequest(() => decodeMessage(Buffer.concat([b, Buffer.from([0])])));
  });

  it('random garbage decodes to a message or fails with BAD_REQUEST, nothing else', () => {
    for (let i = 0; i < 20_000; i++) {
      const b = g.bytes(64);
      // Give half of them a plausible header so that the body parsers get exercised.
      if (i % 2 === 0 && b.byteLength >= 3) {
        b[0] = CODEC_VERSION;
        b[1] = 1 + g.int(19);
      }
      decodeOrBad(b);
    }
  });

  it('corrupted valid encodings decode or fail with BAD_REQUEST, nothing else', () => {
    for (let i = 0; i < 5_000; i++) {
      const b = Buffer.from(encodeMessage(g.message()));
      const flips = 1 + g.int(4);
      for (let k = 0; k < flips; k++) b[g.int(b.byteLength)] = g.int(256);
      decodeOrBad(b);
    }
  });

  it('rejects an unknown version, an unknown type, unknown flag bits and an unknown entry type', () => {
    const base = encodeMessage({ type: 'beat', from: 'a', to: 'b', term: 1 });
    const patch = (at: number, v: number): Buffer => {
      const c = Buffer.from(base);
      c[at] = v;
      return c;
    };
    expectBadRequest(() => decodeMessage(patch(0, CODEC_VERSION + 1)));
    expectBadRequest(() => decodeMessage(patch(1, 0)));
    expectBadRequest(() => decodeMessage(patch(1, 200)));
    expectBadRequest(() => decodeMessage(patch(2, 0x01)));
    const hup = encodeMessage({ type: 'hup', from: 'a', to: 'b', term: 1 });
    hup[2] = 0x04; // a value bit without its presence bit
    expectBadRequest(() => decodeMessage(hup));
    const prop = encodeMessage({
      type: 'prop',
      from: 'a',
      to: 'b',
      term: 0,
      entries: [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(1) }],
    });
    prop[prop.byteLength - 1 - 4 - 1] = 7; // entry type byte
    expectBadRequest(() => decodeMessage(prop));
  });

  it('rejects integers beyond 2^53 - 1 and invalid UTF-8 ids', () => {
    const b = encodeMessage({ type: 'beat', from: 'a', to: 'b', term: 1 });
    const termAt = 3 + 3 + 3; // flags, then "a" and "b" as u16 + 1 byte
    b.writeUInt32BE(0x00200000, termAt);
    expectBadRequest(() => decodeMessage(b));
    const c = encodeMessage({ type: 'beat', from: 'a', to: 'b', term: 1 });
    c[5] = 0xff; // the single byte of "a"
    expectBadRequest(() => decodeMessage(c));
  });

  it('a lying length fails fast instead of allocating', () => {
    // AppendEntries claiming 2^32 - 1 entries in a few bytes.
    const app = encodeMessage({
      type: 'app',
      from: 'a',
      to: 'b',
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      commit: 0,
      entries: [],
    });
    app.writeUInt32BE(0xffffffff, app.byteLength - 4);
    expectBadRequest(() => decodeMessage(app));
    // A context claiming 4 GiB.
    const hb = encodeMessage({
      type: 'heartbeat-resp',
      from: 'a',
      to: 'b',
      term: 1,
      context: new Uint8Array(0),
    });
    hb.writeUInt32BE(0xffffffff, hb.byteLength - 4);
    expectBadRequest(() => decodeMessage(hb));
    // A conf list claiming 2^32 - 1 voters.
    const snap = encodeMessage({
      type: 'snap',
      from: 'a',
      to: 'b',
      term: 1,
      snapshot: {
        meta: { index: 1, term: 1, conf: { voters: [], outgoing: [], learners: [], learnersNext: [] } },
        data: new Uint8Array(0),
      },
    });
    snap.writeUInt32BE(0xffffffff, 3 + 3 + 3 + 8 + 16);
    expectBadRequest(() => decodeMessage(snap));
    // A string length past the end.
    const beat = encodeMessage({ type: 'beat', from: 'a', to: 'b', term: 1 });
    beat.writeUInt16BE(0xffff, 3);
    expectBadRequest(() => decodeMessage(beat));
  });

  it('refuses to encode values that do not fit the format', () => {
    const beat = (term: number): Message => ({ type: 'beat', from: 'a', to: 'b', term });
    expectBadRequest(() => encodeMessage(beat(-1)));
    expectBadRequest(() => encodeMessage(beat(1.5)));
    expectBadRequest(() => encodeMessage(beat(2 ** 53)));
    expectBadRequest(() => encodeMessage({ type: 'beat', from: 'x'.repeat(70_000), to: 'b', term: 1 }));
  });
});
