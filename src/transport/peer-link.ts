import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { Message, NodeId, SnapMsg } from '../core/messages.js';
import { RaftError } from '../errors.js';
import { crc32 } from '../storage/wal/crc32.js';
import type { HostPort } from './address.js';
import { encodedSize, encodeFrames } from './codec.js';
import { FrameDecoder } from './framing.js';
import {
  decodeAccept,
  decodeChallenge,
  encodeHello,
  HANDSHAKE_MAX_FRAME_BYTES,
  newNonce,
  verifyAccept,
} from './handshake.js';
import type { TransportLogLevel } from './logger.js';
import {
  SNAP_ACK_TAG,
  decodeSnapAck,
  encodeSnapBegin,
  encodeSnapData,
  encodeSnapEnd,
} from './snapshot-frames.js';
import type { SnapshotPayload } from './transport.js';

/** TLS material for peer links (PEM). */
export interface TcpTlsOptions {
  /** This server's certificate chain (also presented as the client certificate). */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** The CA(s) that sign peers' certificates; peers must present one (mutual TLS). */
  readonly ca: string | Buffer | readonly (string | Buffer)[];
}

/** What a link needs from its transport: settings, logging and (deferred, guarded) events. */
export interface LinkContext {
  readonly selfId: NodeId;
  readonly secret: Buffer;
  readonly tls: TcpTlsOptions | undefined;
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  readonly handshakeTimeoutMs: number;
  /** How long a streamed snapshot may wait for the receiver's verdict after its last byte. */
  readonly snapshotAckTimeoutMs: number;
  log(level: TransportLogLevel, event: string, fields: Record<string, unknown>): void;
  unreachable(peer: NodeId): void;
  linkChange(peer: NodeId, up: boolean): void;
  snapshotSent(peer: NodeId, ok: boolean): void;
}

/** The state of an outbound link, as reported by `TcpTransport.linkStats()`. */
export type LinkState = 'idle' | 'connecting' | 'up' | 'backoff' | 'closed';

/** Counters of one outbound link. */
export interface LinkStats {
  readonly address: string;
  readonly state: LinkState;
  /** Bytes waiting to be written (socket buffer, or the pre-connect queue). */
  readonly queuedBytes: number;
  /** Messages handed to the socket. */
  readonly sent: number;
  /** Messages dropped (peer down, queue full, frame too large, link closed). */
  readonly dropped: number;
  /** Snapshot bytes written to the socket (all streams). */
  readonly snapshotBytes: number;
  /** Snapshot streams the peer acknowledged / that failed. */
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
}

/** A snapshot being streamed to the peer. */
interface SnapStream {
  readonly id: number;
  readonly msg: SnapMsg;
  readonly payload: SnapshotPayload;
  iter: AsyncIterator<Uint8Array> | undefined;
  /** The socket the stream began on; a new connection restarts nothing (the core resends). */
  socket: Socket | undefined;
  offset: number;
  crc: number;
  reading: boolean;
  ended: boolean;
  ackTimer: NodeJS.Timeout | undefined;
}

/**
 * A snapshot stream reads the next chunk only while fewer than this many bytes wait in the
 * socket's buffer, so a heartbeat or append written meanwhile waits behind at most about this
 * much snapshot data (flow control: a snapshot never starves the other traffic to its peer).
 */
export const SNAPSHOT_LOW_WATER_BYTES = 1 << 20;
/** Largest snapshot chunk in one frame (chunks from the payload are split to fit). */
const MAX_SNAPSHOT_CHUNK = 1 << 20;

/** Encoded frames written together; a snapshot travels alone so its write can be reported. */
interface Group {
  readonly chunks: Buffer[];
  readonly bytes: number;
  readonly count: number;
  readonly snap: boolean;
}

const KEEPALIVE_MS = 5_000;

