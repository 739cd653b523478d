import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RaftError } from '../errors.js';
import { jsonLogger, type LogLevel } from '../node/logger.js';
import { UNSAFE_BUGS, startKv, type KvServeConfig, type UnsafeBug } from '../kv/run.js';

export const SERVE_USAGE = `usage: tsraft serve [flags]

Runs one member of a tsraft key-value cluster.

  --name NAME                       member name (default: default)
  --data-dir DIR                    where the log and snapshots live (default: NAME.tsraft)
  --listen-peer-urls URL            where peers connect (default: http://127.0.0.1:2380)
  --listen-client-urls URL          where clients connect (default: http://127.0.0.1:2379)
  --advertise-client-urls URL       client URL to publish to the cluster (default: the bound one)
  --initial-cluster N=URL,...       founding members and their peer URLs (default: NAME=peer URL)
  --initial-cluster-state STATE     new (bootstrap) or existing (join a running cluster)
  --cluster-secret-file FILE        shared secret that authenticates peers
  --client-token-file FILE          require "Authorization: Bearer <token>" from clients
  --cert-file FILE --key-file FILE  serve the client API over TLS
  --peer-cert-file FILE --peer-key-file FILE [--peer-ca-file FILE]   TLS between peers
  --tick-ms MS                      milliseconds per Raft tick (default 50)
  --election-ticks N                election timeout in ticks (default 12)
  --heartbeat-ticks N               heartbeat interval in ticks (default 2)
  --max-value-bytes N               largest value accepted (default 1048576)
  --snapshot-count N                entries applied between snapshots (default 100000; 0: only on request)
  --snapshot-bytes N                or bytes of entries applied between snapshots (default 67108864; 0: off)
  --snapshot-catchup-entries N      entries kept in the log below a snapshot for slow followers (default 5000)
  --log-level LEVEL                 debug, info, warn or error (default info)
  --config-file FILE                JSON object with any of the flags above (camelCase or flag names)
`;

const OPTIONS = {
  name: { type: 'string' },
  'data-dir': { type: 'string' },
  'listen-peer-urls': { type: 'string' },
  'listen-client-urls': { type: 'string' },
  'advertise-client-urls': { type: 'string' },
  'initial-cluster': { type: 'string' },
  'initial-cluster-state': { type: 'string' },
  'cluster-secret-file': { type: 'string' },
  'client-token-file': { type: 'string' },
  'cert-file': { type: 'string' },
  'key-file': { type: 'string' },
  'peer-cert-file': { type: 'string' },
  'peer-key-file': { type: 'string' },
  'peer-ca-file': { type: 'string' },
  'tick-ms': { type: 'string' },
  'election-ticks': { type: 'string' },
  'heartbeat-ticks': { type: 'string' },
  'max-value-bytes': { type: 'string' },
  'snapshot-count': { type: 'string' },
  'snapshot-bytes': { type: 'string' },
  'snapshot-catchup-entries': { type: 'string' },
  'log-level': { type: 'string' },
  'config-file': { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** A usage error: printed with the usage text, exit code 2. */
export class UsageError extends Error {}

function readSecret(file: string, what: string): string {
  let s: string;
  try {
    s = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`cannot read ${what} file ${file}: ${(e as Error).message}`);
  }
  if (s === '') throw new UsageError(`${what} file ${file} is empty`);
  return s;
}

function readFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

function int(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min)
    throw new UsageError(`--${flag} must be an integer >= ${min} (got ${v})`);
  return Number(v);
}

function isLoopback(url: string): boolean {
  const h = new URL(url).hostname;
  return h === '127.0.0.1' || h === 'localhost' || h === '[::1]' || h === '::1';
}

