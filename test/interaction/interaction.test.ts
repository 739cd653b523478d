import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runDataDriven } from '../support/datadriven.js';
import { InteractionEnv } from './env.js';

/**
 * Protocol behaviour as transcripts (STYLE.md convention 11): every
 * `testdata/*.txt` is a scenario of commands with the output they must produce. Run with
 * `REWRITE=1` to regenerate the expected output, then read the diff.
 */
const dir = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('interaction transcripts', () => {
  it('has transcripts', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const f of files) {
    it(f, () => {
      const path = join(dir, f);
      // Each transcript opens with a `#` line saying what it proves.
      expect(readFileSync(path, 'utf8').startsWith('# ')).toBe(true);
      const env = new InteractionEnv();
      const failures = runDataDriven(path, (c) => env.handle(c));
      expect(failures.join('\n\n')).toBe('');
    });
  }
});
