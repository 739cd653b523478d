import { describe, expect, it } from 'vitest';
import { SeededRand } from '../../../src/core/rand.js';
import { encodeCommand, type KvOp } from '../../../src/kv/commands.js';
import { KvSnapshotParser, KvSnapshotWriter } from '../../../src/kv/snapshot-codec.js';
import { KvStateMachine, type KvResult } from '../../../src/kv/state.js';
import type { Command } from '../../../src/node/state-machine.js';

/**
 * The KV state machine's snapshots (§7, issue 6 item 5): everything is in them (keys, client
 * sessions, members, log time), they are produced in chunks from a copy-on-write view while
 * writes keep applying, and restoring one gives back exactly the state at the capture.
 */

const enc = new TextEncoder();

function cmd(
  index: number,
  op: KvOp,
  key: string,
  value = '',
  session: { clientId: string; seq: number } = { clientId: '', seq: 0 },
): Command {
  return {
    index,
    term: 1,
    data: encodeCommand({
      op,
      time: 1_000_000 + index,
      prevIndex: -1,
      key,
      value: enc.encode(value),
      ...session,
    }),
  };
}

/** A comparable picture of the whole state. */
function picture(sm: KvStateMachine): unknown {
  const keys = sm
    .list('', 10_000_000)
    .map(({ key, entry }) => [
      key,
      Buffer.from(entry.value).toString('hex'),
      entry.modIndex,
      entry.createIndex,
    ]);
  return { keys, members: [...sm.members], sessions: sm.sessionCount, applied: sm.appliedIndex };
}

async function restoreChunks(chunks: Uint8Array[]): Promise<KvStateMachine> {
  const r = new KvStateMachine();
  await r.restoreStream(
    (async function* () {
      yield* chunks;
    })(),
  );
  return r;
}

describe('KV snapshot format', () => {
  it('records split across chunks of any size parse back', () => {
    const w = new KvSnapshotWriter(64);
    w.header({ v: 1, appliedIndex: 9, logTime: 0, lastExpiry: 0, sessions: [], members: [], keys: 3 });
    w.record('a', 1, 1, new Uint8Array(100).fill(7));
    w.record('ключ', 2, 1, new Uint8Array(0));
    w.record('c', 3, 3, new Uint8Array([1, 2, 3]));
    w.flush();
    const bytes = Buffer.concat(w.take());
    for (const step of [1, 3, 7, 64, bytes.byteLength]) {
      const got: [string, number, number][] = [];
      const p = new KvSnapshotParser(
        () => undefined,
        (k, m, c, v) => got.push([k, m, v.byteLength + c]),
      );
      for (let o = 0; o < bytes.byteLength; o += step) p.push(bytes.subarray(o, o + step));
      p.end();
      expect(got).toEqual([
        ['a', 1, 101],
        ['ключ', 2, 1],
        ['c', 3, 6],
      ]);
    }
    const p = new KvSnapshotParser(
      () => undefined,
      () => undefined,
    );
    p.push(bytes.subarray(0, bytes.byteLength - 1));
    expect(() => p.end()).toThrow(/malformed/);
  });
});