/**
 * The one outbound connection to a peer; it only sends (A→B messages ride A's link to B).
 *
 * - Before the first connection completes, messages wait in a bounded queue. Once an attempt
 *   fails or the connection breaks, the peer is *down*: messages are dropped (Raft retries) and
 *   `onUnreachable` is reported once per outage, until the link is up again.
 * - While up, the socket's own write buffer is the queue, bounded by `maxQueueBytes` (a frame
 *   into an empty queue is always admitted, so a snapshot larger than the bound can still go).
 *   Overflow drops messages and reports the peer unreachable once per congestion episode.
 * - Reconnects back off exponentially from `backoffMinMs` to `backoffMaxMs`, with jitter.
 */
export class PeerLink {
  private state: LinkState = 'idle';
  private down = false;
  private socket: Socket | undefined;
  private pending: Group[] = [];
  private pendingBytes = 0;
  private attempt = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private reported = false;
  private sent = 0;
  private dropped = 0;
  private snap: SnapStream | undefined;
  private snapSeq = 0;
  private snapshotBytes = 0;
  private snapshotsSent = 0;
  private snapshotsFailed = 0;

  constructor(
    private readonly ctx: LinkContext,
    readonly peer: NodeId,
    readonly address: HostPort,
    readonly addressText: string,
  ) {}

  /** Starts connecting (no-op unless idle). */
  start(): void {
    if (this.state === 'idle') this.connect();
  }

  stats(): LinkStats {
    return {
      address: this.addressText,
      state: this.state,
      queuedBytes: this.state === 'up' ? (this.socket?.writableLength ?? 0) : this.pendingBytes,
      sent: this.sent,
      dropped: this.dropped,
      snapshotBytes: this.snapshotBytes,
      snapshotsSent: this.snapshotsSent,
      snapshotsFailed: this.snapshotsFailed,
    };
  }

  /**
   * Streams an InstallSnapshot message with its bytes from `payload` (see snapshot-frames.ts).
   * One stream per peer: a newer one replaces a stream in progress. The outcome goes to
   * `snapshotSent`: ok once the peer acknowledged; failed if the link breaks first (the
   * leader then resends from the start once the peer answers again).
   */
  sendSnapshot(m: SnapMsg, payload: SnapshotPayload): void {
    if (this.state === 'closed' || this.down) {
      this.dropped++;
      this.snapshotsFailed++;
      payload.release?.();
      this.ctx.snapshotSent(this.peer, false);
      if (this.state !== 'closed') this.reportOnce();
      return;
    }
    if (this.snap !== undefined) this.endStream(this.snap, undefined, 'replaced by a newer snapshot');
    this.snapSeq = (this.snapSeq + 1) >>> 0;
    const st: SnapStream = {
      id: (((Math.random() * 0xffff) << 16) | (this.snapSeq & 0xffff)) >>> 0,
      msg: m,
      payload,
      iter: undefined,
      socket: undefined,
      offset: 0,
      crc: 0,
      reading: false,
      ended: false,
      ackTimer: undefined,
    };
    this.snap = st;
    this.ctx.log('info', 'snapshot-send-begin', {
      peer: this.peer,
      index: m.snapshot.meta.index,
      term: m.snapshot.meta.term,
      bytes: payload.size,
    });
    void this.pump();
  }

  /** Encodes and writes (or queues, or drops) messages for this peer, in order. Never throws. */
  send(msgs: readonly Message[]): void {
    if (this.state === 'closed' || this.down) {
      this.dropMessages(msgs, this.state === 'closed' ? 'link closed' : 'peer down');
      return;
    }
    const groups = this.encode(msgs);
    if (groups.length === 0) return;
    if (this.state === 'up') this.write(groups);
    else this.enqueue(groups);
  }

  /** Closes the link for good; queued snapshots are reported as failed. */
  close(): void {
    if (this.state === 'closed') return;
    const wasUp = this.state === 'up';
    this.state = 'closed';
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.dropPending('link closed');
    if (this.snap !== undefined) this.endStream(this.snap, false, 'link closed');
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
    if (wasUp) this.ctx.linkChange(this.peer, false);
  }

  // -------------------------------------------------------------------------------------------
  // Snapshot streaming

