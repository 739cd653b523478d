import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRaftError } from '../../../src/errors.js';
import { DirLock } from '../../../src/storage/dir-lock.js';
import { FileStorage } from '../../../src/storage/file-storage.js';
import { bundleChild } from '../../support/child-bundle.js';
import { tmpDirs } from '../../support/tmp-dirs.js';

const dirs = tmpDirs('lock');
let child = '';
beforeAll(() => {
  child = bundleChild(
    path.join(path.dirname(fileURLToPath(import.meta.url)), '../../support/storage-child.ts'),
    dirs.make(),
  );
});
afterAll(() => dirs.cleanup());

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    const v = await p;
    if (v instanceof FileStorage) await v.close();
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** Start a process holding `dir`; resolves once it has the lock. */
function holder(dir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, 'hold', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    p.stdout!.once('data', () => resolve(p));
    p.on('error', reject);
  });
}

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('one process per data directory', () => {
  it('a second open in the same process is refused', async () => {
    const dir = dirs.make();
    const s = await FileStorage.open(dir);
    const e = await rejection(FileStorage.open(dir));
    expect(isRaftError(e, 'DIR_LOCKED')).toBe(true);
    expect((e as Error).message).toMatch(/already open in this process/);
    await s.close();
    await (await FileStorage.open(dir)).close();
  });

  it('another live process holding the directory is reported with its pid; after kill -9 a restart proceeds', async () => {
    const dir = dirs.make();
    const p = await holder(dir);
    const e = await rejection(FileStorage.open(dir));
    expect(isRaftError(e, 'DIR_LOCKED')).toBe(true);
    expect((e as Error).message).toContain(`process ${p.pid}`);
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    const s = await FileStorage.open(dir);
    await s.close();
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
  });

  it('a lock left by a dead process is stale', async () => {
    const dir = dirs.make();
    fs.writeFileSync(path.join(dir, 'LOCK'), `tsraft-lock 1\npid ${deadPid()}\n`);
    const s = await FileStorage.open(dir);
    await s.close();
  });

  it('a lock whose pid now belongs to another process (pid reuse) is stale', async () => {
    const dir = dirs.make();
    fs.writeFileSync(path.join(dir, 'LOCK'), `tsraft-lock 1\npid ${process.pid}\nstart 1\n`);
    const s = await FileStorage.open(dir);
    await s.close();
  });

  it('an unreadable lock file (e.g. empty after a power loss) is stale', async () => {
    const dir = dirs.make();
    fs.writeFileSync(path.join(dir, 'LOCK'), '');
    const lock = await DirLock.acquire(dir);
    await lock.release();
    await lock.release();
  });

  it('release leaves a lock that is no longer ours alone', async () => {
    const dir = dirs.make();
    const lock = await DirLock.acquire(dir);
    fs.writeFileSync(path.join(dir, 'LOCK'), 'tsraft-lock 1\npid 1\n');
    await lock.release();
    expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).toBe('tsraft-lock 1\npid 1\n');
  });
});