/** Parses `serve` flags (and an optional config file) into a {@link KvServeConfig}. */
export function parseServeArgs(args: string[]): {
  config: KvServeConfig;
  level: LogLevel;
  warnings: string[];
} {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values['help']) throw new UsageError('');
  if (typeof values['config-file'] === 'string') {
    let fileVals: Record<string, unknown>;
    try {
      fileVals = JSON.parse(readFileSync(values['config-file'], 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`cannot read config file ${values['config-file']}: ${(e as Error).message}`);
    }
    if (typeof fileVals !== 'object' || fileVals === null || Array.isArray(fileVals)) {
      throw new UsageError('the config file must hold a JSON object');
    }
    for (const [k, v] of Object.entries(fileVals)) {
      const flag = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      if (!(flag in OPTIONS) || flag === 'config-file' || flag === 'help') {
        throw new UsageError(`unknown key "${k}" in the config file`);
      }
      // Flags on the command line win over the file.
      if (values[flag] === undefined) values[flag] = typeof v === 'number' ? String(v) : (v as string);
    }
  }
  const str = (k: string): string | undefined => {
    const v = values[k];
    if (v !== undefined && typeof v !== 'string') throw new UsageError(`--${k} takes a value`);
    return v;
  };
  const name = str('name') ?? 'default';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name))
    throw new UsageError('--name must be 1-64 letters, digits, ".", "_" or "-"');
  const peerUrl = str('listen-peer-urls') ?? 'http://127.0.0.1:2380';
  const clientUrl = str('listen-client-urls') ?? 'http://127.0.0.1:2379';
  for (const [flag, u] of [
    ['listen-peer-urls', peerUrl],
    ['listen-client-urls', clientUrl],
  ] as const) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new UsageError(`--${flag} must be a URL like http://127.0.0.1:2380 (got ${u})`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new UsageError(`--${flag} must use http or https`);
    if (!parsed.port) throw new UsageError(`--${flag} must include a port`);
  }
  const initialCluster = new Map<string, string>();
  const ic = str('initial-cluster') ?? `${name}=${peerUrl}`;
  for (const part of ic.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new UsageError(`--initial-cluster entries look like name=http://host:port (got "${part}")`);
    const n = part.slice(0, eq).trim();
    const u = part.slice(eq + 1).trim();
    try {
      if (!new URL(u).port) throw new Error('no port');
    } catch {
      throw new UsageError(`--initial-cluster: ${u} is not a peer URL with a port`);
    }
    if (initialCluster.has(n)) throw new UsageError(`--initial-cluster names ${n} twice`);
    initialCluster.set(n, u);
  }
  if (!initialCluster.has(name)) throw new UsageError(`--initial-cluster must include this member (${name})`);
  const state = str('initial-cluster-state') ?? 'new';
  if (state !== 'new' && state !== 'existing')
    throw new UsageError('--initial-cluster-state must be new or existing');
  const level = (str('log-level') ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level))
    throw new UsageError('--log-level must be debug, info, warn or error');
  const warnings: string[] = [];
  const secretFile = str('cluster-secret-file');
  const clusterSecret = secretFile
    ? readSecret(secretFile, 'cluster secret')
    : 'tsraft-insecure-default-secret';
  if (!secretFile && !isLoopback(peerUrl)) {
    warnings.push(
      'peers listen on a non-loopback address with the default cluster secret: set --cluster-secret-file',
    );
  }
  const tokenFile = str('client-token-file');
  const clientToken = tokenFile ? readSecret(tokenFile, 'client token') : undefined;
  if (!tokenFile && !isLoopback(clientUrl)) {
    warnings.push(
      'the client API listens on a non-loopback address without --client-token-file: anyone who can reach it can read and write',
    );
  }
  const cert = str('cert-file');
  const key = str('key-file');
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('--cert-file and --key-file go together');
  const pcert = str('peer-cert-file');
  const pkey = str('peer-key-file');
  if ((pcert === undefined) !== (pkey === undefined))
    throw new UsageError('--peer-cert-file and --peer-key-file go together');
  const pca = str('peer-ca-file');
  const tickMs = int(str('tick-ms'), 'tick-ms', 1);
  const electionTicks = int(str('election-ticks'), 'election-ticks', 2);
  const heartbeatTicks = int(str('heartbeat-ticks'), 'heartbeat-ticks', 1);
  const maxValueBytes = int(str('max-value-bytes'), 'max-value-bytes', 1);
  const snapshotCount = int(str('snapshot-count'), 'snapshot-count', 0);
  const snapshotBytes = int(str('snapshot-bytes'), 'snapshot-bytes', 0);
  const snapshotCatchUpEntries = int(str('snapshot-catchup-entries'), 'snapshot-catchup-entries', 0);
  const adv = str('advertise-client-urls');
  const config: KvServeConfig = {
    name,
    dataDir: str('data-dir') ?? `${name}.tsraft`,
    listenPeerUrl: peerUrl,
    listenClientUrl: clientUrl,
    ...(adv !== undefined ? { advertiseClientUrl: adv } : {}),
    initialCluster,
    initialClusterState: state,
    clusterSecret,
    ...(clientToken !== undefined ? { clientToken } : {}),
    ...(cert && key ? { clientTls: { cert: readFile(cert, 'certificate'), key: readFile(key, 'key') } } : {}),
    ...(pcert && pkey
      ? {
          peerTls: {
            cert: readFile(pcert, 'peer certificate'),
            key: readFile(pkey, 'peer key'),
            ...(pca ? { ca: readFile(pca, 'peer CA') } : {}),
          },
        }
      : {}),
    ...(tickMs !== undefined ? { tickMs } : {}),
    ...(electionTicks !== undefined ? { electionTicks } : {}),
    ...(heartbeatTicks !== undefined ? { heartbeatTicks } : {}),
    ...(maxValueBytes !== undefined ? { maxValueBytes } : {}),
    ...(snapshotCount !== undefined ? { snapshotCount } : {}),
    ...(snapshotBytes !== undefined ? { snapshotBytes } : {}),
    ...(snapshotCatchUpEntries !== undefined ? { snapshotCatchUpEntries } : {}),
  };
  if (electionTicks !== undefined && heartbeatTicks !== undefined && electionTicks <= heartbeatTicks) {
    throw new UsageError('--election-ticks must be greater than --heartbeat-ticks');
  }
  return { config, level, warnings };
}