  /**
   * Writes the stream's next frames while the socket's buffer is below the low-water mark;
   * resumes on 'drain'. Reading a chunk is asynchronous; at most one read is in flight.
   */
  private async pump(): Promise<void> {
    const st = this.snap;
    if (st === undefined || st.reading || st.ended || this.state !== 'up') return;
    const s = this.socket!;
    if (st.socket === undefined) {
      st.socket = s;
      try {
        s.write(encodeSnapBegin(st.id, st.payload.size, st.msg));
      } catch (e) {
        this.endStream(st, false, `cannot encode: ${(e as Error).message}`);
        return;
      }
      st.iter = st.payload.chunks[Symbol.asyncIterator]();
    } else if (st.socket !== s) {
      // The connection it began on is gone (onClose already failed it); nothing to do.
      return;
    }
    while (this.snap === st && this.socket === s && s.writableLength < SNAPSHOT_LOW_WATER_BYTES) {
      st.reading = true;
      let r: IteratorResult<Uint8Array>;
      try {
        r = await st.iter!.next();
      } catch (e) {
        st.reading = false;
        if (this.snap === st)
          this.endStream(st, false, `reading the snapshot failed: ${(e as Error).message}`);
        return;
      }
      st.reading = false;
      if (this.snap !== st || this.socket !== s || this.state !== 'up') return;
      if (r.done === true) {
        if (st.offset !== st.payload.size) {
          this.endStream(st, false, `the snapshot had ${st.offset} bytes, not ${st.payload.size}`);
          return;
        }
        s.write(encodeSnapEnd(st.id, st.offset, st.crc));
        st.ended = true;
        st.ackTimer = setTimeout(() => {
          if (this.snap === st) this.endStream(st, false, 'no acknowledgement from the peer in time');
        }, this.ctx.snapshotAckTimeoutMs);
        st.ackTimer.unref();
        return;
      }
      const chunk = r.value;
      const max = Math.min(MAX_SNAPSHOT_CHUNK, this.ctx.maxFrameBytes - 64);
      s.cork();
      for (let o = 0; o < chunk.byteLength; o += max) {
        const part = chunk.subarray(o, Math.min(chunk.byteLength, o + max));
        for (const b of encodeSnapData(st.id, st.offset, part)) s.write(b);
        st.crc = crc32(part, 0, part.byteLength, st.crc);
        st.offset += part.byteLength;
        this.snapshotBytes += part.byteLength;
      }
      s.uncork();
    }
  }

  /** The receiver's verdict on a stream. */
  private onSnapAck(stream: number, ok: boolean, reason: string): void {
    const st = this.snap;
    if (st === undefined || st.id !== stream) return;
    this.endStream(st, ok, ok ? 'acknowledged' : `refused by the peer: ${reason}`);
  }

  /** Ends a stream: `ok` undefined ends it silently (replaced), else reports the outcome. */
  private endStream(st: SnapStream, ok: boolean | undefined, reason: string): void {
    if (this.snap === st) this.snap = undefined;
    if (st.ackTimer !== undefined) clearTimeout(st.ackTimer);
    st.ackTimer = undefined;
    const it = st.iter;
    st.iter = undefined;
    if (it?.return !== undefined) void it.return().catch(() => undefined);
    st.payload.release?.();
    if (ok === true) this.snapshotsSent++;
    else this.snapshotsFailed++;
    this.ctx.log(ok === false ? 'warn' : 'info', ok === true ? 'snapshot-sent' : 'snapshot-send-ended', {
      peer: this.peer,
      index: st.msg.snapshot.meta.index,
      bytes: st.offset,
      reason,
    });
    if (ok !== undefined) this.ctx.snapshotSent(this.peer, ok);
  }

  // -------------------------------------------------------------------------------------------

