import { createServer as netCreateServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as tlsCreateServer } from 'node:tls';
import type { Message, NodeId, SnapMsg } from '../core/messages.js';
import { ConfigError, RaftError } from '../errors.js';
import { crc32 } from '../storage/wal/crc32.js';
import { formatAddress, parseAddress, type HostPort } from './address.js';
import { decodeMessage } from './codec.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, MAX_FRAME_LIMIT } from './framing.js';
import {
  decodeHello,
  encodeAccept,
  encodeChallenge,
  HANDSHAKE_MAX_FRAME_BYTES,
  newNonce,
  verifyHello,
} from './handshake.js';
import { silentTransportLogger, type TransportLogger, type TransportLogLevel } from './logger.js';
import { PeerLink, type LinkContext, type LinkStats, type TcpTlsOptions } from './peer-link.js';
import { SNAP_CHUNK_TAG, decodeSnapFrame, encodeSnapAck, type SnapFrame } from './snapshot-frames.js';
import type {
  IncomingSnapshot,
  MessageHandler,
  SnapshotPayload,
  SnapshotSink,
  Transport,
  TransportEvents,
} from './transport.js';

export type { LinkState, LinkStats } from './peer-link.js';

/** Default bound of bytes queued per peer (a single frame into an empty queue is always admitted). */
export const DEFAULT_MAX_QUEUE_BYTES = 32 * 1024 * 1024;
/** Default first reconnect delay; it doubles per failed attempt. */
export const DEFAULT_BACKOFF_MIN_MS = 50;
/** Default cap of the reconnect delay. */
export const DEFAULT_BACKOFF_MAX_MS = 2_000;
/** Default time a connection has to complete TCP/TLS connect and the handshake. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/** Default time a streamed snapshot waits for the receiver's verdict after its last byte. */
export const DEFAULT_SNAPSHOT_ACK_TIMEOUT_MS = 60_000;
/** An inbound connection stops reading while this many snapshot chunks wait to be written. */
const MAX_PENDING_SNAPSHOT_WRITES = 4;
/** Unauthenticated inbound connections beyond this many are refused at once. */
const MAX_PENDING_HANDSHAKES = 256;

/** Options of {@link TcpTransport}. */
export interface TcpTransportOptions {
  /** This server's name; peers see it in the handshake. */
  readonly id: NodeId;
  /** Where to listen: `host:port` (or `tcp://host:port`); port 0 picks a free port, see {@link TcpTransport.address}. */
  readonly listen: string;
  /** Peer addresses by id. An entry for `id` itself is ignored, so a whole-cluster map may be passed. */
  readonly peers?: Readonly<Record<NodeId, string>>;
  /** The cluster secret every member shares; it authenticates each connection (HMAC-SHA256). */
  readonly secret: string | Uint8Array;
  /**
   * Use TLS (mutual: peers must present a certificate signed by `ca`). When `ca` is omitted,
   * `cert` itself is trusted (one self-signed certificate shared by the cluster).
   */
  readonly tls?: {
    readonly cert: string | Buffer;
    readonly key: string | Buffer;
    readonly ca?: string | Buffer | readonly (string | Buffer)[];
  };
  /** Largest frame sent or accepted, in bytes. Default 64 MiB. Must match across the cluster. */
  readonly maxFrameBytes?: number;
  /** Bytes queued per peer before messages to it are dropped. Default 32 MiB. */
  readonly maxQueueBytes?: number;
  /** First reconnect delay (ms, doubled per failure, jittered). Default 50. */
  readonly backoffMinMs?: number;
  /** Reconnect delay cap (ms). Default 2000. */
  readonly backoffMaxMs?: number;
  /** Time allowed for connect + handshake (ms), both directions. Default 5000. */
  readonly handshakeTimeoutMs?: number;
  /** Structured log hook. Default silent. */
  readonly logger?: TransportLogger;
  /** Link and delivery events for the node (always called asynchronously, never after close). */
  readonly events?: TransportEvents;
  /** How long a streamed snapshot waits for the receiver's verdict after its last byte (ms). Default 60000. */
  readonly snapshotAckTimeoutMs?: number;
}

/** A snapshot stream arriving on one inbound connection. */
interface RxStream {
  readonly id: number;
  readonly incoming: IncomingSnapshot;
  readonly size: number;
  offset: number;
  crc: number;
  /** Chunk writes in flight, chained in order. */
  pending: Promise<void>;
  /** Chunk writes pending on the connection (all its streams): the socket pauses above a bound. */
  readonly flow: { queued: number };
  failed: boolean;
}

