import { nodeFs, type StorageFs } from '../../src/storage/fs.js';

type Op = keyof StorageFs;

/** The operations that change what is on disk (where a disk error bites). */
export const WRITE_OPS: readonly Op[] = [
  'write',
  'writeSync',
  'fsync',
  'fdatasync',
  'fdatasyncSync',
  'ftruncate',
  'rename',
  'link',
  'unlink',
];

function errno(code: string, op: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: injected failure, ${op}`);
  e.code = code;
  return e;
}

/**
 * A StorageFs that forwards to node:fs but can be told to fail chosen operations with an
 * errno code (ENOSPC, EIO, EROFS...), after a number of successful calls, for a number of
 * calls (default: forever). Counts every call, so tests can also assert how many syncs ran.
 */
export class FaultyFs implements StorageFs {
  readonly calls = new Map<Op, number>();
  private rules: { ops: ReadonlySet<Op>; code: string; skip: number; times: number }[] = [];

  constructor(private readonly inner: StorageFs = nodeFs) {}

  /** Fail `ops` with `code`, after `skip` more successful matching calls, `times` times. */
  fail(code: string, ops: readonly Op[] = WRITE_OPS, skip = 0, times = Infinity): void {
    this.rules.push({ ops: new Set(ops), code, skip, times });
  }

  heal(): void {
    this.rules = [];
  }

  count(op: Op): number {
    return this.calls.get(op) ?? 0;
  }

  private check(op: Op): void {
    this.calls.set(op, this.count(op) + 1);
    for (const r of this.rules) {
      if (!r.ops.has(op) || r.times <= 0) continue;
      if (r.skip > 0) {
        r.skip--;
        continue;
      }
      r.times--;
      throw errno(r.code, op);
    }
  }

  open(path: string, flags: number, mode?: number): Promise<number> {
    return this.run('open', () => this.inner.open(path, flags, mode));
  }
  close(fd: number): Promise<void> {
    return this.run('close', () => this.inner.close(fd));
  }
  closeSync(fd: number): void {
    this.check('closeSync');
    this.inner.closeSync(fd);
  }
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.run('write', () => this.inner.write(fd, buf, offset, length, position));
  }
  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    this.check('writeSync');
    return this.inner.writeSync(fd, buf, offset, length, position);
  }
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.run('read', () => this.inner.read(fd, buf, offset, length, position));
  }
  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    this.check('readSync');
    return this.inner.readSync(fd, buf, offset, length, position);
  }
  fsync(fd: number): Promise<void> {
    return this.run('fsync', () => this.inner.fsync(fd));
  }
  fdatasync(fd: number): Promise<void> {
    return this.run('fdatasync', () => this.inner.fdatasync(fd));
  }
  fdatasyncSync(fd: number): void {
    this.check('fdatasyncSync');
    this.inner.fdatasyncSync(fd);
  }
  ftruncate(fd: number, length: number): Promise<void> {
    return this.run('ftruncate', () => this.inner.ftruncate(fd, length));
  }
  fstat(fd: number): Promise<{ size: number }> {
    return this.run('fstat', () => this.inner.fstat(fd));
  }
  rename(from: string, to: string): Promise<void> {
    return this.run('rename', () => this.inner.rename(from, to));
  }
  link(existing: string, newPath: string): Promise<void> {
    return this.run('link', () => this.inner.link(existing, newPath));
  }
  unlink(path: string): Promise<void> {
    return this.run('unlink', () => this.inner.unlink(path));
  }
  readdir(path: string): Promise<string[]> {
    return this.run('readdir', () => this.inner.readdir(path));
  }
  mkdir(path: string): Promise<void> {
    return this.run('mkdir', () => this.inner.mkdir(path));
  }
  readFileSync(path: string): Buffer {
    this.check('readFileSync');
    return this.inner.readFileSync(path);
  }

  private async run<T>(op: Op, f: () => Promise<T>): Promise<T> {
    this.check(op);
    return f();
  }
}
