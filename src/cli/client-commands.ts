import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  KvClient,
  type ClusterStatus,
  type KvClientOptions,
  type ReadConsistency,
} from '../client/client.js';
import { isKvClientError } from '../client/errors.js';
import { isRaftError } from '../errors.js';
import { EXIT, UsageError, type CliIo } from './io.js';

/** The client ports of the three members `tsraft dev` starts. */
export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every client command takes (they may come before or after the command). */
export const GLOBAL_OPTIONS = {
  endpoints: { type: 'string' },
  'token-file': { type: 'string' },
  'ca-file': { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** Global flags that take a value (the dispatcher skips their values when it looks for the command). */
export const GLOBAL_VALUE_FLAGS: ReadonlySet<string> = new Set([
  '--endpoints',
  '--token-file',
  '--ca-file',
  '--timeout',
]);

export const GLOBAL_OPTIONS_HELP = `Client options:
  --endpoints url,url   client URLs to try, in order
                        (default ${DEFAULT_ENDPOINTS})
  --token-file path     send the bearer token read from this file
  --ca-file path        trust this CA certificate (PEM) for https endpoints
  --timeout ms          give up after this long, retries included (default 15000)
  -h, --help            show help`;

const JSON_OPTION = { json: { type: 'boolean' } } as const satisfies Options;
const CONSISTENCY_OPTION = { consistency: { type: 'string' } } as const satisfies Options;
const PREV_INDEX_OPTION = { 'prev-index': { type: 'string' } } as const satisfies Options;

type Values = Record<string, string | boolean | undefined>;

interface Ctx {
  readonly client: KvClient;
  readonly positionals: readonly string[];
  readonly values: Values;
  readonly io: CliIo;
  readonly usage: string;
}

interface ClientCommand {
  /** `tsraft <name> ...` */
  readonly synopsis: string;
  readonly summary: string;
  readonly options: Options;
  readonly optionsHelp: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  run(ctx: Ctx): Promise<number>;
}

const enc = new TextEncoder();

/**
 * `tsraft snapshot` (§7): every member named by `--endpoints` takes a snapshot now and compacts
 * its log (snapshots are per member; `POST /v1/snapshot` on each).
 */
const SNAPSHOT_COMMAND: ClientCommand = {
  synopsis: 'snapshot',
  summary: 'take a snapshot now on every member given by --endpoints and compact its log',
  options: { ...JSON_OPTION },
  optionsHelp:
    '  --json                print one {"endpoint","name","index","term"} or {"endpoint","error"} per line',
  minArgs: 0,
  maxArgs: 0,
  async run({ client, values, io }) {
    const endpoints = String(values.endpoints ?? DEFAULT_ENDPOINTS)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    let failed = 0;
    for (const endpoint of endpoints) {
      try {
        const r = await client.snapshot({ endpoint });
        io.stdout.write(
          values.json === true
            ? JSON.stringify({ endpoint, name: r.name, index: r.index, term: r.term }) + '\n'
            : `${r.name}\tsnapshot at index ${r.index} (term ${r.term}) in ${r.ms} ms\t${endpoint}\n`,
        );
      } catch (e) {
        failed++;
        const msg = isKvClientError(e) || isRaftError(e) ? `${e.code} ${e.message}` : String(e);
        if (values.json === true) io.stdout.write(JSON.stringify({ endpoint, error: msg }) + '\n');
        else io.stderr.write(`error: ${endpoint}: ${msg}\n`);
      }
    }
    return failed === 0 ? EXIT.OK : EXIT.FAILED;
  },
};

/** The client subcommands, by name. */
export const CLIENT_COMMANDS: Readonly<Record<string, ClientCommand>> = {
  put: {
    synopsis: 'put <key> <value>',
    summary: 'set a key (use -- before a value that starts with -)',
    options: { ...JSON_OPTION },
    optionsHelp: '  --json                print {"index":N}',
    minArgs: 2,
    maxArgs: 2,
    async run({ client, positionals, values, io }) {
      const r = await client.put(positionals[0]!, positionals[1]!);
      io.stdout.write(values.json === true ? JSON.stringify(r) + '\n' : `OK index=${r.index}\n`);
      return EXIT.OK;
    },
  },
  get: {
    synopsis: 'get <key>',
    summary: 'print the value of a key (exit 1 when absent)',
    options: { ...CONSISTENCY_OPTION, ...JSON_OPTION },
    optionsHelp: `  --consistency c       linearizable (default), lease or stale
  --json                print {"key","value"[,"encoding":"base64"],"modIndex","createIndex","raftIndex"}`,
    minArgs: 1,
    maxArgs: 1,
    async run({ client, positionals, values, io, usage }) {
      const key = positionals[0]!;
      const consistency = parseConsistency(values.consistency, usage);
      const r = await client.get(key, consistency === undefined ? {} : { consistency });
      if (r === undefined) return notFound(io, key);
      if (values.json === true) {
        const { modIndex, createIndex, raftIndex } = r;
        io.stdout.write(
          JSON.stringify({ key, ...valueJson(r.value), modIndex, createIndex, raftIndex }) + '\n',
        );
      } else {
        io.stdout.write(r.value);
        io.stdout.write('\n');
      }
      return EXIT.OK;
    },
  },
  del: {
    synopsis: 'del <key>',
    summary: 'delete a key (exit 1 when it was absent)',
    options: { ...PREV_INDEX_OPTION, ...JSON_OPTION },
    optionsHelp: `  --prev-index N        only if the key's modIndex is N
  --json                print {"deleted":true,"index":N} or {"deleted":false}`,
    minArgs: 1,
    maxArgs: 1,
    async run({ client, positionals, values, io, usage }) {
      const key = positionals[0]!;
      const prevIndex = parseIndex(values['prev-index'], '--prev-index', usage);
      const r = await client.delete(key, prevIndex === undefined ? {} : { prevIndex });
      if (values.json === true) io.stdout.write(JSON.stringify(r) + '\n');
      if (!r.deleted) return values.json === true ? EXIT.FAILED : notFound(io, key);
      if (values.json !== true) io.stdout.write(`OK index=${r.index}\n`);
      return EXIT.OK;
    },
  },
  cas: {
    synopsis: 'cas <key> <value> --prev-index N',
    summary: 'set a key only if its modIndex is N (0: only if absent)',
    options: { ...PREV_INDEX_OPTION, ...JSON_OPTION },
    optionsHelp: `  --prev-index N        required: the modIndex the key must have (0: absent)
  --json                print {"index":N}`,
    minArgs: 2,
    maxArgs: 2,
    async run({ client, positionals, values, io, usage }) {
      const prevIndex = parseIndex(values['prev-index'], '--prev-index', usage);
      if (prevIndex === undefined) throw new UsageError('cas needs --prev-index N', usage);
      const r = await client.cas(positionals[0]!, positionals[1]!, prevIndex);
      io.stdout.write(values.json === true ? JSON.stringify(r) + '\n' : `OK index=${r.index}\n`);
      return EXIT.OK;
    },
  },
  ls: {
    synopsis: 'ls [prefix]',
    summary: 'list keys (and values) starting with prefix',
    options: { limit: { type: 'string' }, ...CONSISTENCY_OPTION, ...JSON_OPTION },
    optionsHelp: `  --limit N             at most N keys (server default 1000)
  --consistency c       linearizable (default), lease or stale
  --json                print a JSON array of {"key","value"[,"encoding"],"modIndex","createIndex"}`,
    minArgs: 0,
    maxArgs: 1,
    async run({ client, positionals, values, io, usage }) {
      const limit = parseIndex(values.limit, '--limit', usage);
      if (limit === 0) throw new UsageError('--limit must be at least 1', usage);
      const consistency = parseConsistency(values.consistency, usage);
      const items = await client.list(positionals[0] ?? '', {
        ...(limit !== undefined ? { limit } : {}),
        ...(consistency !== undefined ? { consistency } : {}),
      });
      if (values.json === true) {
        const out = items.map((it) => ({
          key: it.key,
          ...valueJson(it.value),
          modIndex: it.modIndex,
          createIndex: it.createIndex,
        }));
        io.stdout.write(JSON.stringify(out) + '\n');
        return EXIT.OK;
      }
      for (const it of items) {
        const v = valueJson(it.value);
        const shown =
          v.encoding === undefined ? v.value : `<${it.value.byteLength} bytes, base64 ${v.value}>`;
        io.stdout.write(`${it.key}\t${shown}\n`);
      }
      return EXIT.OK;
    },
  },
  members: {
    synopsis: 'members <list|add|promote|remove> [name]',
    summary: 'list, add (as learner), promote and remove cluster members',
    options: {
      'peer-url': { type: 'string' },
      'client-url': { type: 'string' },
      voter: { type: 'boolean' },
      ...JSON_OPTION,
    },
    optionsHelp: `  members list                                  same as status
  members add <name> --peer-url URL [--client-url URL] [--voter]
                                                join a new server as a learner (--voter: promote
                                                it once it caught up); then start it with
                                                tsraft serve --initial-cluster-state existing
  members promote <name>                        make a caught-up learner a voter
  members remove <name>                         remove a member (the leader too)
  --json                                        print the server's JSON answer`,
    minArgs: 1,
    maxArgs: 2,
    async run({ client, positionals, values, io, usage }) {
      const [sub, name] = positionals;
      const print = (r: unknown, text: string): number => {
        io.stdout.write(values.json === true ? JSON.stringify(r) + '\n' : text);
        return EXIT.OK;
      };
      if (sub === 'list') {
        if (name !== undefined) throw new UsageError('members list takes no name', usage);
        const c = await client.cluster();
        return print(c, formatCluster(c));
      }
      if (sub !== 'add' && sub !== 'promote' && sub !== 'remove') {
        throw new UsageError(
          `unknown members subcommand ${JSON.stringify(sub)} (list, add, promote, remove)`,
          usage,
        );
      }
      if (name === undefined) throw new UsageError(`members ${sub} needs a member name`, usage);
      if (sub === 'add') {
        const peerUrl = values['peer-url'];
        if (typeof peerUrl !== 'string') throw new UsageError('members add needs --peer-url URL', usage);
        const clientUrl = values['client-url'];
        const r = await client.addMember(name, peerUrl, {
          role: values.voter === true ? 'voter' : 'learner',
          ...(typeof clientUrl === 'string' ? { clientUrl } : {}),
        });
        return print(r, `OK ${name} added as ${r.role} index=${r.index}\n`);
      }
      if (sub === 'promote') {
        const r = await client.promoteMember(name);
        return print(r, `OK ${name} is now a voter index=${r.index}\n`);
      }
      const r = await client.removeMember(name);
      return print(r, `OK ${name} removed index=${r.index}\n`);
    },
  },
  transfer: {
    synopsis: 'transfer <name>',
    summary: 'hand leadership to the voter <name>',
    options: { ...JSON_OPTION },
    optionsHelp: '  --json                print {"leader":name}',
    minArgs: 1,
    maxArgs: 1,
    async run({ client, positionals, values, io }) {
      await client.transferLeader(positionals[0]!);
      io.stdout.write(
        values.json === true
          ? JSON.stringify({ leader: positionals[0] }) + '\n'
          : `OK leader is ${positionals[0]}\n`,
      );
      return EXIT.OK;
    },
  },
  status: {
    synopsis: 'status',
    summary: 'show the leader, term, indexes and members',
    options: { ...JSON_OPTION },
    optionsHelp: '  --json                print the /v1/cluster answer',
    minArgs: 0,
    maxArgs: 0,
    async run({ client, values, io }) {
      const c = await client.cluster();
      io.stdout.write(values.json === true ? JSON.stringify(c, null, 2) + '\n' : formatCluster(c));
      return EXIT.OK;
    },
  },
  snapshot: SNAPSHOT_COMMAND,
};

/** `tsraft <name> --help` text. */
export function commandUsage(name: string): string {
  const c = CLIENT_COMMANDS[name];
  if (c === undefined) return '';
  return `Usage: tsraft ${c.synopsis} [options]

${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.

${c.optionsHelp === '' ? '' : `Options:\n${c.optionsHelp}\n\n`}${GLOBAL_OPTIONS_HELP}
`;
}

/**
 * Runs the client subcommand `name` with `args` (the command line without the command name;
 * global flags may be anywhere). Returns the exit code; throws {@link UsageError} on bad usage.
 */
export async function runClientCommand(name: string, args: readonly string[], io: CliIo): Promise<number> {
  const cmd = CLIENT_COMMANDS[name];
  if (cmd === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}`, '');
  const usage = `Usage: tsraft ${cmd.synopsis} [options]\nRun 'tsraft ${name} --help' for its options.\n`;
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...GLOBAL_OPTIONS, ...cmd.options },
      strict: true,
      allowPositionals: true,
    }) as { values: Values; positionals: string[] };
  } catch (e) {
    throw new UsageError((e as Error).message, usage);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stdout.write(commandUsage(name));
    return EXIT.OK;
  }
  if (positionals.length < cmd.minArgs) {
    throw new UsageError(
      `${name} needs ${cmd.synopsis
        .split(' ')
        .slice(1, cmd.minArgs + 1)
        .join(' ')}`,
      usage,
    );
  }
  if (positionals.length > cmd.maxArgs) {
    throw new UsageError(
      `${name} takes at most ${cmd.maxArgs} argument${cmd.maxArgs === 1 ? '' : 's'}`,
      usage,
    );
  }
  const client = await makeClient(values, usage);
  try {
    return await cmd.run({ client, positionals, values, io, usage });
  } finally {
    client.close();
  }
}

/** Prints a client failure as `error: CODE message`; returns the exit code. */
export function reportError(e: unknown, io: CliIo): number {
  if (e instanceof UsageError) {
    io.stderr.write(`error: ${e.message}\n${e.usage === '' ? '' : `\n${e.usage}`}`);
    return EXIT.USAGE;
  }
  if (isKvClientError(e) || isRaftError(e)) {
    io.stderr.write(`error: ${e.code} ${e.message}\n`);
    return EXIT.FAILED;
  }
  io.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  return EXIT.FAILED;
}

async function makeClient(values: Values, usage: string): Promise<KvClient> {
  const endpoints = String(values.endpoints ?? DEFAULT_ENDPOINTS)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (endpoints.length === 0) throw new UsageError('--endpoints needs at least one URL', usage);
  const o: { -readonly [K in keyof KvClientOptions]: KvClientOptions[K] } = { endpoints };
  if (values.timeout !== undefined) {
    const t = parseIndex(values.timeout, '--timeout', usage)!;
    if (t === 0) throw new UsageError('--timeout must be at least 1 ms', usage);
    o.deadlineMs = t;
    o.timeoutMs = Math.min(5_000, t);
  }
  if (typeof values['token-file'] === 'string') {
    const token = (await readOptionFile(values['token-file'], '--token-file', usage)).toString('utf8').trim();
    if (token === '') throw new UsageError(`--token-file ${values['token-file']} is empty`, usage);
    o.token = token;
  }
  if (typeof values['ca-file'] === 'string')
    o.ca = await readOptionFile(values['ca-file'], '--ca-file', usage);
  try {
    return new KvClient(o);
  } catch (e) {
    if (isRaftError(e, 'CONFIG_INVALID')) throw new UsageError(e.message, usage);
    throw e;
  }
}

async function readOptionFile(path: string, flag: string, usage: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new UsageError(
      `cannot read ${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      usage,
    );
  }
}

function parseIndex(v: string | boolean | undefined, flag: string, usage: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`${flag} must be a non-negative integer, not ${JSON.stringify(v)}`, usage);
  }
  return Number(v);
}