  private encode(msgs: readonly Message[]): Group[] {
    const groups: Group[] = [];
    let run: Message[] = [];
    for (const m of msgs) {
      let size: number;
      try {
        size = encodedSize(m);
      } catch (e) {
        this.unencodable([m], e);
        continue;
      }
      if (size > this.ctx.maxFrameBytes) {
        this.unencodable([m], new Error(`${size} bytes exceed maxFrameBytes ${this.ctx.maxFrameBytes}`));
        continue;
      }
      if (m.type === 'snap') {
        // A snapshot travels in its own group so that its write completion can be reported.
        this.pushRun(run, groups, false);
        run = [];
        this.pushRun([m], groups, true);
      } else {
        run.push(m);
      }
    }
    this.pushRun(run, groups, false);
    return groups;
  }

  private pushRun(run: readonly Message[], groups: Group[], snap: boolean): void {
    if (run.length === 0) return;
    try {
      const { chunks, bytes } = encodeFrames(run);
      groups.push({ chunks, bytes, count: run.length, snap });
    } catch (e) {
      // A value out of range somewhere in the run: find it by encoding one at a time, keep order.
      if (run.length === 1) this.unencodable(run, e);
      else for (const m of run) this.pushRun([m], groups, snap);
    }
  }

  private unencodable(msgs: readonly Message[], e: unknown): void {
    for (const m of msgs) {
      this.ctx.log('warn', 'message-dropped', {
        peer: this.peer,
        type: m.type,
        reason: (e as Error).message,
      });
    }
    this.dropMessages(msgs, 'unencodable');
  }

  private write(groups: readonly Group[]): void {
    const s = this.socket!;
    let queued = s.writableLength;
    let overflow = false;
    // One cork/uncork: Node hands every chunk below to the kernel in a single writev.
    s.cork();
    for (const g of groups) {
      if (queued > 0 && queued + g.bytes > this.ctx.maxQueueBytes) {
        overflow = true;
        this.dropGroup(g);
        continue;
      }
      queued += g.bytes;
      this.sent += g.count;
      const last = g.chunks.length - 1;
      for (let i = 0; i < last; i++) s.write(g.chunks[i]!);
      if (g.snap) {
        s.write(g.chunks[last]!, (err) => this.ctx.snapshotSent(this.peer, err == null));
      } else {
        s.write(g.chunks[last]!);
      }
    }
    s.uncork();
    if (overflow) {
      this.ctx.log('debug', 'queue-full', { peer: this.peer, queuedBytes: s.writableLength });
      this.reportOnce();
    }
  }

  private enqueue(groups: readonly Group[]): void {
    let overflow = false;
    for (const g of groups) {
      if (this.pendingBytes > 0 && this.pendingBytes + g.bytes > this.ctx.maxQueueBytes) {
        overflow = true;
        this.dropGroup(g);
        continue;
      }
      this.pending.push(g);
      this.pendingBytes += g.bytes;
    }
    if (overflow) this.reportOnce();
  }

  private dropGroup(g: Group): void {
    this.dropped += g.count;
    if (g.snap) this.ctx.snapshotSent(this.peer, false);
  }

  private dropPending(reason: string): void {
    if (this.pending.length === 0) return;
    const p = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let n = 0;
    for (const g of p) {
      n += g.count;
      this.dropGroup(g);
    }
    this.ctx.log('debug', 'messages-dropped', { peer: this.peer, count: n, reason });
  }

  private dropMessages(msgs: readonly Message[], reason: string): void {
    this.dropped += msgs.length;
    for (const m of msgs) if (m.type === 'snap') this.ctx.snapshotSent(this.peer, false);
    if (reason === 'peer down') this.reportOnce();
  }

  private reportOnce(): void {
    if (this.reported) return;
    this.reported = true;
    this.ctx.unreachable(this.peer);
  }

  private connect(): void {
    this.state = 'connecting';
    const { host, port } = this.address;
    let socket: Socket;
    const tls = this.ctx.tls;
    if (tls !== undefined) {
      const opts: ConnectionOptions = {
        host,
        port,
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca as string | Buffer | (string | Buffer)[],
      };
      // SNI must be a host name, never an IP address.
      if (isIP(host) === 0) opts.servername = host;
      socket = tlsConnect(opts);
    } else {
      socket = netConnect({ host, port });
    }
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_MS);

