// Child-process entry for the disk nemesis where no small file system can be mounted (not
// root): `tsraft serve` from the current sources, whose storage file-system layer starts
// failing every write, sync, rename and unlink with ENOSPC once the process gets SIGUSR2 —
// the same errors a full disk gives, at the next write instead of whenever space runs out.
import { nodeFs, type StorageFs } from '../../src/storage/fs.js';
import { serveCommand } from '../../src/cli/serve.js';
import { WRITE_OPS } from '../support/faulty-fs.js';

let full = false;
process.on('SIGUSR2', () => {
  full = true;
  process.stderr.write(`${JSON.stringify({ level: 'warn', msg: 'disk-full-injected' })}\n`);
});

function enospc(op: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`ENOSPC: no space left on device (injected), ${op}`);
  e.code = 'ENOSPC';
  return e;
}

const target = nodeFs as unknown as Record<string, (...args: unknown[]) => unknown>;
for (const op of WRITE_OPS) {
  const inner = target[op]!.bind(nodeFs);
  const sync = op.endsWith('Sync');
  target[op] = (...args: unknown[]): unknown => {
    if (full) {
      if (sync) throw enospc(op);
      return Promise.reject(enospc(op));
    }
    return inner(...args);
  };
}
// Keep the type import honest: the patched object still satisfies the interface.
const _check: StorageFs = nodeFs;
void _check;

process.exitCode = await serveCommand(process.argv.slice(2));
