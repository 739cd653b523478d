import path from 'node:path';
import { RaftError } from '../errors.js';
import type { NodeId } from '../core/messages.js';
import { RaftNode } from '../node/node.js';
import { silentLogger, type Logger } from '../node/logger.js';
import type { Storage } from '../storage/storage.js';
import { FileStorage } from '../storage/file-storage.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import type { Transport } from '../transport/transport.js';
import { KvServer } from './server.js';
import { KvStateMachine, type KvResult } from './state.js';

/** Everything `tsraft serve` needs, resolved from flags or a config file. */
export interface KvServeConfig {
  readonly name: NodeId;
  readonly dataDir: string;
  /** `http://host:port` where peers connect to us. */
  readonly listenPeerUrl: string;
  /** `http://host:port` (or https) where clients connect. */
  readonly listenClientUrl: string;
  readonly advertiseClientUrl?: string;
  /** Every founding member's peer URL (must include this one). */
  readonly initialCluster: ReadonlyMap<NodeId, string>;
  readonly initialClusterState: 'new' | 'existing';
  readonly clusterSecret: string;
  readonly clientToken?: string;
  readonly clientTls?: { readonly cert: Buffer; readonly key: Buffer };
  readonly peerTls?: { readonly cert: Buffer; readonly key: Buffer; readonly ca?: Buffer };
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  readonly maxValueBytes?: number;
  /** Entries applied between automatic snapshots (0: only on request). Default 100,000. */
  readonly snapshotCount?: number;
  /** Bytes of entries applied between automatic snapshots (0: no byte trigger). Default 64 MiB. */
  readonly snapshotBytes?: number;
  /** Entries kept in the log below a snapshot for slow followers. Default 5,000. */
  readonly snapshotCatchUpEntries?: number;
  readonly logger?: Logger;
  /** Use a given storage instead of the file store (tests). */
  readonly storage?: Storage;
  /** Use a given transport instead of TCP (tests). */
  readonly transport?: Transport;
  /**
   * Deliberate bugs, for the fault suite's teeth tests only (`TSRAFT_UNSAFE_TEST_BUGS`).
   * @internal
   */
  readonly unsafeBugs?: ReadonlySet<UnsafeBug>;
  /** Called once if the node stops itself (storage failure): the process should exit. */
  readonly onFatal?: (err: Error) => void;
}

/** Known deliberate bugs (see {@link KvServeConfig.unsafeBugs}). */
export type UnsafeBug = 'stale-reads' | 'ack-before-persist' | 'skip-up-to-date-check';
export const UNSAFE_BUGS: readonly UnsafeBug[] = [
  'stale-reads',
  'ack-before-persist',
  'skip-up-to-date-check',
];

/** A running KV server: the Raft node, the state machine and the HTTP API. */
export interface RunningKv {
  readonly node: RaftNode<KvResult>;
  readonly sm: KvStateMachine;
  readonly server: KvServer;
  readonly transport: Transport;
  /** Graceful stop: HTTP first, then the node (finishes the in-flight write, closes storage). */
  stop(): Promise<void>;
}

/** `host:port` of an `http://host:port` URL. */
export function hostPort(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RaftError('CONFIG_INVALID', `${url} is not a URL (expected e.g. http://127.0.0.1:2380)`);
  }
  if (!u.port) throw new RaftError('CONFIG_INVALID', `${url} has no port`);
  return `${u.hostname}:${u.port}`;
}