function positiveInt(v: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
  return v;
}

/**
 * The TCP transport: one outbound connection per peer (for sending), inbound connections only
 * receive. Frames are length-prefixed and carry the binary codec; each connection starts with a
 * mutual HMAC handshake over the cluster secret, optionally inside TLS.
 *
 * Guarantees (the {@link Transport} contract): `send()` never blocks or throws for a peer; a slow
 * or dead peer's bounded queue overflows into drops without delaying others; per-link FIFO;
 * frames from an unauthenticated connection are never delivered; a bad or oversized frame
 * closes that one connection (logged), never the process.
 *
 * @example
 * ```ts
 * const t = new TcpTransport({
 *   id: 'n1',
 *   listen: '127.0.0.1:2380',
 *   peers: { n2: '127.0.0.1:2381', n3: '127.0.0.1:2382' },
 *   secret: process.env.TSRAFT_CLUSTER_SECRET!,
 *   events: { onUnreachable: (p) => node.reportUnreachable(p) },
 * });
 * await t.start((m) => node.step(m));
 * t.send(messages);
 * ```
 */
export class TcpTransport implements Transport {
  readonly id: NodeId;
  private readonly listenAt: HostPort;
  private readonly ctx: LinkContext;
  private readonly log: TransportLogger;
  private readonly events: TransportEvents | undefined;
  private readonly tls: TcpTlsOptions | undefined;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<Socket>();
  private readonly inboundByPeer = new Map<NodeId, Socket>();
  private readonly unknownReported = new Set<NodeId>();
  private handler: MessageHandler | undefined;
  private sink: SnapshotSink | undefined;
  private server: Server | undefined;
  private bound: HostPort | undefined;
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private handshaking = 0;

  constructor(opts: TcpTransportOptions) {
    if (typeof opts.id !== 'string' || opts.id === '' || Buffer.byteLength(opts.id) > 512) {
      throw new ConfigError('id must be a non-empty string of at most 512 bytes');
    }
    this.id = opts.id;
    this.listenAt = parseAddress(opts.listen, 'listen');
    const secret =
      typeof opts.secret === 'string' ? Buffer.from(opts.secret, 'utf8') : Buffer.from(opts.secret);
    if (secret.byteLength === 0) throw new ConfigError('secret must not be empty');
    const maxFrameBytes = positiveInt(
      opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      'maxFrameBytes',
      HANDSHAKE_MAX_FRAME_BYTES,
      MAX_FRAME_LIMIT,
    );
    const backoffMinMs = positiveInt(opts.backoffMinMs ?? DEFAULT_BACKOFF_MIN_MS, 'backoffMinMs', 1);
    const backoffMaxMs = positiveInt(
      opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS,
      'backoffMaxMs',
      backoffMinMs,
    );
    this.tls =
      opts.tls === undefined
        ? undefined
        : { cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.ca ?? opts.tls.cert };
    this.log = opts.logger ?? silentTransportLogger;
    this.events = opts.events;
    this.ctx = {
      selfId: this.id,
      secret,
      tls: this.tls,
      maxFrameBytes,
      maxQueueBytes: positiveInt(opts.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES, 'maxQueueBytes', 0),
      backoffMinMs,
      backoffMaxMs,
      handshakeTimeoutMs: positiveInt(
        opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
        'handshakeTimeoutMs',
        1,
      ),
      snapshotAckTimeoutMs: positiveInt(
        opts.snapshotAckTimeoutMs ?? DEFAULT_SNAPSHOT_ACK_TIMEOUT_MS,
        'snapshotAckTimeoutMs',
        1,
      ),
      log: (level, event, fields) => this.logSafe(level, event, fields),
      unreachable: (peer) => this.emit((ev) => ev.onUnreachable?.(peer)),
      linkChange: (peer, up) => this.emit((ev) => ev.onLinkChange?.(peer, up)),
      snapshotSent: (peer, ok) => this.emit((ev) => ev.onSnapshotSent?.(peer, ok)),
    };
    for (const [peer, address] of Object.entries(opts.peers ?? {})) this.addPeer(peer, address);
  }

  /** The address actually bound (port 0 resolved). Only after {@link start}. */
  address(): HostPort {
    if (this.bound === undefined) throw new RaftError('STOPPED', 'the transport is not listening');
    return this.bound;
  }

