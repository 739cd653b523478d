import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Entry } from '../../../src/core/messages.js';
import { FileStorage } from '../../../src/storage/file-storage.js';
import { nodeFs } from '../../../src/storage/fs.js';
import { decodeMeta, writeMeta } from '../../../src/storage/meta-file.js';
import { SnapshotStore } from '../../../src/storage/snapshot-store.js';
import { tmpDirs } from '../../support/tmp-dirs.js';

/** FileStorage's snapshot files: streaming writes beside appends, readers, received files, recovery. */

const dirs = tmpDirs('snapstore');
afterAll(() => dirs.cleanup());

const CONF = { voters: ['n1', 'n2', 'n3'], outgoing: [], learners: [], learnersNext: [] };

function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++)
    out.push({ index: i, term, type: 'normal', data: new Uint8Array([i & 0xff]) });
  return out;
}

const snapFiles = (dir: string): string[] => fs.readdirSync(path.join(dir, 'snap')).sort();

describe('FileStorage snapshots', () => {
  it('appends are not held up while a snapshot streams to disk', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir);
    await s.save({ entries: ents(1, 10, 1) });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(1000);
      await gate; // the state machine is still producing its snapshot
      yield new Uint8Array(1000);
    }
    let done = false;
    const saving = s.saveSnapshot({ meta: { index: 8, term: 1, conf: CONF }, data: slow() }, 5).then(() => {
      done = true;
    });
    for (let i = 11; i <= 30; i++) await s.save({ entries: ents(i, i, 1) });
    expect(done).toBe(false);
    expect(s.lastIndex()).toBe(30);
    release();
    await saving;
    expect([s.snapshot().meta.index, s.firstIndex()]).toEqual([8, 6]);
    await s.close();
  });

  it('received bytes that were never installed are removed by the next open; installed ones replace the old file', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir);
    await s.save({ entries: ents(1, 5, 1) });
    await s.saveSnapshot({ meta: { index: 3, term: 1, conf: CONF }, data: new Uint8Array(10) });
    const old = snapFiles(dir);
    const rx = s.receiveSnapshot({ index: 20, term: 2, conf: CONF });
    await rx.write(new Uint8Array(5000).fill(1));
    await rx.finish(); // durable, but never installed (the node crashed, or the snapshot was stale)
    const partial = s.receiveSnapshot({ index: 21, term: 2, conf: CONF });
    await partial.write(new Uint8Array(100)); // a stream cut off mid-way
    expect(snapFiles(dir)).toHaveLength(3);
    await s.close();
    const r = await FileStorage.open(dir);
    expect(snapFiles(dir)).toEqual(old);
    const rx2 = r.receiveSnapshot({ index: 20, term: 2, conf: CONF });
    await rx2.write(new Uint8Array(5000).fill(2));
    const received = await rx2.finish();
    await r.save({ snapshot: { meta: received.meta, data: new Uint8Array(0) }, received, entries: [] });
    const now = snapFiles(dir);
    expect(now).toHaveLength(1);
    expect(now[0]).toMatch(/^0+20-0+2-/);
    expect(r.snapshot().data).toEqual(new Uint8Array(5000).fill(2));
    await r.close();
  });

  it('a superseded snapshot file stays until its readers are done (or closed), then goes', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir);
    await s.save({ entries: ents(1, 10, 1) });
    await s.saveSnapshot({ meta: { index: 2, term: 1, conf: CONF }, data: new Uint8Array(3000).fill(2) });
    const reading = s.readSnapshot(1000);
    const unread = s.readSnapshot(1000);
    await s.saveSnapshot({ meta: { index: 6, term: 1, conf: CONF }, data: new Uint8Array(10).fill(6) });
    expect(snapFiles(dir)).toHaveLength(2);
    let n = 0;
    for await (const c of reading.chunks) n += c.byteLength;
    expect(n).toBe(3000);
    expect(snapFiles(dir)).toHaveLength(2); // `unread` still holds it
    unread.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(snapFiles(dir)).toHaveLength(1);
    await s.close();
  });

  it('recovery after a crash between recording an installed snapshot and the WAL’s RESET: later appends reopen cleanly', async () => {
    // The state between the two steps of installing a snapshot at 9 (term 3) beyond a log of
    // 1..5: snapshot file and meta file written, the WAL's RESET record not.
    const dir = dirs.make();
    const s = await FileStorage.open(dir);
    await s.save({ entries: ents(1, 5, 1), hardState: { term: 1, vote: undefined, commit: 5 } });
    await s.close();
    const meta = decodeMeta('meta', fs.readFileSync(path.join(dir, 'meta')));
    const sm = { index: 9, term: 3, conf: CONF };
    const ref = await new SnapshotStore(nodeFs, path.join(dir, 'snap')).write(sm, new Uint8Array([9]));
    await writeMeta(nodeFs, dir, {
      hardState: { term: 3, vote: undefined, commit: 9 },
      snapshot: ref,
      base: { index: 9, term: 3 },
    });
    const r = await FileStorage.open(dir);
    expect([r.firstIndex(), r.lastIndex(), r.term(9)]).toEqual([10, 9, 3]);
    // The log goes on after the snapshot...
    await r.save({ entries: ents(10, 12, 3) });
    await r.close();
    // ...and the next recovery must find it whole (it used to see 10 right after 5: "missing").
    const again = await FileStorage.open(dir);
    expect([again.firstIndex(), again.lastIndex(), again.term(12)]).toEqual([10, 12, 3]);
    expect(meta.hardState.term).toBe(1);
    await again.close();
  });
});
