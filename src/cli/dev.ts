import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const DEV_USAGE = `usage: tsraft dev [--data-dir DIR] [--nodes 3|5] [--log-level LEVEL]

Starts a local cluster on loopback, one process per member, with data under ./tsraft-data.
Members n1, n2, n3 (n4, n5) listen for clients on 2379, 22379, 32379 (42379, 52379) and
for peers on 2380, 22380, 32380 (42380, 52380). Ctrl-C stops them all.
`;

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/tsraft.js');

/** `tsraft dev`: a local multi-process cluster in one command. */
export async function devCommand(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      options: {
        'data-dir': { type: 'string', default: 'tsraft-data' },
        nodes: { type: 'string', default: '3' },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n\n${DEV_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(DEV_USAGE);
    return 0;
  }
  const n = Number(values.nodes);
  if (n !== 3 && n !== 5) {
    process.stderr.write(`error: --nodes must be 3 or 5\n\n${DEV_USAGE}`);
    return 2;
  }
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const port = (i: number, base: number): number => (i === 0 ? base : (i + 1) * 10000 + base);
  const peer = (i: number): string => `http://127.0.0.1:${port(i, 2380)}`;
  const client = (i: number): string => `http://127.0.0.1:${port(i, 2379)}`;
  const cluster = names.map((nm, i) => `${nm}=${peer(i)}`).join(',');
  const dataDir = path.resolve(values['data-dir']);
  mkdirSync(dataDir, { recursive: true });
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping the cluster…\n');
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  names.forEach((nm, i) => {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'serve',
        '--name',
        nm,
        '--data-dir',
        path.join(dataDir, nm),
        '--listen-peer-urls',
        peer(i),
        '--listen-client-urls',
        client(i),
        '--initial-cluster',
        cluster,
        '--initial-cluster-state',
        'new',
        '--log-level',
        values['log-level'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const prefix = (buf: Buffer): string =>
      buf
        .toString()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => `[${nm}] ${l}\n`)
        .join('');
    child.stdout?.on('data', (b: Buffer) => process.stdout.write(prefix(b)));
    child.stderr?.on('data', (b: Buffer) => process.stderr.write(prefix(b)));
    child.on('exit', (code, sig) => {
      process.stdout.write(`[${nm}] exited (${sig ?? code})\n`);
      if (!stopping && code !== 0)
        process.stdout.write(`[${nm}] restart it with the same command to rejoin\n`);
    });
    children.push(child);
  });
  process.stdout.write(
    `tsraft dev cluster: ${n} members, data in ${dataDir}\n` +
      names.map((nm, i) => `  ${nm}  client ${client(i)}  peer ${peer(i)}\n`).join('') +
      `try:\n  curl -X PUT --data-binary hello ${client(0)}/v1/kv/greeting\n  curl ${client(1)}/v1/kv/greeting\n` +
      `  npx tsraft get greeting\n  npx tsraft status\nCtrl-C stops all.\n`,
  );
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  await Promise.all(
    children.map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r())))),
  );
  return 0;
}