describe('KvStateMachine snapshots', () => {
  it('hold keys, client sessions, members and log time; a restored replica answers retries exactly once', async () => {
    const sm = new KvStateMachine();
    const s = { clientId: 'c1', seq: 1 };
    const first = sm.apply([cmd(1, 'put', 'k', 'v1', s)])[0]!;
    sm.apply([cmd(2, 'member', 'n2', JSON.stringify({ clientUrl: 'http://x', peerUrl: 'http://y' }))]);
    const r = new KvStateMachine();
    r.restore(await sm.snapshotBytes());
    expect(picture(r)).toEqual(picture(sm));
    // The retry of (c1, 1) after the snapshot returns the first result and changes nothing.
    const retry = r.apply([cmd(3, 'put', 'k', 'v-retry', s)])[0]!;
    expect(retry).toEqual(first);
    expect(Buffer.from(r.get('k')!.value).toString()).toBe('v1');
    // An older sequence is refused, a newer one applies.
    expect(r.apply([cmd(4, 'put', 'k', 'v0', { clientId: 'c1', seq: 0 })])[0]).toMatchObject({
      ok: false,
      code: 'STALE_SEQUENCE',
    });
    expect(r.apply([cmd(5, 'put', 'k', 'v2', { clientId: 'c1', seq: 2 })])[0]).toMatchObject({ ok: true });
    expect(r.members.get('n2')).toEqual({ clientUrl: 'http://x', peerUrl: 'http://y' });
  });

  it('writes, deletes and re-inserts applied while a large snapshot streams do not leak into it (copy-on-write)', async () => {
    const rand = new SeededRand(42);
    const sm = new KvStateMachine();
    let index = 0;
    const N = 30_000;
    const batch: Command[] = [];
    for (let i = 0; i < N; i++)
      batch.push(cmd(++index, 'put', `key${i}`, `value-${i}-${'x'.repeat(i % 50)}`));
    sm.apply(batch);
    const before = picture(sm);
    const stream = sm.snapshot();
    const chunks: Uint8Array[] = [];
    let writes = 0;
    for await (const c of stream) {
      chunks.push(c);
      // Between chunks, the state machine keeps applying: updates, deletes, re-inserts, new keys.
      const b: Command[] = [];
      for (let k = 0; k < 400; k++) {
        const key = `key${rand.intn(N + 2000)}`;
        const r = rand.intn(4);
        b.push(cmd(++index, r === 0 ? 'delete' : 'put', key, `new-${index}`));
        writes++;
      }
      sm.apply(b);
    }
    expect(chunks.length).toBeGreaterThan(1);
    expect(writes).toBeGreaterThan(400);
    const restored = await restoreChunks(chunks);
    expect(picture(restored)).toEqual(before);
    // And the live state did move on.
    expect(picture(sm)).not.toEqual(before);
    // A second snapshot (no writes while it streams) captures the state as it is now.
    const now = picture(sm);
    const again: Uint8Array[] = [];
    for await (const c of sm.snapshot()) again.push(c);
    expect(picture(await restoreChunks(again))).toEqual(now);
  });

  it('restoring replaces the state and ends a snapshot still being read', async () => {
    const sm = new KvStateMachine();
    const b: Command[] = [];
    for (let i = 0; i < 50_000; i++) b.push(cmd(i + 1, 'put', `k${i}`, 'v'.repeat(40)));
    sm.apply(b);
    const other = new KvStateMachine();
    other.apply([cmd(1, 'put', 'only', 'one')]);
    const it = sm.snapshot()[Symbol.asyncIterator]();
    await it.next();
    sm.restore(await other.snapshotBytes());
    await expect(
      (async () => {
        for (;;) if ((await it.next()).done === true) return;
      })(),
    ).rejects.toThrow(/replaced/);
    expect(sm.size).toBe(1);
  });

  it('results stored in sessions survive as they were (including failed preconditions)', async () => {
    const sm = new KvStateMachine();
    const res: KvResult[] = sm.apply([
      cmd(1, 'put', 'a', '1', { clientId: 'x', seq: 1 }),
      {
        index: 2,
        term: 1,
        data: encodeCommand({
          op: 'put',
          time: 2,
          clientId: 'y',
          seq: 7,
          prevIndex: 99,
          key: 'a',
          value: enc.encode('2'),
        }),
      },
    ]);
    const r = new KvStateMachine();
    await r.restoreStream(sm.snapshot());
    const retry = r.apply([
      {
        index: 3,
        term: 1,
        data: encodeCommand({
          op: 'put',
          time: 3,
          clientId: 'y',
          seq: 7,
          prevIndex: 99,
          key: 'a',
          value: enc.encode('2'),
        }),
      },
    ]);
    expect(retry[0]).toEqual(res[1]);
    expect(res[1]).toMatchObject({ ok: false, code: 'PRECONDITION_FAILED' });
  });
});
