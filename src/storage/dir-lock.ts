import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { RaftError } from '../errors.js';
import { nodeFs, readWholeFile, unlinkIfExists, writeFully, type StorageFs } from './fs.js';

/** Name of the lock file inside the data directory. */
export const LOCK_FILE = 'LOCK';
const LOCK_HEADER = 'tsraft-lock 1';

/** Start time of process `pid` (clock ticks since boot, Linux), to tell a reused pid apart. */
function processStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

interface Holder {
  pid: number;
  start: string | undefined;
}

function parse(text: string): Holder | undefined {
  const lines = text.split('\n');
  if (lines[0] !== LOCK_HEADER) return undefined;
  const pid = Number(/^pid (\d+)$/.exec(lines[1] ?? '')?.[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const start = /^start (\S+)$/.exec(lines[2] ?? '')?.[1];
  return { pid, start };
}

/** Whether the process that wrote the lock is still running (and is the same process). */
function alive(h: Holder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (h.start !== undefined) {
    const now = processStart(h.pid);
    if (now !== undefined && now !== h.start) return false;
  }
  return true;
}

/**
 * One process per data directory: a `LOCK` file holding the owner's pid (and its start time,
 * so a pid reused by an unrelated process after a crash is not mistaken for the owner).
 *
 * The lock is taken by hard-linking a fully written temp file to `LOCK` (atomic, fails if it
 * exists). A lock whose owner is dead is stale: it is renamed away (only one contender can win
 * that rename) and re-checked before being deleted, so a restart after `kill -9` proceeds
 * while a second live process gets `DIR_LOCKED` naming the holder's pid.
 */
export class DirLock {
  private released = false;

  private constructor(
    private readonly sfs: StorageFs,
    readonly path: string,
    private readonly content: string,
  ) {}

  /** Take the lock on `dir` or throw `RaftError('DIR_LOCKED')`. */
  static async acquire(dir: string, sfs: StorageFs = nodeFs): Promise<DirLock> {
    const lockPath = path.join(dir, LOCK_FILE);
    const start = processStart(process.pid);
    const content = `${LOCK_HEADER}\npid ${process.pid}\n${start === undefined ? '' : `start ${start}\n`}`;
    const tmp = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
    const fd = await sfs.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL);
    try {
      await writeFully(sfs, fd, Buffer.from(content), 0);
    } finally {
      await sfs.close(fd);
    }
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await sfs.link(tmp, lockPath);
          return new DirLock(sfs, lockPath, content);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const seen = (await readWholeFile(sfs, lockPath))?.toString('utf8');
        if (seen === undefined) continue;
        const holder = parse(seen);
        if (holder !== undefined && alive(holder)) {
          throw new RaftError(
            'DIR_LOCKED',
            holder.pid === process.pid
              ? `data directory ${dir} is already open in this process`
              : `data directory ${dir} is locked by running process ${holder.pid} (${lockPath}); one process per data directory`,
          );
        }
        // Stale: its owner is gone. Move it aside, check that what we moved is what we judged.
        const aside = `${lockPath}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
        try {
          await sfs.rename(lockPath, aside);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw e;
        }
        const moved = (await readWholeFile(sfs, aside))?.toString('utf8');
        if (moved !== seen) {
          // Someone took the lock between our read and our rename: put theirs back.
          await sfs.link(aside, lockPath).catch(() => undefined);
          await unlinkIfExists(sfs, aside);
          throw new RaftError('DIR_LOCKED', `data directory ${dir} was just locked by another process`);
        }
        await unlinkIfExists(sfs, aside);
      }
      throw new RaftError('DIR_LOCKED', `could not lock data directory ${dir}: too much contention`);
    } finally {
      await unlinkIfExists(sfs, tmp);
    }
  }

  /** Remove the lock if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const seen = (await readWholeFile(this.sfs, this.path))?.toString('utf8');
    if (seen === this.content) await unlinkIfExists(this.sfs, this.path);
  }
}