/** `tsraft serve`: runs until SIGINT/SIGTERM, then stops gracefully. */
export async function serveCommand(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseServeArgs>;
  try {
    parsed = parseServeArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message) process.stderr.write(`error: ${e.message}\n\n`);
      process.stderr.write(SERVE_USAGE);
      return e.message ? 2 : 0;
    }
    throw e;
  }
  const log = jsonLogger(parsed.level, { member: parsed.config.name });
  // Test-only: the fault suite switches on known bugs to prove it catches them.
  const bugsEnv = process.env['TSRAFT_UNSAFE_TEST_BUGS'];
  let unsafeBugs: Set<UnsafeBug> | undefined;
  if (bugsEnv) {
    unsafeBugs = new Set();
    for (const b of bugsEnv.split(',')) {
      if (!(UNSAFE_BUGS as readonly string[]).includes(b)) {
        process.stderr.write(
          `error: TSRAFT_UNSAFE_TEST_BUGS: unknown bug ${b} (${UNSAFE_BUGS.join(', ')})\n`,
        );
        return 2;
      }
      unsafeBugs.add(b as UnsafeBug);
    }
    log('warn', 'unsafe-test-bugs', {
      bugs: [...unsafeBugs],
      message: 'deliberate bugs are ON: this server is NOT safe',
    });
  }
  for (const w of parsed.warnings) log('warn', 'insecure-config', { message: w });
  let running;
  try {
    running = await startKv({
      ...parsed.config,
      logger: log,
      ...(unsafeBugs ? { unsafeBugs } : {}),
      // Fail-stop: after a storage failure nothing more may be acknowledged; exit loudly.
      onFatal: (err) => {
        process.stderr.write(`fatal: ${err.message}\n`);
        process.exit(1);
      },
    });
  } catch (e) {
    const code = e instanceof RaftError ? e.code : 'ERROR';
    log('error', 'start-failed', { code, error: (e as Error).message });
    process.stderr.write(`error: ${code} ${(e as Error).message}\n`);
    return 1;
  }
  log('info', 'serving', {
    client: running.server.url(),
    peer: parsed.config.listenPeerUrl,
    dataDir: parsed.config.dataDir,
  });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log('info', 'shutting-down', { signal: sig });
      running
        .stop()
        .then(() => resolve(0))
        .catch((e: Error) => {
          log('error', 'shutdown-failed', { error: e.message });
          resolve(1);
        });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