  /** Listens, then starts connecting to every peer. Rejects with `CONFIG_INVALID` if it cannot listen. */
  async start(handler: MessageHandler, snapshots?: SnapshotSink): Promise<void> {
    if (this.closed) throw new RaftError('STOPPED', 'the transport was closed');
    if (this.started) throw new RaftError('CONFIG_INVALID', 'start() may be called only once');
    this.started = true;
    this.handler = handler;
    this.sink = snapshots;
    const server =
      this.tls === undefined
        ? netCreateServer((s) => this.accept(s))
        : tlsCreateServer(
            {
              cert: this.tls.cert,
              key: this.tls.key,
              ca: this.tls.ca as string | Buffer | (string | Buffer)[],
              requestCert: true,
              rejectUnauthorized: true,
              // Our handshake timer starts after TLS; bound the TLS handshake the same way.
              handshakeTimeout: this.ctx.handshakeTimeoutMs,
            },
            (s) => this.accept(s),
          ).on('tlsClientError', (e, s) => {
            this.logSafe('warn', 'tls-failed', {
              remote: `${s.remoteAddress}:${s.remotePort}`,
              reason: e.message,
            });
          });
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.listenAt.host, port: this.listenAt.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      this.server = undefined;
      throw new RaftError(
        'CONFIG_INVALID',
        `cannot listen on ${formatAddress(this.listenAt)}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    server.on('error', (e) => this.logSafe('error', 'listener-error', { reason: e.message }));
    if (this.closed) {
      // close() ran while we were binding: it could not close a server that was not listening yet.
      server.close();
      return;
    }
    const a = server.address() as AddressInfo;
    this.bound = { host: a.address, port: a.port };
    this.logSafe('info', 'listening', {
      id: this.id,
      address: formatAddress(this.bound),
      tls: this.tls !== undefined,
    });
    for (const link of this.links.values()) link.start();
  }

  send(msgs: readonly Message[]): void {
    if (this.closed || msgs.length === 0) return;
    // Group per destination, keeping each peer's order.
    const first = msgs[0]!.to;
    let single = true;
    for (const m of msgs) {
      if (m.to !== first) {
        single = false;
        break;
      }
    }
    if (single) {
      this.sendTo(first, msgs);
      return;
    }
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of msgs) {
      const list = byPeer.get(m.to);
      if (list === undefined) byPeer.set(m.to, [m]);
      else list.push(m);
    }
    for (const [peer, list] of byPeer) this.sendTo(peer, list);
  }

  sendSnapshot(m: SnapMsg, payload: SnapshotPayload): void {
    const link = this.closed ? undefined : this.links.get(m.to);
    if (link === undefined) {
      payload.release?.();
      this.ctx.snapshotSent(m.to, false);
      return;
    }
    link.sendSnapshot(m, payload);
  }

  addPeer(id: NodeId, address: string): void {
    if (id === this.id) return;
    const at = parseAddress(address, `address of peer ${id}`);
    const text = formatAddress(at);
    const old = this.links.get(id);
    if (old !== undefined) {
      if (old.addressText === text) return;
      old.close();
    }
    const link = new PeerLink(this.ctx, id, at, text);
    this.links.set(id, link);
    this.unknownReported.delete(id);
    if (this.started && !this.closed && this.bound !== undefined) link.start();
  }

  removePeer(id: NodeId): void {
    const link = this.links.get(id);
    if (link === undefined) return;
    this.links.delete(id);
    link.close();
    this.logSafe('info', 'peer-removed', { peer: id });
  }

  /** Per-peer link state and counters (for logs, metrics, the dashboard). */
  linkStats(): Record<NodeId, LinkStats> {
    const out: Record<NodeId, LinkStats> = {};
    for (const [id, link] of this.links) out[id] = link.stats();
    return out;
  }

  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closed = true;
    for (const link of this.links.values()) link.close();
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    this.inboundByPeer.clear();
    const server = this.server;
    this.closing = new Promise<void>((resolve) => {
      if (server === undefined || !server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
    }).then(() => this.logSafe('info', 'closed', { id: this.id }));
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------

  private sendTo(peer: NodeId, msgs: readonly Message[]): void {
    const link = this.links.get(peer);
    if (link !== undefined) {
      link.send(msgs);
      return;
    }
    for (const m of msgs) if (m.type === 'snap') this.ctx.snapshotSent(peer, false);
    if (peer === this.id) {
      this.logSafe('warn', 'message-dropped', {
        peer,
        reason: 'addressed to this server',
        count: msgs.length,
      });
      return;
    }
    if (!this.unknownReported.has(peer)) {
      this.unknownReported.add(peer);
      this.logSafe('warn', 'unknown-peer', { peer, count: msgs.length });
      this.ctx.unreachable(peer);
    }
  }

  /** An inbound connection: challenge, verify HELLO, then deliver frames as messages. */
  private accept(socket: Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.handshaking >= MAX_PENDING_HANDSHAKES) {
      this.logSafe('warn', 'connection-refused', { remote, reason: 'too many pending handshakes' });
      socket.destroy();
      return;
    }
    this.handshaking++;
    let handshaking = true;
    const handshakeDone = (): void => {
      if (handshaking) this.handshaking--;
      handshaking = false;
    };
    this.inbound.add(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5_000);

    const decoder = new FrameDecoder(HANDSHAKE_MAX_FRAME_BYTES);
    const nonce = newNonce();
    let peer: NodeId | undefined;
    let failed = false;
    /** The snapshot stream arriving on this connection, if any. */
    let rx: RxStream | undefined;
    const flow = { queued: 0 };
    const fail = (
      level: TransportLogLevel,
      event: string,
      reason: string,
      extra: Record<string, unknown> = {},
    ): void => {
      failed = true;
      decoder.stop();
      this.logSafe(level, event, { remote, ...(peer !== undefined ? { peer } : {}), reason, ...extra });
      socket.destroy();
    };
    const timer = setTimeout(() => {
      fail('warn', 'handshake-timeout', `no valid HELLO within ${this.ctx.handshakeTimeoutMs} ms`);
    }, this.ctx.handshakeTimeoutMs);
    timer.unref();

    socket.write(encodeChallenge(nonce));
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => {
          if (peer === undefined) {
            const hello = decodeHello(frame);
            if (!verifyHello(this.ctx.secret, nonce, hello)) {
              fail('warn', 'auth-failed', 'HELLO does not prove the cluster secret', {
                claimed: hello.clientId,
              });
              return;
            }
            peer = hello.clientId;
            clearTimeout(timer);
            handshakeDone();
            decoder.maxFrameBytes = this.ctx.maxFrameBytes;
            socket.write(encodeAccept(this.ctx.secret, nonce, hello, this.id));
            const old = this.inboundByPeer.get(peer);
            // A reconnecting peer's previous connection is dead or dying: drop it.
            if (old !== undefined && old !== socket) {
              this.logSafe('info', 'inbound-replaced', { peer, remote });
              old.destroy();
            }
            this.inboundByPeer.set(peer, socket);
            this.logSafe('info', 'inbound-up', { peer, remote });
            return;
          }
          if (frame[0] === SNAP_CHUNK_TAG) {
            rx = this.onSnapFrame(socket, peer, rx, decodeSnapFrame(frame), remote, flow);
            return;
          }
          const m = decodeMessage(frame);
          if (m.from !== peer || m.to !== this.id) {
            fail(
              'warn',
              'bad-frame',
              `message ${m.from}->${m.to} on a connection from ${peer} to ${this.id}`,
            );
            return;
          }
          this.deliver(m);
        });
      } catch (e) {
        fail('warn', 'bad-frame', (e as Error).message);
      }
    });
    socket.on('error', (e) => {
      if (!failed) this.logSafe('debug', 'inbound-error', { remote, reason: e.message });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      handshakeDone();
      if (rx !== undefined && !rx.failed) {
        rx.failed = true;
        rx.incoming.abort('connection closed');
        this.logSafe('warn', 'snapshot-receive-failed', { peer, reason: 'connection closed' });
      }
      rx = undefined;
      this.inbound.delete(socket);
      if (peer !== undefined && this.inboundByPeer.get(peer) === socket) this.inboundByPeer.delete(peer);
      if (!failed && decoder.hasPartialFrame) {
        this.logSafe('warn', 'bad-frame', {
          remote,
          ...(peer !== undefined ? { peer } : {}),
          reason: `connection closed inside a frame (${decoder.bufferedBytes} bytes buffered)`,
        });
      }
      this.logSafe('debug', 'inbound-closed', { remote, ...(peer !== undefined ? { peer } : {}) });
    });
  }

  /**
   * One frame of a snapshot stream on an inbound connection from `peer`. Chunks are written in
   * order through the sink; the connection pauses while too many writes are pending (bounded
   * memory). Returns the connection's stream state after the frame.
   */
  private onSnapFrame(
    socket: Socket,
    peer: NodeId,
    rx: RxStream | undefined,
    f: SnapFrame,
    remote: string,
    flow: { queued: number },
  ): RxStream | undefined {
    const ack = (stream: number, ok: boolean, reason: string): void => {
      if (!socket.destroyed) socket.write(encodeSnapAck({ stream, ok, reason }));
    };
    const refuse = (st: RxStream, reason: string): void => {
      if (st.failed) return;
      st.failed = true;
      st.incoming.abort(reason);
      this.logSafe('warn', 'snapshot-receive-failed', { peer, remote, reason });
      ack(st.id, false, reason);
    };
    if (f.kind === 'begin') {
      if (rx !== undefined && !rx.failed) {
        rx.failed = true;
        rx.incoming.abort('replaced by a newer stream');
      }
      const m = f.msg;
      if (m.from !== peer || m.to !== this.id) {
        ack(f.stream, false, `message ${m.from}->${m.to} on a connection from ${peer} to ${this.id}`);
        return undefined;
      }
      let incoming: IncomingSnapshot | undefined;
      try {
        incoming = this.sink?.begin(m, f.size);
      } catch (e) {
        this.logSafe('error', 'snapshot-sink-threw', { peer, reason: (e as Error).message });
      }
      if (incoming === undefined) {
        ack(f.stream, false, 'this server does not accept the snapshot now');
        return undefined;
      }
      this.logSafe('debug', 'snapshot-stream-begin', {
        peer,
        index: m.snapshot.meta.index,
        term: m.snapshot.meta.term,
        bytes: f.size,
      });
      return {
        id: f.stream,
        incoming,
        size: f.size,
        offset: 0,
        crc: 0,
        pending: Promise.resolve(),
        flow,
        failed: false,
      };
    }
    if (rx === undefined || rx.id !== f.stream || rx.failed) {
      // A stream we refused or lost track of: its sender hears from us once (if at its end).
      if (f.kind === 'end' && rx?.id !== f.stream) ack(f.stream, false, 'unknown snapshot stream');
      return rx;
    }
    const st = rx;
    if (f.kind === 'data') {
      if (f.offset !== st.offset || st.offset + f.data.byteLength > st.size) {
        refuse(st, `chunk at offset ${f.offset}, expected ${st.offset} (of ${st.size})`);
        return st;
      }
      st.offset += f.data.byteLength;
      st.crc = crc32(f.data, 0, f.data.byteLength, st.crc);
      flow.queued++;
      if (flow.queued >= MAX_PENDING_SNAPSHOT_WRITES && !socket.isPaused()) socket.pause();
      const data = f.data;
      st.pending = st.pending.then(async () => {
        try {
          if (!st.failed) await st.incoming.write(data);
        } catch (e) {
          refuse(st, `writing the snapshot failed: ${(e as Error).message}`);
        } finally {
          flow.queued--;
          if (flow.queued < MAX_PENDING_SNAPSHOT_WRITES / 2 && socket.isPaused()) socket.resume();
        }
      });
      return st;
    }
    // end
    if (f.size !== st.size || st.offset !== st.size || f.crc !== st.crc) {
      refuse(
        st,
        f.crc !== st.crc
          ? 'the snapshot fails its checksum'
          : `the snapshot ended after ${st.offset} bytes, expected ${st.size}`,
      );
      return st;
    }
    void st.pending.then(async () => {
      if (st.failed) return;
      try {
        await st.incoming.finish();
      } catch (e) {
        refuse(st, `installing the snapshot failed: ${(e as Error).message}`);
        return;
      }
      st.failed = true; // done: a close from now on is not a failure
      this.logSafe('debug', 'snapshot-stream-done', { peer, bytes: st.size });
      ack(st.id, true, '');
    });
    return st;
  }

  private deliver(m: Message): void {
    // The handler may have closed us while frames of the same chunk were still queued.
    if (this.closed) return;
    try {
      this.handler?.(m);
    } catch (e) {
      this.logSafe('error', 'handler-threw', { from: m.from, type: m.type, reason: (e as Error).message });
    }
  }

  /** Events run asynchronously (never re-entering the caller of `send()`) and never after close. */
  private emit(fn: (ev: TransportEvents) => void): void {
    const ev = this.events;
    if (ev === undefined) return;
    queueMicrotask(() => {
      if (this.closed) return;
      try {
        fn(ev);
      } catch (e) {
        this.logSafe('error', 'event-handler-threw', { reason: (e as Error).message });
      }
    });
  }

  private logSafe(level: TransportLogLevel, event: string, fields: Record<string, unknown>): void {
    try {
      this.log(level, event, fields);
    } catch {
      // A broken logger must not break the transport.
    }
  }
}