function parseConsistency(v: string | boolean | undefined, usage: string): ReadConsistency | undefined {
  if (v === undefined) return undefined;
  if (v === 'linearizable' || v === 'lease' || v === 'stale') return v;
  throw new UsageError(`--consistency must be linearizable, lease or stale, not ${JSON.stringify(v)}`, usage);
}

function notFound(io: CliIo, key: string): number {
  io.stderr.write(`error: NOT_FOUND no key ${JSON.stringify(key)}\n`);
  return EXIT.FAILED;
}

/** A value for JSON output: UTF-8 text when it is valid UTF-8, else base64 (as the server does). */
function valueJson(v: Uint8Array): { value: string; encoding?: 'base64' } {
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(v);
    // Only claim "text" when it round-trips byte for byte.
    if (Buffer.compare(enc.encode(text), v) === 0) return { value: text };
  } catch {
    // not UTF-8
  }
  return { value: Buffer.from(v).toString('base64'), encoding: 'base64' };
}

/** The `tsraft status` table. */
export function formatCluster(c: ClusterStatus): string {
  const lines: string[] = [];
  lines.push(
    `leader ${c.leader ?? '(none)'}  term ${c.term}  commit ${c.commitIndex}  applied ${c.appliedIndex}` +
      (c.name !== undefined ? `  (as seen by ${c.name})` : ''),
  );
  const rows = [['NAME', 'ROLE', 'LEADER', 'MATCH', 'CLIENT URL', 'PEER URL']];
  for (const m of c.members) {
    rows.push([
      m.name,
      m.role,
      m.name === c.leader ? '*' : '',
      m.matchIndex === undefined ? '-' : String(m.matchIndex),
      m.clientUrl ?? '-',
      m.peerUrl ?? '-',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    lines.push(
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    );
  return lines.join('\n') + '\n';
}
