import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Temporary directories for one test file, removed by `cleanup()` (call it in afterAll). */
export function tmpDirs(prefix: string): { make(): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make(): string {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), `tsraft-${prefix}-`));
      made.push(d);
      return d;
    },
    cleanup(): void {
      for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}
