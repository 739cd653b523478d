import { readFileSync, writeFileSync } from 'node:fs';

/**
 * A small data-driven test runner (STYLE.md convention 11), in the spirit of
 * cockroachdb/datadriven: a file is a sequence of commands, each followed by `----` and the
 * output it must produce. Lines starting with `#` outside a command are comments; the first
 * one says what the file proves. An output block ends at the first blank line. Run with
 * `REWRITE=1` to regenerate the expected output: the diff is the review.
 */

/** One parsed command: `name arg1 key=value ...`. */
export interface Command {
  readonly name: string;
  /** Positional arguments (without `key=value` pairs). */
  readonly args: readonly string[];
  /** `key=value` arguments. */
  readonly kv: ReadonlyMap<string, string>;
  /** The raw command line. */
  readonly line: string;
  /** Where it is (file:line), for error messages. */
  readonly pos: string;
}

interface Block {
  readonly comments: string[];
  readonly line: string;
  readonly lineNo: number;
  readonly expected: string;
}

function parseFile(text: string): { blocks: Block[]; trailing: string[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.trim() === '' || l.startsWith('#')) {
      comments.push(l);
      i++;
      continue;
    }
    const lineNo = i + 1;
    if (lines[i + 1] !== '----') throw new Error(`line ${lineNo}: expected '----' after command '${l}'`);
    i += 2;
    const out: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') out.push(lines[i++]!);
    blocks.push({ comments, line: l, lineNo, expected: out.join('\n') });
    comments = [];
  }
  return { blocks, trailing: comments };
}

export function parseCommand(line: string, pos: string): Command {
  const parts = line.trim().split(/\s+/);
  const args: string[] = [];
  const kv = new Map<string, string>();
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq > 0) kv.set(p.slice(0, eq), p.slice(eq + 1));
    else args.push(p);
  }
  return { name: parts[0]!, args, kv, line, pos };
}

/**
 * Runs every command of `file` through `run` and compares its output with the expected
 * block. Returns the list of mismatches (empty when all match); with `REWRITE=1` rewrites
 * the file instead.
 */
export function runDataDriven(file: string, run: (c: Command) => string): string[] {
  const text = readFileSync(file, 'utf8');
  const { blocks, trailing } = parseFile(text);
  const rewrite = process.env['REWRITE'] === '1';
  const failures: string[] = [];
  const out: string[] = [];
  for (const b of blocks) {
    const cmd = parseCommand(b.line, `${file}:${b.lineNo}`);
    let actual: string;
    try {
      actual = run(cmd)
        .replace(/\n+$/, '')
        .replace(/\n\s*\n/g, '\n');
    } catch (e) {
      actual = `error: ${(e as Error).message}`;
    }
    if (!rewrite && actual !== b.expected) {
      failures.push(`${cmd.pos}: ${b.line}\n--- expected\n${b.expected}\n--- actual\n${actual}`);
    }
    out.push(...b.comments, b.line, '----');
    if (actual !== '') out.push(actual);
  }
  out.push(...trailing);
  if (rewrite) {
    let t = out.join('\n');
    if (!t.endsWith('\n')) t += '\n';
    writeFileSync(file, t);
  }
  return failures;
}
