import { describe, expect, it } from 'vitest';
import { isRaftError } from '../../../src/errors.js';
import { decodeCommand, encodeCommand, type KvCommand } from '../../../src/kv/commands.js';

const SEED = Number(process.env['KV_COMMANDS_SEED'] ?? 20261124);

/** xorshift32: deterministic cases, replayable with KV_COMMANDS_SEED. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

const ALPHABET = ['a', 'Z', '0', '/', ' ', 'é', 'ß', '日本', '🙂', '\u0000', '%2F'];

function randomString(r: () => number, max: number): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

function randomCommand(r: () => number): KvCommand {
  const ops = ['put', 'delete', 'member'] as const;
  const value = new Uint8Array(Math.floor(r() * 600));
  for (let i = 0; i < value.length; i++) value[i] = Math.floor(r() * 256);
  return {
    op: ops[Math.floor(r() * ops.length)]!,
    time: Math.floor(r() * 2e12),
    clientId: r() < 0.4 ? '' : randomString(r, 12),
    seq: Math.floor(r() * 1e9),
    prevIndex: r() < 0.5 ? -1 : Math.floor(r() * 1e9),
    key: randomString(r, 20) || 'k',
    value,
  };
}

function expectBad(b: Uint8Array): void {
  let err: unknown;
  try {
    decodeCommand(b);
  } catch (e) {
    err = e;
  }
  expect(isRaftError(err, 'BAD_REQUEST'), `decoding ${b.byteLength} bytes should fail`).toBe(true);
}

describe(`kv command codec (seed ${SEED}, KV_COMMANDS_SEED to replay)`, () => {
  it('round-trips random commands, unicode and empty strings included', () => {
    const r = rng(SEED);
    for (let i = 0; i < 500; i++) {
      const c = randomCommand(r);
      const d = decodeCommand(encodeCommand(c));
      expect({ ...d, value: Array.from(d.value) }).toEqual({ ...c, value: Array.from(c.value) });
    }
  });

  it('sizes lone surrogates as TextEncoder writes them (U+FFFD), so the fields stay aligned', () => {
    for (const key of ['\ud800', 'a\udc00b', '\ud83d', 'x\ud83d\ude42\ud83d']) {
      const c: KvCommand = {
        op: 'put',
        time: 7,
        clientId: key,
        seq: 3,
        prevIndex: 9,
        key,
        value: new Uint8Array([4, 5]),
      };
      const d = decodeCommand(encodeCommand(c));
      const expected = new TextDecoder().decode(new TextEncoder().encode(key));
      expect(d.key).toBe(expected);
      expect(d.clientId).toBe(expected);
      expect([d.seq, d.prevIndex, Array.from(d.value)]).toEqual([3, 9, [4, 5]]);
    }
  });

  it('refuses every truncation of a valid command', () => {
    const r = rng(SEED + 1);
    for (let i = 0; i < 20; i++) {
      const b = encodeCommand(randomCommand(r));
      for (let n = 0; n < b.byteLength; n++) expectBad(b.subarray(0, n));
    }
  });

  it('refuses unknown versions and ops, and keys that are not UTF-8', () => {
    const b = encodeCommand({
      op: 'put',
      time: 1,
      clientId: '',
      seq: 0,
      prevIndex: -1,
      key: 'ab',
      value: new Uint8Array([1]),
    });
    const version = b.slice();
    version[0] = 2;
    expectBad(version);
    const op = b.slice();
    op[1] = 9;
    expectBad(op);
    // The key's bytes sit after version, op, time, id length (0), seq, prevIndex, key length.
    const key = b.slice();
    key[1 + 1 + 8 + 2 + 8 + 8 + 2] = 0xff;
    expectBad(key);
    // A value view into a larger buffer decodes to the same bytes.
    const big = new Uint8Array(b.byteLength + 10);
    big.set(b, 5);
    expect(Array.from(decodeCommand(big.subarray(5, 5 + b.byteLength)).value)).toEqual([1]);
  });
});
