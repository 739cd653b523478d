import { describe, expect, it } from 'vitest';
import { isRaftError } from '../../../src/errors.js';
import { FrameDecoder, frame, frameBuffer } from '../../../src/transport/framing.js';

const payload = (n: number, fill = 7): Buffer => Buffer.alloc(n, fill);

function collect(d: FrameDecoder, ...chunks: Uint8Array[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) d.push(c, (f) => out.push(f));
  return out;
}

describe('framing', () => {
  it('frame() and frameBuffer() write the same bytes', () => {
    const p = payload(10);
    expect(Buffer.concat(frame(p)).equals(frameBuffer(p))).toBe(true);
    expect(frameBuffer(p).readUInt32BE(0)).toBe(10);
  });

  it('decodes many frames from one chunk as views of it', () => {
    const chunk = Buffer.concat([
      frameBuffer(payload(3, 1)),
      frameBuffer(payload(0)),
      frameBuffer(payload(5, 2)),
    ]);
    const frames = collect(new FrameDecoder(), chunk);
    expect(frames.map((f) => f.byteLength)).toEqual([3, 0, 5]);
    expect(frames[2]!.buffer).toBe(chunk.buffer);
  });

  it('reassembles a frame whose header and body are split byte by byte', () => {
    const bytes = frameBuffer(Buffer.from('hello, world'));
    const d = new FrameDecoder();
    const frames: Buffer[] = [];
    for (let i = 0; i < bytes.byteLength; i++) d.push(bytes.subarray(i, i + 1), (f) => frames.push(f));
    expect(frames.map((f) => f.toString())).toEqual(['hello, world']);
    expect(d.bufferedBytes).toBe(0);
  });

  it('keeps a truncated frame pending (and says so) without emitting it', () => {
    const bytes = frameBuffer(payload(100));
    const d = new FrameDecoder();
    expect(collect(d, bytes.subarray(0, 50))).toEqual([]);
    expect(d.hasPartialFrame).toBe(true);
    expect(d.bufferedBytes).toBe(46);
    expect(collect(d, bytes.subarray(50))).toHaveLength(1);
    expect(d.hasPartialFrame).toBe(false);
  });

  it('rejects an oversized frame as soon as its header arrives', () => {
    const d = new FrameDecoder(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025, 0);
    let thrown: unknown;
    try {
      collect(d, header);
    } catch (e) {
      thrown = e;
    }
    expect(isRaftError(thrown, 'BAD_REQUEST')).toBe(true);
    // The stream is dead afterwards: nothing more is delivered.
    expect(collect(d, frameBuffer(payload(1)))).toEqual([]);
  });

  it('a lying length allocates nothing beyond what actually arrived', () => {
    const d = new FrameDecoder(64 * 1024 * 1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(60 * 1024 * 1024, 0);
    expect(collect(d, header, payload(10))).toEqual([]);
    expect(d.bufferedBytes).toBe(10);
  });

  it('maxFrameBytes can be raised between frames (after a handshake)', () => {
    const d = new FrameDecoder(16);
    const out: Buffer[] = [];
    const stream = Buffer.concat([frameBuffer(payload(8)), frameBuffer(payload(100))]);
    d.push(stream, (f) => {
      out.push(f);
      d.maxFrameBytes = 1024;
    });
    expect(out.map((f) => f.byteLength)).toEqual([8, 100]);
  });

  it('stop() inside a callback delivers nothing further', () => {
    const d = new FrameDecoder();
    const out: Buffer[] = [];
    d.push(Buffer.concat([frameBuffer(payload(1)), frameBuffer(payload(2))]), (f) => {
      out.push(f);
      d.stop();
    });
    expect(out).toHaveLength(1);
  });

  it('stays linear for a large frame arriving in small chunks', () => {
    const big = frameBuffer(Buffer.alloc(32 * 1024 * 1024, 3));
    const d = new FrameDecoder();
    const t0 = performance.now();
    const frames: Buffer[] = [];
    for (let at = 0; at < big.byteLength; at += 16 * 1024) {
      d.push(big.subarray(at, at + 16 * 1024), (f) => frames.push(f));
    }
    const ms = performance.now() - t0;
    expect(frames).toHaveLength(1);
    expect(frames[0]!.byteLength).toBe(32 * 1024 * 1024);
    // 2048 chunks: a quadratic concat would copy ~32 GiB; linear work takes milliseconds.
    expect(ms).toBeLessThan(2_000);
  });
});
