import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { RaftError, isRaftError, type RaftErrorCode } from '../errors.js';
import type { NodeId } from '../core/messages.js';
import type { RaftNode } from '../node/node.js';
import type { SnapshotStatus } from '../node/snapshots.js';
import { silentLogger, type Logger } from '../node/logger.js';
import { encodeCommand, type KvOp } from './commands.js';
import type { KvResult, KvStateMachine } from './state.js';

/** Options of a {@link KvServer}. */
export interface KvServerOptions {
  readonly name: NodeId;
  readonly node: RaftNode<KvResult>;
  readonly sm: KvStateMachine;
  /** Where to listen, e.g. `http://127.0.0.1:2379` (port 0: any). */
  readonly listen: string;
  /** Static peer URLs by member name (from `--initial-cluster`). */
  readonly peerUrls: ReadonlyMap<NodeId, string>;
  /** The client URL other members and clients should use for this server (default: the bound address). */
  readonly advertiseClientUrl?: string;
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** With a token, every request must carry `Authorization: Bearer <token>`. */
  readonly token?: string;
  readonly maxKeyBytes?: number;
  readonly maxValueBytes?: number;
  /** A learner is promoted only when within this many entries of the leader's log. Default 1000. */
  readonly promoteMaxLag?: number;
  /** How long adding a voter waits for the new learner to catch up before promoting. Default 30 s. */
  readonly catchUpTimeoutMs?: number;
  readonly logger?: Logger;
  /** Deliberate bug for the fault suite: answer linearizable reads from local state, no barrier. @internal */
  readonly unsafeStaleReads?: boolean;
}