    const decoder = new FrameDecoder(HANDSHAKE_MAX_FRAME_BYTES);
    const clientNonce = newNonce();
    let serverNonce: Buffer | undefined;
    let failure: string | undefined;
    let authFailure = false;
    const timer = setTimeout(() => {
      failure = `no handshake within ${this.ctx.handshakeTimeoutMs} ms`;
      socket.destroy();
    }, this.ctx.handshakeTimeoutMs);
    timer.unref();

    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => {
          if (this.socket !== socket) return;
          if (serverNonce === undefined) {
            serverNonce = decodeChallenge(frame);
            socket.write(encodeHello(this.ctx.secret, serverNonce, clientNonce, this.ctx.selfId));
          } else if (this.state === 'connecting') {
            const acc = decodeAccept(frame);
            if (!verifyAccept(this.ctx.secret, serverNonce, clientNonce, this.ctx.selfId, acc)) {
              authFailure = true;
              throw new RaftError('BAD_REQUEST', 'the server failed to prove the cluster secret');
            }
            if (acc.serverId !== this.peer) {
              authFailure = true;
              throw new RaftError('BAD_REQUEST', `expected peer ${this.peer}, reached ${acc.serverId}`);
            }
            clearTimeout(timer);
            this.onUp(socket);
          } else if (frame[0] === SNAP_ACK_TAG) {
            const ack = decodeSnapAck(frame);
            this.onSnapAck(ack.stream, ack.ok, ack.reason);
          } else {
            throw new RaftError('BAD_REQUEST', 'unexpected frame from the server after the handshake');
          }
        });
      } catch (e) {
        failure = (e as Error).message;
        decoder.stop();
        socket.destroy();
      }
    });
    socket.on('error', (e) => {
      failure ??= e.message;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      this.onClose(
        socket,
        failure ?? 'closed by peer',
        authFailure || (serverNonce !== undefined && this.state === 'connecting'),
      );
    });
  }

  private onUp(socket: Socket): void {
    this.state = 'up';
    this.down = false;
    this.reported = false;
    this.attempt = 0;
    this.failures = 0;
    socket.on('drain', () => {
      this.reported = false;
      void this.pump();
    });
    this.ctx.log('info', 'link-up', { peer: this.peer, address: this.addressText });
    this.ctx.linkChange(this.peer, true);
    if (this.pending.length > 0) {
      const p = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      this.write(p);
    }
    void this.pump();
  }

  /**
   * @param handshakeFailed the server answered but the exchange failed (wrong secret, wrong
   *   peer, or the server closed on us after our HELLO).
   */
  private onClose(socket: Socket, reason: string, handshakeFailed: boolean): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    if (this.state === 'closed') return;
    const wasUp = this.state === 'up';
    this.down = true;
    this.dropPending('peer down');
    if (this.snap !== undefined) this.endStream(this.snap, false, `connection lost: ${reason}`);
    this.failures++;
    if (wasUp) {
      this.ctx.log('info', 'link-down', { peer: this.peer, address: this.addressText, reason });
      this.ctx.linkChange(this.peer, false);
    } else if (handshakeFailed) {
      // Logged loudly on the first failure of an outage, quietly on every retry after it.
      this.ctx.log(this.failures === 1 ? 'warn' : 'debug', 'handshake-failed', {
        peer: this.peer,
        address: this.addressText,
        reason: `${reason} (is the cluster secret the same on both?)`,
      });
    } else {
      this.ctx.log(this.failures === 1 ? 'info' : 'debug', 'connect-failed', {
        peer: this.peer,
        address: this.addressText,
        reason,
      });
    }
    this.reportOnce();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const base = Math.min(this.ctx.backoffMaxMs, this.ctx.backoffMinMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    // Jitter in [base/2, base) so that peers restarted together do not reconnect in lockstep.
    const delay = base / 2 + Math.random() * (base / 2);
    this.state = 'backoff';
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state === 'backoff') this.connect();
    }, delay);
    this.timer.unref();
  }
}