/** Starts one KV server: storage, transport, node, HTTP. */
export async function startKv(c: KvServeConfig): Promise<RunningKv> {
  const log = c.logger ?? silentLogger;
  if (!c.initialCluster.has(c.name)) {
    throw new RaftError('CONFIG_INVALID', `--initial-cluster must name this member (${c.name})`);
  }
  // io 'sync' (each batch written and synced on this thread): measured against 'async' and a
  // leader-async/followers-sync mix with bench:vs-etcd, alternated 3 times on a quiet 2-core
  // machine, it gave the most writes and the least CPU per write at 64 and 256 clients, and
  // the lowest single-client tail (fewer thread hops per write).
  const storage = c.storage ?? (await FileStorage.open(path.resolve(c.dataDir), { io: 'sync' }));
  const peers: Record<NodeId, string> = {};
  for (const [n, u] of c.initialCluster) if (n !== c.name) peers[n] = hostPort(u);
  let node: RaftNode<KvResult> | undefined;
  const transport =
    c.transport ??
    new TcpTransport({
      id: c.name,
      listen: hostPort(c.listenPeerUrl),
      peers,
      secret: c.clusterSecret,
      ...(c.peerTls ? { tls: c.peerTls } : {}),
      logger: log,
      events: {
        onUnreachable: (p) => node?.reportUnreachable(p),
        onSnapshotSent: (p, ok) => node?.reportSnapshot(p, ok),
        onLinkChange: (p, up) => log('info', up ? 'peer-link-up' : 'peer-link-down', { peer: p }),
      },
    });
  const sm = new KvStateMachine();
  // Members added at run time are reached at the peer URL recorded in the log.
  sm.onMemberChange = (member, attrs) => {
    if (member === c.name) return;
    if (attrs?.peerUrl) {
      try {
        transport.addPeer(member, hostPort(attrs.peerUrl));
      } catch (e) {
        log('warn', 'bad-peer-url', { member, peerUrl: attrs.peerUrl, error: (e as Error).message });
      }
    }
  };
  try {
    node = await RaftNode.start<KvResult>({
      id: c.name,
      storage,
      transport,
      stateMachine: sm,
      ...(c.initialClusterState === 'new' ? { initialMembers: [...c.initialCluster.keys()] } : {}),
      ...(c.tickMs !== undefined ? { tickMs: c.tickMs } : {}),
      raft: {
        forwardProposals: true,
        ...(c.electionTicks !== undefined ? { electionTicks: c.electionTicks } : {}),
        ...(c.heartbeatTicks !== undefined ? { heartbeatTicks: c.heartbeatTicks } : {}),
      },
      snapshot: {
        ...(c.snapshotCount !== undefined ? { entries: c.snapshotCount } : {}),
        ...(c.snapshotBytes !== undefined ? { bytes: c.snapshotBytes } : {}),
        ...(c.snapshotCatchUpEntries !== undefined ? { catchUpEntries: c.snapshotCatchUpEntries } : {}),
      },
      logger: log,
      ...(c.unsafeBugs && c.unsafeBugs.size > 0
        ? {
            unsafeBugs: {
              ackBeforePersist: c.unsafeBugs.has('ack-before-persist'),
              skipUpToDateCheck: c.unsafeBugs.has('skip-up-to-date-check'),
            },
          }
        : {}),
      onFatal: (err) => {
        log('error', 'fatal', { error: err.message });
        c.onFatal?.(err);
      },
    });
  } catch (e) {
    await transport.close().catch(() => {});
    await storage.close().catch(() => {});
    throw e;
  }
  const peerUrls = new Map(c.initialCluster);
  const server = new KvServer({
    name: c.name,
    node,
    sm,
    listen: c.listenClientUrl,
    peerUrls,
    ...(c.advertiseClientUrl ? { advertiseClientUrl: c.advertiseClientUrl } : {}),
    ...(c.clientTls ? { tls: c.clientTls } : {}),
    ...(c.clientToken !== undefined ? { token: c.clientToken } : {}),
    ...(c.maxValueBytes !== undefined ? { maxValueBytes: c.maxValueBytes } : {}),
    ...(c.unsafeBugs?.has('stale-reads') ? { unsafeStaleReads: true } : {}),
    logger: log,
  });
  try {
    await server.start();
  } catch (e) {
    await node.stop();
    throw e;
  }
  const n = node;
  let stopping: Promise<void> | undefined;
  return {
    node: n,
    sm,
    server,
    transport,
    stop: () =>
      (stopping ??= (async () => {
        await server.stop();
        await n.stop();
      })()),
  };
}