/** HTTP status for each error code (the one mapping table). */
const STATUS: Partial<Record<RaftErrorCode | 'NOT_FOUND' | 'PRECONDITION_FAILED' | 'TOO_LARGE', number>> = {
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  PRECONDITION_FAILED: 412,
  TOO_LARGE: 413,
  NOT_LEADER: 503,
  PROPOSAL_DROPPED: 503,
  BACK_PRESSURE: 503,
  TRANSFER_IN_PROGRESS: 503,
  CONF_CHANGE_IN_PROGRESS: 409,
  STOPPED: 503,
  STORAGE_FAILED: 503,
  TIMEOUT: 504,
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const enc = new TextEncoder();

/**
 * The reference server: the replicated key-value store's HTTP API (DESIGN.md "kv").
 * Writes go through the leader (a follower forwards them); linearizable and lease reads are
 * served by any node after a ReadIndex barrier; stale reads are local.
 */
export class KvServer {
  private server: http.Server | undefined;
  private readonly log: Logger;
  private readonly maxKey: number;
  private readonly maxValue: number;
  private clientUrl = '';
  private readonly counters = new Map<string, number>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private publishTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: KvServerOptions) {
    this.log = o.logger ?? silentLogger;
    this.maxKey = o.maxKeyBytes ?? 4096;
    this.maxValue = o.maxValueBytes ?? 1024 * 1024;
  }

  /** The URL clients reach this server at. */
  url(): string {
    return this.clientUrl;
  }

  async start(): Promise<void> {
    const u = new URL(this.o.listen);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      void this.handle(req, res);
    };
    const server = this.o.tls
      ? https.createServer({ cert: this.o.tls.cert, key: this.o.tls.key }, handler)
      : http.createServer(handler);
    server.keepAliveTimeout = 65_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(u.port || (this.o.tls ? 443 : 80)), u.hostname.replace(/^\[|\]$/g, ''), () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.clientUrl = this.o.advertiseClientUrl ?? `${this.o.tls ? 'https' : 'http'}://${host}:${a.port}`;
    this.log('info', 'client-listening', { url: this.clientUrl });
    // Publish our client URL through the log so every member can forward to us (as etcd does).
    const publish = (): void => {
      const cur = this.o.sm.members.get(this.o.name);
      if (cur?.clientUrl === this.clientUrl) return;
      this.o.node.submit(
        this.command(
          'member',
          this.o.name,
          enc.encode(JSON.stringify({ clientUrl: this.clientUrl })),
          -1,
          '',
          0,
        ),
      );
    };
    this.publishTimer = setInterval(publish, 500);
    publish();
  }

  async stop(): Promise<void> {
    if (this.publishTimer) clearInterval(this.publishTimer);
    this.agent.destroy();
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeIdleConnections();
    });
  }

  private count(name: string): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1);
  }

  private command(
    op: KvOp,
    key: string,
    value: Uint8Array,
    prevIndex: number,
    clientId: string,
    seq: number,
  ): Uint8Array {
    return encodeCommand({ op, time: Date.now(), clientId, seq, prevIndex, key, value });
  }

  // ------------------------------------------------------------------ routing

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let status = 500;
    try {
      if (this.o.token !== undefined && !this.authorized(req)) {
        throw new HttpError(401, 'UNAUTHORIZED', 'a valid bearer token is required');
      }
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname;
      const method = req.method ?? 'GET';
      if (path.startsWith('/v1/kv/')) {
        const key = this.parseKey(path.slice('/v1/kv/'.length));
        if (method === 'GET') status = await this.get(key, url, res);
        else if (method === 'PUT') status = await this.write(req, res, 'put', key, url);
        else if (method === 'DELETE') status = await this.write(req, res, 'delete', key, url);
        else
          throw new HttpError(
            405,
            'METHOD_NOT_ALLOWED',
            `${method} is not allowed on keys (GET, PUT, DELETE)`,
          );
      } else if (path === '/v1/kv' || path === '/v1/kv/') {
        if (method !== 'GET')
          throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on /v1/kv (GET)`);
        status = await this.list(url, res);
      } else if (path.startsWith('/v1/cluster/')) {
        status = await this.clusterAdmin(req, res, path, method);
      } else if (path === '/v1/cluster') {
        if (method !== 'GET')
          throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on /v1/cluster (GET)`);
        status = this.json(res, 200, this.cluster());
      } else if (path === '/v1/snapshot') {
        // §7: take a snapshot on this member now (issue 6).
        if (method !== 'POST')
          throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on /v1/snapshot (POST)`);
        const snap = await this.o.node.snapshot();
        const st = this.o.node.snapshotStatus();
        status = this.json(res, 200, {
          name: this.o.name,
          index: snap.index,
          term: snap.term,
          ms: st.lastTakeMs,
        });
      } else if (path === '/health') {
        if (method !== 'GET')
          throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on /health (GET)`);
        status = this.health(res);
      } else if (path === '/metrics') {
        if (method !== 'GET')
          throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on /metrics (GET)`);
        status = this.metrics(res);
      } else {
        throw new HttpError(404, 'NO_ROUTE', `no route for ${path}`);
      }
    } catch (e) {
      status = this.error(res, e);
    } finally {
      this.count(`http_${status}`);
    }
  }

  private authorized(req: http.IncomingMessage): boolean {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    if (!m) return false;
    const a = Buffer.from(m[1]!);
    const b = Buffer.from(this.o.token!);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private parseKey(raw: string): string {
    let key: string;
    try {
      key = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, 'BAD_KEY', 'the key is not valid percent-encoding');
    }
    if (key === '') throw new HttpError(400, 'BAD_KEY', 'the key is empty');
    if (Buffer.byteLength(key) > this.maxKey) {
      throw new HttpError(413, 'KEY_TOO_LARGE', `the key is longer than ${this.maxKey} bytes`);
    }
    return key;
  }

  private error(res: http.ServerResponse, e: unknown): number {
    let status: number;
    let code: string;
    let message: string;
    const headers: Record<string, string> = {};
    if (e instanceof HttpError) {
      status = e.status;
      code = e.code;
      message = e.message;
    } else if (isRaftError(e)) {
      status = STATUS[e.code] ?? 500;
      code = e.code;
      message = e.message;
      if (isRaftError(e, 'NOT_LEADER') || isRaftError(e, 'BACK_PRESSURE')) headers['retry-after'] = '1';
    } else {
      status = 500;
      code = 'INTERNAL';
      message = (e as Error)?.message ?? String(e);
      this.log('error', 'http-internal-error', { error: message });
    }
    if (code === 'NOT_LEADER' || code === 'NO_LEADER') code = 'NO_LEADER';
    if (res.headersSent) {
      res.destroy();
      return status;
    }
    return this.json(res, status, { error: { code, message } }, headers);
  }

  private json(
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): number {
    const b = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(b),
      ...headers,
    });
    res.end(b);
    return status;
  }

  private readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      return Promise.reject(new HttpError(413, 'VALUE_TOO_LARGE', `the value is larger than ${limit} bytes`));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          reject(new HttpError(413, 'VALUE_TOO_LARGE', `the value is larger than ${limit} bytes`));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  // ------------------------------------------------------------------ writes

  private parseIndexParam(url: URL, name: string): number {
    const v = url.searchParams.get(name);
    if (v === null) return -1;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
      throw new HttpError(400, 'BAD_PARAM', `${name} must be a non-negative integer`);
    }
    return Number(v);
  }

  private session(req: http.IncomingMessage): { clientId: string; seq: number } {
    const id = req.headers['x-client-id'];
    const seqH = req.headers['x-request-seq'];
    if (id === undefined && seqH === undefined) return { clientId: '', seq: 0 };
    if (typeof id !== 'string' || id === '' || Buffer.byteLength(id) > 256) {
      throw new HttpError(400, 'BAD_SESSION', 'X-Client-Id must be a non-empty string of at most 256 bytes');
    }
    if (
      typeof seqH !== 'string' ||
      !/^\d+$/.test(seqH) ||
      !Number.isSafeInteger(Number(seqH)) ||
      Number(seqH) < 1
    ) {
      throw new HttpError(400, 'BAD_SESSION', 'X-Request-Seq must be a positive integer');
    }
    return { clientId: id, seq: Number(seqH) };
  }

  private async write(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    op: 'put' | 'delete',
    key: string,
    url: URL,
  ): Promise<number> {
    const prevIndex = this.parseIndexParam(url, 'prevIndex');
    const { clientId, seq } = this.session(req);
    const body = await this.readBody(req, op === 'put' ? this.maxValue : 0);
    if (!this.o.node.isLeader()) return this.forward(req, res, body);
    const cmd = this.command(op, key, body, prevIndex, clientId, seq);
    this.count('proposals');
    const r = await this.o.node.propose(cmd);
    if (r.ok) return this.json(res, 200, r.deleted ? { index: r.index, deleted: true } : { index: r.index });
    switch (r.code) {
      case 'PRECONDITION_FAILED':
        return this.json(res, 412, {
          error: {
            code: 'PRECONDITION_FAILED',
            message: `modIndex is ${r.modIndex ?? 0}`,
            modIndex: r.modIndex ?? 0,
          },
        });
      case 'NOT_FOUND':
        return this.json(res, 404, { error: { code: 'NOT_FOUND', message: `no key ${key}` } });
      case 'STALE_SEQUENCE':
        return this.json(res, 409, {
          error: {
            code: 'STALE_SEQUENCE',
            message: 'a newer request of this client session was already applied',
          },
        });
      case 'BAD_COMMAND':
        throw new HttpError(400, 'BAD_REQUEST', 'the command could not be decoded');
    }
  }

  /** Forwards a request to the leader's client URL and relays the answer. */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<number> {
    if (req.headers['x-tsraft-forwarded'] !== undefined) {
      throw new RaftError('NOT_LEADER', 'not the leader (forwarded request reached a non-leader)');
    }
    const leader = this.o.node.leaderId();
    if (leader === undefined) throw new RaftError('NOT_LEADER', 'no leader is known; retry shortly');
    const target = this.o.sm.members.get(leader)?.clientUrl;
    if (!target)
      throw new RaftError('NOT_LEADER', `the leader ${leader} has not published its client URL yet`);
    this.count('forwarded');
    const u = new URL(req.url ?? '/', target);
    const headers: http.OutgoingHttpHeaders = {
      ...req.headers,
      'x-tsraft-forwarded': this.o.name,
      'content-length': body.length,
    };
    delete headers.host;
    delete headers.connection;
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const out = mod.request(
        u,
        {
          method: req.method,
          headers,
          agent: u.protocol === 'https:' ? undefined : this.agent,
          timeout: 10_000,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          up.on('end', () => resolve(up.statusCode ?? 502));
          up.on('error', reject);
        },
      );
      out.on('timeout', () =>
        out.destroy(new RaftError('TIMEOUT', 'the leader did not answer in time; outcome unknown')),
      );
      out.on('error', (e) =>
        reject(
          isRaftError(e)
            ? e
            : new RaftError('TIMEOUT', `forwarding to the leader failed: ${e.message}; outcome unknown`),
        ),
      );
      out.end(body);
    });
  }

  // ------------------------------------------------------------------ reads

  private async barrier(url: URL): Promise<void> {
    const c = url.searchParams.get('consistency') ?? 'linearizable';
    if (c === 'stale' || this.o.unsafeStaleReads === true) return;
    if (c !== 'linearizable' && c !== 'lease') {
      throw new HttpError(400, 'BAD_PARAM', 'consistency must be linearizable, lease or stale');
    }
    await this.o.node.read(c === 'lease' ? { lease: true } : {});
  }

  private async get(key: string, url: URL, res: http.ServerResponse): Promise<number> {
    const format = url.searchParams.get('format');
    if (format !== null && format !== 'json' && format !== 'raw')
      throw new HttpError(400, 'BAD_PARAM', 'format must be json or raw');
    await this.barrier(url);
    const e = this.o.sm.get(key);
    const raftIndex = String(this.o.node.appliedIndex());
    if (!e) {
      return this.json(
        res,
        404,
        { error: { code: 'NOT_FOUND', message: `no key ${key}` } },
        { 'x-raft-index': raftIndex },
      );
    }
    if (format === 'json') {
      return this.json(
        res,
        200,
        { key, ...valueJson(e.value), modIndex: e.modIndex, createIndex: e.createIndex },
        {
          'x-mod-index': String(e.modIndex),
          'x-raft-index': raftIndex,
        },
      );
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': e.value.byteLength,
      'x-mod-index': String(e.modIndex),
      'x-create-index': String(e.createIndex),
      'x-raft-index': raftIndex,
    });
    res.end(e.value);
    return 200;
  }

  private async list(url: URL, res: http.ServerResponse): Promise<number> {
    const prefix = url.searchParams.get('prefix') ?? '';
    const limitS = url.searchParams.get('limit');
    let limit = 1000;
    if (limitS !== null) {
      if (!/^\d+$/.test(limitS) || Number(limitS) < 1 || Number(limitS) > 100_000) {
        throw new HttpError(400, 'BAD_PARAM', 'limit must be an integer between 1 and 100000');
      }
      limit = Number(limitS);
    }
    await this.barrier(url);
    const items = this.o.sm.list(prefix, limit).map(({ key, entry }) => ({
      key,
      ...valueJson(entry.value),
      modIndex: entry.modIndex,
      createIndex: entry.createIndex,
    }));
    return this.json(
      res,
      200,
      { items, raftIndex: this.o.node.appliedIndex() },
      { 'x-raft-index': String(this.o.node.appliedIndex()) },
    );
  }

  // ------------------------------------------------------------------ membership (§6)

  private async readJson(req: http.IncomingMessage): Promise<{ raw: Buffer; body: Record<string, unknown> }> {
    const raw = await this.readBody(req, 64 * 1024);
    if (raw.length === 0) return { raw, body: {} };
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'BAD_JSON', 'the request body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'BAD_JSON', 'the request body must be a JSON object');
    }
    return { raw, body: body as Record<string, unknown> };
  }

  private memberUrl(v: unknown, field: string, required: boolean): string | undefined {
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string') throw new HttpError(400, 'BAD_MEMBER', `${field} must be a URL string`);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new HttpError(400, 'BAD_MEMBER', `${field} is not a URL (e.g. http://127.0.0.1:2380)`);
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.port) {
      throw new HttpError(400, 'BAD_MEMBER', `${field} must be an http(s) URL with a port`);
    }
    return v;
  }

  private roleOf(name: string): 'voter' | 'learner' | undefined {
    const c = this.o.node.status().conf;
    if (c.voters.includes(name) || c.outgoing.includes(name)) return 'voter';
    if (c.learners.includes(name) || c.learnersNext.includes(name)) return 'learner';
    return undefined;
  }

  /** How far `name` is behind the leader's log (only known on the leader). */
  private lag(name: string): number | undefined {
    const s = this.o.node.status();
    const p = s.progress?.get(name);
    return p === undefined ? undefined : s.lastIndex - p.match;
  }

  private memberCommand(name: string, attrs: Record<string, unknown>): Uint8Array {
    return this.command('member', name, enc.encode(JSON.stringify(attrs)), -1, '', 0);
  }

  /**
   * `POST /v1/cluster/members`, `POST /v1/cluster/members/{name}/promote`,
   * `DELETE /v1/cluster/members/{name}`, `POST /v1/cluster/leader`. Leader-only; a follower
   * forwards them.
   */
  private async clusterAdmin(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    method: string,
  ): Promise<number> {
    const node = this.o.node;
    const parts = path.split('/').slice(3); // ['members', name?, 'promote'?] or ['leader']
    const route =
      parts[0] === 'members' && parts.length === 1
        ? 'add'
        : parts[0] === 'members' && parts.length === 2
          ? 'remove'
          : parts[0] === 'members' && parts.length === 3 && parts[2] === 'promote'
            ? 'promote'
            : parts[0] === 'leader' && parts.length === 1
              ? 'leader'
              : undefined;
    if (!route) throw new HttpError(404, 'NO_ROUTE', `no route for ${path}`);
    const want = route === 'remove' ? 'DELETE' : 'POST';
    if (method !== want)
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path} (${want})`);
    const { raw, body } = await this.readJson(req);
    if (!node.isLeader()) return this.forward(req, res, raw);
    const nameOf = (v: unknown): string => {
      if (typeof v !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(v)) {
        throw new HttpError(400, 'BAD_MEMBER', 'name must be 1-64 letters, digits, ".", "_" or "-"');
      }
      return v;
    };
    switch (route) {
      case 'add': {
        const name = nameOf(body['name']);
        const peerUrl = this.memberUrl(body['peerUrl'], 'peerUrl', true)!;
        const clientUrl = this.memberUrl(body['clientUrl'], 'clientUrl', false);
        const role = body['role'] ?? 'learner';
        if (role !== 'learner' && role !== 'voter')
          throw new HttpError(400, 'BAD_MEMBER', 'role must be learner or voter');
        if (this.roleOf(name)) throw new HttpError(409, 'MEMBER_EXISTS', `${name} is already a member`);
        // Record where it lives first, so every server can reach it once the change lands.
        await node.propose(this.memberCommand(name, { peerUrl, ...(clientUrl ? { clientUrl } : {}) }));
        // New servers join as learners: they catch up without affecting quorums.
        let index = await node.proposeConfChange({ changes: [{ op: 'add-learner', node: name }] });
        this.log('info', 'member-added', { name, role: 'learner', index });
        if (role === 'voter') {
          const maxLag = this.o.promoteMaxLag ?? 1000;
          const deadline = Date.now() + (this.o.catchUpTimeoutMs ?? 30_000);
          for (;;) {
            const lag = this.lag(name);
            if (lag !== undefined && lag <= maxLag) break;
            if (!node.isLeader())
              throw new RaftError('NOT_LEADER', 'lost leadership while the new member caught up');
            if (Date.now() > deadline) {
              throw new HttpError(
                504,
                'CATCH_UP_TIMEOUT',
                `${name} was added as a learner but did not catch up in time; promote it later`,
              );
            }
            await new Promise((r) => setTimeout(r, 50));
          }
          index = await node.proposeConfChange({ changes: [{ op: 'add-voter', node: name }] });
          this.log('info', 'member-promoted', { name, index });
        }
        return this.json(res, 201, { name, peerUrl, clientUrl: clientUrl ?? null, role, index });
      }
      case 'promote': {
        const name = nameOf(decodeURIComponent(parts[1]!));
        const r = this.roleOf(name);
        if (!r) throw new HttpError(404, 'NO_MEMBER', `${name} is not a member`);
        if (r === 'voter') throw new HttpError(409, 'NOT_A_LEARNER', `${name} is already a voter`);
        const lag = this.lag(name);
        const maxLag = this.o.promoteMaxLag ?? 1000;
        if (lag === undefined || lag > maxLag) {
          throw new HttpError(
            409,
            'LEARNER_LAGGING',
            `${name} is ${lag ?? 'an unknown number of'} entries behind the leader (at most ${maxLag} allowed); try again once it catches up`,
          );
        }
        const index = await node.proposeConfChange({ changes: [{ op: 'add-voter', node: name }] });
        this.log('info', 'member-promoted', { name, index });
        return this.json(res, 200, { name, role: 'voter', index });
      }
      case 'remove': {
        const name = nameOf(decodeURIComponent(parts[1]!));
        if (!this.roleOf(name)) throw new HttpError(404, 'NO_MEMBER', `${name} is not a member`);
        const index = await node.proposeConfChange({ changes: [{ op: 'remove', node: name }] });
        this.log('info', 'member-removed', { name, index });
        // Forget its addresses too (best effort: the removal itself already committed).
        if (node.isLeader())
          await node.propose(this.memberCommand(name, { removed: true })).catch(() => undefined);
        return this.json(res, 200, { name, removed: true, index });
      }
      case 'leader': {
        const name = nameOf(body['name']);
        if (this.roleOf(name) !== 'voter') throw new HttpError(400, 'BAD_MEMBER', `${name} is not a voter`);
        await node.transferLeadership(name);
        return this.json(res, 200, { leader: name });
      }
    }
  }

  // ------------------------------------------------------------------ cluster

  private cluster(): unknown {
    const s = this.o.node.status();
    const members: unknown[] = [];
    const add = (name: string, role: 'voter' | 'learner'): void => {
      const p = s.progress?.get(name);
      members.push({
        name,
        peerUrl: this.o.sm.members.get(name)?.peerUrl ?? this.o.peerUrls.get(name) ?? null,
        clientUrl: this.o.sm.members.get(name)?.clientUrl ?? null,
        role,
        ...(p ? { matchIndex: p.match } : {}),
      });
    };
    const voters = new Set([...s.conf.voters, ...s.conf.outgoing]);
    for (const v of voters) add(v, 'voter');
    for (const l of new Set([...s.conf.learners, ...s.conf.learnersNext]))
      if (!voters.has(l)) add(l, 'learner');
    return {
      name: this.o.name,
      leader: s.leader ?? null,
      term: s.term,
      commitIndex: s.commit,
      appliedIndex: s.appliedIndex,
      members,
    };
  }

  private health(res: http.ServerResponse): number {
    const s = this.o.node.status();
    const ok = s.leader !== undefined && s.appliedIndex >= s.commit;
    return this.json(res, ok ? 200 : 503, {
      healthy: ok,
      leader: s.leader ?? null,
      commitIndex: s.commit,
      appliedIndex: s.appliedIndex,
      ...(ok ? {} : { reason: s.leader === undefined ? 'no leader' : 'applying behind commit' }),
    });
  }

  private metrics(res: http.ServerResponse): number {
    const s = this.o.node.status();
    const lines = [
      '# HELP tsraft_term Current Raft term.',
      '# TYPE tsraft_term gauge',
      `tsraft_term ${s.term}`,
      '# HELP tsraft_commit_index Highest log index known committed.',
      '# TYPE tsraft_commit_index gauge',
      `tsraft_commit_index ${s.commit}`,
      '# HELP tsraft_applied_index Highest log index applied to the state machine.',
      '# TYPE tsraft_applied_index gauge',
      `tsraft_applied_index ${s.appliedIndex}`,
      '# HELP tsraft_last_index Last log index.',
      '# TYPE tsraft_last_index gauge',
      `tsraft_last_index ${s.lastIndex}`,
      '# HELP tsraft_is_leader 1 if this node is the leader.',
      '# TYPE tsraft_is_leader gauge',
      `tsraft_is_leader ${s.role === 'leader' ? 1 : 0}`,
      '# HELP tsraft_has_leader 1 if this node knows a leader.',
      '# TYPE tsraft_has_leader gauge',
      `tsraft_has_leader ${s.leader === undefined ? 0 : 1}`,
      '# HELP tsraft_kv_keys Number of keys stored.',
      '# TYPE tsraft_kv_keys gauge',
      `tsraft_kv_keys ${this.o.sm.size}`,
      '# HELP tsraft_kv_sessions Number of client sessions remembered.',
      '# TYPE tsraft_kv_sessions gauge',
      `tsraft_kv_sessions ${this.o.sm.sessionCount}`,
      ...snapshotMetrics(this.o.node.snapshotStatus()),
      '# HELP tsraft_proposals_total Write proposals made by this node.',
      '# TYPE tsraft_proposals_total counter',
      `tsraft_proposals_total ${this.counters.get('proposals') ?? 0}`,
      '# HELP tsraft_forwarded_total Requests forwarded to the leader.',
      '# TYPE tsraft_forwarded_total counter',
      `tsraft_forwarded_total ${this.counters.get('forwarded') ?? 0}`,
      '# HELP tsraft_http_responses_total HTTP responses by status code.',
      '# TYPE tsraft_http_responses_total counter',
    ];
    for (const [k, v] of this.counters) {
      if (k.startsWith('http_')) lines.push(`tsraft_http_responses_total{code="${k.slice(5)}"} ${v}`);
    }
    const mem = process.memoryUsage();
    lines.push(
      '# HELP tsraft_process_rss_bytes Resident set size.',
      '# TYPE tsraft_process_rss_bytes gauge',
      `tsraft_process_rss_bytes ${mem.rss}`,
    );
    const body = lines.join('\n') + '\n';
    res.writeHead(200, {
      'content-type': 'text/plain; version=0.0.4',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
    return 200;
  }
}

/** A value as JSON: UTF-8 text when it is valid UTF-8, else base64 with `encoding`. */
function valueJson(v: Uint8Array): { value: string; encoding?: 'base64' } {
  try {
    return { value: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(v) };
  } catch {
    return { value: Buffer.from(v).toString('base64'), encoding: 'base64' };
  }
}

/** Prometheus lines about snapshots (§7). */
function snapshotMetrics(st: SnapshotStatus): string[] {
  return [
    '# HELP tsraft_snapshot_index Log index of the newest snapshot.',
    '# TYPE tsraft_snapshot_index gauge',
    `tsraft_snapshot_index ${st.index}`,
    '# HELP tsraft_snapshots_taken_total Snapshots this node took.',
    '# TYPE tsraft_snapshots_taken_total counter',
    `tsraft_snapshots_taken_total ${st.taken}`,
    '# HELP tsraft_snapshots_installed_total Snapshots installed from a leader.',
    '# TYPE tsraft_snapshots_installed_total counter',
    `tsraft_snapshots_installed_total ${st.installed}`,
  ];
}
