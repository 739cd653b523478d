import { afterAll } from 'vitest';
import { FileStorage, type FileStorageOptions } from '../../../src/storage/file-storage.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import type { Storage } from '../../../src/storage/storage.js';
import { runStorageSuite } from '../../../src/testing/storage-suite.js';
import { FaultyFs } from '../../support/faulty-fs.js';
import { tmpDirs } from '../../support/tmp-dirs.js';

const dirs = tmpDirs('suite');
afterAll(() => dirs.cleanup());

runStorageSuite('MemoryStorage', () => new MemoryStorage(), {
  reopen: async (s) => MemoryStorage.from((s as MemoryStorage).dump()),
  failWrites: (s) => (s as MemoryStorage).failWrites(),
});

function fileSuite(name: string, options: FileStorageOptions): void {
  const faults = new WeakMap<Storage, FaultyFs>();
  const open = async (dir: string): Promise<FileStorage> => {
    const ffs = new FaultyFs();
    const s = await FileStorage.open(dir, { ...options, fs: ffs, onFailure: () => undefined });
    faults.set(s, ffs);
    return s;
  };
  runStorageSuite(name, () => open(dirs.make()), {
    reopen: async (s) => {
      await s.close();
      return open((s as FileStorage).dir);
    },
    failWrites: (s) => faults.get(s)!.fail('EIO'),
  });
}

// Small segments so that rolling over, sealing and dropping whole segments all happen.
fileSuite('FileStorage', { segmentSize: 8192, cacheBytes: 4096 });
fileSuite('FileStorage (async io, fdatasync, no preallocation, no cache)', {
  segmentSize: 4096,
  io: 'async',
  syncMethod: 'fdatasync',
  preallocate: false,
  cacheBytes: 0,
});
