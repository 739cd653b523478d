import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { ConfigError } from '../errors.js';
import { AttemptError, attempt, type Answer } from './attempt.js';
import { KvClientError, PreconditionFailedError } from './errors.js';

/**
 * How fresh a read must be (DESIGN.md "kv"): `linearizable` (default) confirms leadership with a
 * heartbeat round (ReadIndex); `lease` trusts the leader's lease (bounded clock drift assumed);
 * `stale` answers from whichever node is asked, possibly behind.
 */
export type ReadConsistency = 'linearizable' | 'lease' | 'stale';

/** Options of a {@link KvClient}, resolved once by its constructor (which throws `ConfigError`). */
export interface KvClientOptions {
  /** Client URLs of the cluster's members, e.g. `http://127.0.0.1:2379`. Tried in order. */
  readonly endpoints: readonly string[];
  /** Sent as `Authorization: Bearer <token>` when the servers require one. */
  readonly token?: string;
  /** Time limit of one attempt (connect, send, read the answer). Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Time limit of a whole call, retries and back-off included. Default 15000 ms. */
  readonly deadlineMs?: number;
  /** At most this many attempts per call. Default: unlimited (the deadline decides). */
  readonly maxAttempts?: number;
  /** The session id that makes writes exactly-once. Default: a random UUID per client. */
  readonly clientId?: string;
  /**
   * The sequence number of the first write. Default 1. Only matters when a `clientId` is reused
   * across client instances: the server refuses a seq lower than the last one it applied for that id.
   */
  readonly firstSeq?: number;
  /** CA certificate(s), PEM, trusted for `https` endpoints instead of the system's default CAs. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Keep connections open between calls. Default true. */
  readonly keepAlive?: boolean;
  /**
   * Send writes (and linearizable/lease reads) straight to the leader's client URL learnt from
   * `/v1/cluster`, instead of letting a follower forward them. Default true. Turn off when the
   * advertised client URLs are not reachable from here (e.g. behind NAT or a load balancer).
   */
  readonly preferLeader?: boolean;
}

/** Per-call overrides. */
export interface CallOptions {
  /** Time limit of this call, retries included (default: the client's `deadlineMs`). */
  readonly deadlineMs?: number;
  /** Time limit of one attempt (default: the client's `timeoutMs`). */
  readonly timeoutMs?: number;
  /** At most this many attempts (default: the client's `maxAttempts`). */
  readonly maxAttempts?: number;
}

/** Options of {@link KvClient.put} and {@link KvClient.delete}. */
export interface WriteOptions extends CallOptions {
  /** Compare-and-set: apply only if the key's modIndex equals this (0: only if the key is absent). */
  readonly prevIndex?: number;
}

/** Options of {@link KvClient.get}. */
export interface GetOptions extends CallOptions {
  readonly consistency?: ReadConsistency;
}

/** Options of {@link KvClient.list}. */
export interface ListOptions extends GetOptions {
  /** At most this many items (the server's default is 1000, its maximum 100000). */
  readonly limit?: number;
}

/** What a write answers: the log index that applied it. */
export interface WriteResult {
  readonly index: number;
}

/**
 * What {@link KvClient.delete} answers: `deleted: true` with the log index that removed the key,
 * or `deleted: false` when the key was already absent (deleting nothing is not an error).
 */
export type DeleteResult = { readonly deleted: true; readonly index: number } | { readonly deleted: false };

/** A value read by {@link KvClient.get}. */
export interface GetResult {
  readonly value: Uint8Array;
  /** Log index of the write that last changed the key (use it as `prevIndex` for compare-and-set). */
  readonly modIndex: number;
  /** Log index of the write that created the key. */
  readonly createIndex: number;
  /** The answering node's applied index when it read the value. */
  readonly raftIndex: number;
}

/** One item of {@link KvClient.list}. */
export interface KvItem {
  readonly key: string;
  readonly value: Uint8Array;
  readonly modIndex: number;
  readonly createIndex: number;
}

/** One member in {@link ClusterStatus}. */
export interface ClusterMember {
  readonly name: string;
  readonly peerUrl: string | null;
  /** null until the member has published it. */
  readonly clientUrl: string | null;
  readonly role: 'voter' | 'learner';
  /** Replication progress; only the leader knows it. */
  readonly matchIndex?: number;
}

/** `GET /v1/cluster`: the answering node's view of the cluster. */
export interface ClusterStatus {
  /** The answering node's name. */
  readonly name?: string;
  readonly leader: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly members: readonly ClusterMember[];
}

/** `GET /health` of one node. */
export interface HealthStatus {
  /** The endpoint that answered. */
  readonly endpoint: string;
  /** The node knows a leader and has applied everything it knows committed. */
  readonly healthy: boolean;
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly reason?: string;
}

/** One request as the retry loop sees it. */
interface Request extends CallOptions {
  readonly method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  readonly path: string;
  readonly body?: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** Send to the leader's URL when known. */
  readonly toLeader: boolean;
  /** Look the leader up first when its URL is unknown. */
  readonly discover: boolean;
  /** A write: its outcome may be in doubt after a broken attempt. */
  readonly write: boolean;
  /** Only this endpoint (no failover). */
  readonly endpoint?: string;
  /** Answers the caller interprets itself although their status would be retried. */
  readonly accept?: (a: Answer) => boolean;
}

/** Statuses worth another attempt (elsewhere, after a back-off). */
const RETRY = new Set([502, 503, 504]);
/** 503 codes that guarantee the write was not appended (src/errors.ts). */
const NOT_APPLIED = new Set([
  'NO_LEADER',
  'NOT_LEADER',
  'PROPOSAL_DROPPED',
  'BACK_PRESSURE',
  'TRANSFER_IN_PROGRESS',
]);
/** A leader URL that failed to connect is not used again for this long. */
const LEADER_PENALTY_MS = 10_000;
/** Leader lookups not triggered by a failing leader happen at most this often. */
const DISCOVERY_INTERVAL_MS = 1_000;
const BACKOFF_BASE_MS = 20;
const BACKOFF_MAX_MS = 1_000;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * The client of the tsraft key-value server (DESIGN.md "kv").
 *
 * - **Failover.** Endpoints are tried in order; the one that answered last is tried first next
 *   time. A connection error, a timed-out attempt or a 502/503/504 moves on to the next endpoint
 *   after a short jittered back-off (20 ms doubling to 1 s) until `deadlineMs`.
 * - **Leader first.** Writes (and linearizable/lease reads, when the leader is known) go straight to
 *   the leader's client URL learnt from `/v1/cluster`; followers would forward them anyway.
 * - **Exactly-once writes.** Every write carries `X-Client-Id` and a fresh `X-Request-Seq`; every
 *   retry of that write resends the same pair, and the server applies it once and answers retries
 *   with the first result. Writes of one client are serialized (one in flight at a time, in call
 *   order), as the server's sessions require; use several clients for parallel writes.
 * - **Errors.** Everything fails with a {@link KvClientError} whose `code` is the server's (or
 *   `TIMEOUT`, `UNAVAILABLE`, `BAD_RESPONSE`, `CLOSED`). A write that fails with `TIMEOUT` may or may
 *   not have been applied (outcome unknown; so may one failing with the server-bug codes `INTERNAL`
 *   and `BAD_RESPONSE`); every other failure of a write means it was not applied.
 *
 * @example
 * ```ts
 * const kv = new KvClient({ endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.1:22379'] });
 * const { index } = await kv.put('config/color', 'blue');
 * const got = await kv.get('config/color'); // { value: Uint8Array, modIndex, createIndex, raftIndex }
 * await kv.cas('config/color', 'green', got!.modIndex); // throws PreconditionFailedError if it changed
 * kv.close();
 * ```
 */
export class KvClient {
  /** The session id sent with every write. */
  readonly clientId: string;
  private readonly endpoints: readonly string[];
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly deadlineMs: number;
  private readonly maxAttempts: number;
  private readonly preferLeader: boolean;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private nextSeq: number;
  /** Index into `endpoints` of the one to try first. */
  private current = 0;
  private leaderUrl: string | undefined;
  private nextDiscovery = 0;
  private readonly leaderPenalty = new Map<string, number>();
  private writeTail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: KvClientOptions) {
    const o = options;
    if (!Array.isArray(o.endpoints) || o.endpoints.length === 0) {
      throw new ConfigError('endpoints must list at least one client URL');
    }
    this.endpoints = o.endpoints.map((e) => {
      const n = normalizeEndpoint(e);
      if (n === undefined)
        throw new ConfigError(`endpoint ${JSON.stringify(e)} must be an http:// or https:// URL`);
      return n;
    });
    if (o.token !== undefined && (o.token === '' || /[\r\n]/.test(o.token))) {
      throw new ConfigError('token must be non-empty and on one line');
    }
    this.token = o.token;
    this.timeoutMs = positive(o.timeoutMs, 5_000, 'timeoutMs');
    this.deadlineMs = positive(o.deadlineMs, 15_000, 'deadlineMs');
    this.maxAttempts = o.maxAttempts ?? Infinity;
    if (!(Number.isInteger(this.maxAttempts) || this.maxAttempts === Infinity) || this.maxAttempts < 1) {
      throw new ConfigError('maxAttempts must be a positive integer');
    }
    this.clientId = o.clientId ?? randomUUID();
    if (this.clientId === '' || Buffer.byteLength(this.clientId) > 256 || /[\r\n]/.test(this.clientId)) {
      throw new ConfigError('clientId must be a non-empty line of at most 256 bytes');
    }
    this.nextSeq = o.firstSeq ?? 1;
    if (!Number.isSafeInteger(this.nextSeq) || this.nextSeq < 1) {
      throw new ConfigError('firstSeq must be a positive integer');
    }
    this.preferLeader = o.preferLeader ?? true;
    const keepAlive = o.keepAlive ?? true;
    this.httpAgent = new http.Agent({ keepAlive });
    this.httpsAgent = new https.Agent(
      o.ca === undefined
        ? { keepAlive }
        : { keepAlive, ca: typeof o.ca === 'string' || Buffer.isBuffer(o.ca) ? o.ca : [...o.ca] },
    );
  }

  // ------------------------------------------------------------------ writes

  /**
   * Sets `key` to `value` (a string is sent as UTF-8). With `prevIndex` it is a compare-and-set
   * and fails with {@link PreconditionFailedError} when the key's modIndex differs.
   */
  async put(key: string, value: string | Uint8Array, options: WriteOptions = {}): Promise<WriteResult> {
    const path = keyPath(key) + indexQuery(options.prevIndex);
    const body = typeof value === 'string' ? utf8.encode(value) : value;
    if (!(body instanceof Uint8Array))
      throw new KvClientError('BAD_REQUEST', 'value must be a string or a Uint8Array');
    const a = await this.write('PUT', path, body, options);
    check(a, key);
    return { index: indexOf(a) };
  }

  /**
   * Compare-and-set: sets `key` only if its modIndex is `prevIndex` (0: only if absent). Fails with
   * {@link PreconditionFailedError} carrying the current modIndex otherwise.
   */
  cas(
    key: string,
    value: string | Uint8Array,
    prevIndex: number,
    options: CallOptions = {},
  ): Promise<WriteResult> {
    return this.put(key, value, { ...options, prevIndex });
  }

  /**
   * Removes `key`. Resolves `{ deleted: false }` when it was already absent (so deleting is
   * idempotent); with `prevIndex`, fails with {@link PreconditionFailedError} unless the key's
   * modIndex matches (`prevIndex: 0` on an absent key resolves `{ deleted: false }`).
   */
  async delete(key: string, options: WriteOptions = {}): Promise<DeleteResult> {
    const path = keyPath(key) + indexQuery(options.prevIndex);
    const a = await this.write('DELETE', path, undefined, options);
    if (a.status === 404 && errorBody(a)?.code === 'NOT_FOUND') return { deleted: false };
    check(a, key);
    return { deleted: true, index: indexOf(a) };
  }

  /** One write at a time, in call order: the server's session keeps only the latest seq per client. */
  private write(
    method: 'PUT' | 'DELETE',
    path: string,
    body: Uint8Array | undefined,
    o: CallOptions,
  ): Promise<Answer> {
    this.assertOpen();
    const run = this.writeTail.then(() => {
      const seq = this.nextSeq++;
      return this.send({
        ...callOptions(o),
        method,
        path,
        ...(body !== undefined ? { body } : {}),
        headers: {
          'x-client-id': this.clientId,
          'x-request-seq': String(seq),
          ...(body !== undefined ? { 'content-type': 'application/octet-stream' } : {}),
        },
        toLeader: true,
        discover: true,
        write: true,
      });
    });
    this.writeTail = run.catch(() => undefined);
    return run;
  }

  // ------------------------------------------------------------------ reads

  /** Reads `key`; undefined when it is absent. */
  async get(key: string, options: GetOptions = {}): Promise<GetResult | undefined> {
    const a = await this.send({
      ...callOptions(options),
      method: 'GET',
      path: keyPath(key) + consistencyQuery(options.consistency),
      toLeader: options.consistency !== 'stale',
      discover: false,
      write: false,
    });
    if (a.status === 404 && errorBody(a)?.code === 'NOT_FOUND') return undefined;
    check(a, key);
    return {
      value: new Uint8Array(a.body.buffer, a.body.byteOffset, a.body.byteLength),
      modIndex: headerInt(a, 'x-mod-index'),
      createIndex: headerInt(a, 'x-create-index'),
      raftIndex: headerInt(a, 'x-raft-index'),
    };
  }

  /** Reads `key` as UTF-8 text (invalid sequences become U+FFFD); undefined when it is absent. */
  async getString(key: string, options: GetOptions = {}): Promise<string | undefined> {
    const r = await this.get(key, options);
    return r === undefined ? undefined : utf8Decoder.decode(r.value);
  }

  /** The keys starting with `prefix` (all keys by default), in byte order, with their values. */
  async list(prefix = '', options: ListOptions = {}): Promise<KvItem[]> {
    const q = new URLSearchParams();
    if (prefix !== '') q.set('prefix', prefix);
    if (options.limit !== undefined) {
      if (!Number.isSafeInteger(options.limit) || options.limit < 1) {
        throw new KvClientError('BAD_PARAM', 'limit must be a positive integer');
      }
      q.set('limit', String(options.limit));
    }
    if (options.consistency !== undefined) q.set('consistency', options.consistency);
    const qs = q.toString();
    const a = await this.send({
      ...callOptions(options),
      method: 'GET',
      path: '/v1/kv' + (qs === '' ? '' : '?' + qs),
      toLeader: options.consistency !== 'stale',
      discover: false,
      write: false,
    });
    check(a);
    const body = parseJson(a) as { items?: unknown };
    if (!Array.isArray(body.items)) throw badResponse(a, 'no items array');
    return body.items.map((raw: unknown) => {
      const it = raw as {
        key?: unknown;
        value?: unknown;
        encoding?: unknown;
        modIndex?: unknown;
        createIndex?: unknown;
      };
      if (
        typeof it.key !== 'string' ||
        typeof it.value !== 'string' ||
        !isIndex(it.modIndex) ||
        !isIndex(it.createIndex)
      ) {
        throw badResponse(a, 'malformed item');
      }
      const value =
        it.encoding === 'base64' ? new Uint8Array(Buffer.from(it.value, 'base64')) : utf8.encode(it.value);
      return { key: it.key, value, modIndex: it.modIndex, createIndex: it.createIndex };
    });
  }

  // ------------------------------------------------------------------ cluster

  /**
   * `GET /v1/cluster`, from the leader when possible (only the leader reports `matchIndex`): when
   * a follower answers first, the leader it names is asked once more.
   */
  async cluster(options: CallOptions = {}): Promise<ClusterStatus> {
    const a = await this.send({
      ...callOptions(options),
      method: 'GET',
      path: '/v1/cluster',
      toLeader: true,
      discover: false,
      write: false,
    });
    check(a);
    const c = parseCluster(a);
    this.learnLeader(c);
    const leader = this.leaderUrl;
    if (leader === undefined || leader === a.endpoint || c.name === c.leader) return c;
    // A follower answered: ask the leader once more for the replication progress only it knows.
    try {
      const b = await this.send({
        ...callOptions(options),
        method: 'GET',
        path: '/v1/cluster',
        toLeader: false,
        discover: false,
        write: false,
        endpoint: leader,
        maxAttempts: 1,
      });
      check(b);
      return parseCluster(b);
    } catch {
      return c;
    }
  }

  /**
   * Membership (§6) and leadership administration, sent to the leader. `addMember` joins a
   * server as a learner (with `role: 'voter'` the server promotes it once it caught up);
   * `promoteMember` fails with `LEARNER_LAGGING` while the learner is behind. A `TIMEOUT` leaves
   * the outcome unknown: check `cluster()`.
   */
  async addMember(
    name: string,
    peerUrl: string,
    options: CallOptions & { readonly clientUrl?: string; readonly role?: 'learner' | 'voter' } = {},
  ): Promise<{ name: string; role: string; index: number }> {
    const body = {
      name,
      peerUrl,
      role: options.role ?? 'learner',
      ...(options.clientUrl ? { clientUrl: options.clientUrl } : {}),
    };
    return this.admin('/v1/cluster/members', 'POST', body, options) as Promise<{
      name: string;
      role: string;
      index: number;
    }>;
  }

  async promoteMember(
    name: string,
    options: CallOptions = {},
  ): Promise<{ name: string; role: string; index: number }> {
    return this.admin(
      `/v1/cluster/members/${encodeURIComponent(name)}/promote`,
      'POST',
      {},
      options,
    ) as Promise<{
      name: string;
      role: string;
      index: number;
    }>;
  }

  async removeMember(name: string, options: CallOptions = {}): Promise<{ name: string; index: number }> {
    return this.admin(
      `/v1/cluster/members/${encodeURIComponent(name)}`,
      'DELETE',
      undefined,
      options,
    ) as Promise<{
      name: string;
      index: number;
    }>;
  }

  /** Hands leadership to the voter `name`; resolves once it leads. */
  async transferLeader(name: string, options: CallOptions = {}): Promise<void> {
    await this.admin('/v1/cluster/leader', 'POST', { name }, options);
  }

  private async admin(
    path: string,
    method: 'POST' | 'DELETE',
    body: unknown,
    options: CallOptions,
  ): Promise<unknown> {
    const a = await this.send({
      ...callOptions(options),
      method,
      path,
      ...(body !== undefined
        ? { body: utf8.encode(JSON.stringify(body)), headers: { 'content-type': 'application/json' } }
        : {}),
      toLeader: true,
      discover: true,
      write: true,
    });
    check(a);
    return parseJson(a);
  }

  /**
   * `POST /v1/snapshot` (§7): the node at `endpoint` (when given; else the first that answers)
   * takes a snapshot now and compacts its log. Safe to retry. Resolves with the node's name and
   * the snapshot's index and term once it is durable.
   */
  async snapshot(
    options: CallOptions & { readonly endpoint?: string } = {},
  ): Promise<{ name: string; index: number; term: number; ms: number }> {
    let endpoint: string | undefined;
    if (options.endpoint !== undefined) {
      endpoint = normalizeEndpoint(options.endpoint);
      if (endpoint === undefined)
        throw new KvClientError('BAD_PARAM', 'endpoint must be an http:// or https:// URL');
    }
    const a = await this.send({
      ...callOptions(options),
      method: 'POST',
      path: '/v1/snapshot',
      toLeader: false,
      discover: false,
      write: false,
      ...(endpoint !== undefined ? { endpoint } : {}),
    });
    check(a);
    return parseJson(a) as { name: string; index: number; term: number; ms: number };
  }

  /**
   * `GET /health` of one node: `endpoint` when given (it need not be in `endpoints`), else the
   * first endpoint that answers. An unhealthy node (503) is an answer, not an error.
   */
  async health(options: CallOptions & { readonly endpoint?: string } = {}): Promise<HealthStatus> {
    let endpoint: string | undefined;
    if (options.endpoint !== undefined) {
      endpoint = normalizeEndpoint(options.endpoint);
      if (endpoint === undefined)
        throw new KvClientError('BAD_PARAM', 'endpoint must be an http:// or https:// URL');
    }
    const isHealth = (a: Answer): boolean => {
      try {
        return typeof (JSON.parse(a.body.toString('utf8')) as { healthy?: unknown }).healthy === 'boolean';
      } catch {
        return false;
      }
    };
    const a = await this.send({
      ...callOptions(options),
      method: 'GET',
      path: '/health',
      toLeader: false,
      discover: false,
      write: false,
      ...(endpoint !== undefined ? { endpoint } : {}),
      accept: (x) => x.status === 503 && isHealth(x),
    });
    if (!(a.status === 200 || a.status === 503) || !isHealth(a)) check(a);
    const h = parseJson(a) as Omit<HealthStatus, 'endpoint'>;
    return { ...h, endpoint: a.endpoint };
  }

  /** Closes idle connections and aborts calls in flight (they fail with `CLOSED`). */
  close(): void {
    this.closed = true;
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  // ------------------------------------------------------------------ the retry loop

  private assertOpen(): void {
    if (this.closed) throw new KvClientError('CLOSED', 'the client is closed');
  }

  /**
   * Sends `r` until an answer that is not worth retrying, the deadline or `maxAttempts`.
   * Answers of any other status are returned for the caller to interpret.
   */
  private async send(r: Request): Promise<Answer> {
    this.assertOpen();
    const started = performance.now();
    const deadline = started + (r.deadlineMs ?? this.deadlineMs);
    const perAttempt = r.timeoutMs ?? this.timeoutMs;
    let attempts = 0;
    let uncertain = false;
    let last: KvClientError | undefined;
    let discover =
      r.discover &&
      this.preferLeader &&
      this.leaderUrl === undefined &&
      performance.now() >= this.nextDiscovery;
    for (;;) {
      if (discover && r.endpoint === undefined) await this.discoverLeader(deadline, perAttempt);
      discover = false;
      this.assertOpen();
      const target =
        r.endpoint ??
        (r.toLeader && this.leaderUrl !== undefined ? this.leaderUrl : this.endpoints[this.current]!);
      attempts++;
      let leaderFailed = false;
      try {
        const a = await attempt(target, r.path, {
          method: r.method,
          headers: this.headers(r.headers),
          ...(r.body !== undefined ? { body: r.body } : {}),
          timeoutMs: Math.max(1, Math.min(perAttempt, deadline - performance.now())),
          agent: this.agentFor(target),
        });
        if (!RETRY.has(a.status) || r.accept?.(a) === true) {
          this.succeeded(target);
          return a;
        }
        last = errorFromAnswer(a);
        if (!NOT_APPLIED.has(last.code)) uncertain = true;
        leaderFailed = this.failed(target, r.endpoint !== undefined, false);
      } catch (e) {
        if (this.closed)
          throw new KvClientError('CLOSED', 'the client was closed during the call', undefined, { cause: e });
        if (!(e instanceof AttemptError)) throw e;
        if (e.sent) uncertain = true;
        last = new KvClientError(e.kind === 'timeout' ? 'TIMEOUT' : 'UNAVAILABLE', e.message, undefined, {
          cause: e,
        });
        leaderFailed = this.failed(target, r.endpoint !== undefined, e.kind === 'network' && !e.sent);
      }
      if (attempts >= (r.maxAttempts ?? this.maxAttempts)) break;
      const delay = backoff(attempts);
      if (performance.now() + delay >= deadline) break;
      await sleep(delay);
      this.assertOpen();
      // The leader we knew failed: look it up again (it may have moved) before the next attempt.
      discover = leaderFailed && r.discover && this.preferLeader;
    }
    if (last === undefined) throw new KvClientError('TIMEOUT', 'no attempt was made');
    const spent = `after ${attempts} attempt${attempts === 1 ? '' : 's'} in ${Math.round(performance.now() - started)} ms`;
    if (r.write && uncertain) {
      throw new KvClientError(
        'TIMEOUT',
        `outcome unknown: no definite answer ${spent} (last: ${last.message})`,
        last.status,
        {
          cause: last,
        },
      );
    }
    throw new KvClientError(last.code, `${last.message} (gave up ${spent})`, last.status, { cause: last });
  }

  private headers(extra: Readonly<Record<string, string>> | undefined): Record<string, string> {
    return {
      'user-agent': 'tsraft-client',
      ...(this.token !== undefined ? { authorization: `Bearer ${this.token}` } : {}),
      ...extra,
    };
  }

  private agentFor(url: string): http.Agent {
    return url.startsWith('https:') ? this.httpsAgent : this.httpAgent;
  }

  /** Remembers the endpoint that answered, to try it first next time. */
  private succeeded(target: string): void {
    const i = this.endpoints.indexOf(target);
    if (i >= 0) this.current = i;
  }

  /**
   * Moves on from a failed target. Returns true when it was the leader's URL (forgotten now; when
   * it did not even connect, it is not used again for a while).
   */
  private failed(target: string, pinned: boolean, unreachable: boolean): boolean {
    if (!pinned && target === this.endpoints[this.current])
      this.current = (this.current + 1) % this.endpoints.length;
    if (target !== this.leaderUrl) return false;
    this.leaderUrl = undefined;
    if (unreachable) this.leaderPenalty.set(target, performance.now() + LEADER_PENALTY_MS);
    return true;
  }

  /** Asks the current endpoint who leads (best effort: failures only move on to the next endpoint). */
  private async discoverLeader(deadline: number, perAttempt: number): Promise<void> {
    this.nextDiscovery = performance.now() + DISCOVERY_INTERVAL_MS;
    const base = this.endpoints[this.current]!;
    try {
      const a = await attempt(base, '/v1/cluster', {
        method: 'GET',
        headers: this.headers(undefined),
        timeoutMs: Math.max(1, Math.min(perAttempt, deadline - performance.now())),
        agent: this.agentFor(base),
      });
      if (a.status === 200) this.learnLeader(parseCluster(a));
    } catch (e) {
      if (e instanceof AttemptError) this.current = (this.current + 1) % this.endpoints.length;
      // Anything else (a malformed answer): carry on without a leader URL.
    }
  }

  private learnLeader(c: ClusterStatus): void {
    const url = c.leader === null ? undefined : c.members.find((m) => m.name === c.leader)?.clientUrl;
    const n = url === undefined || url === null ? undefined : normalizeEndpoint(url);
    if (n !== undefined && (this.leaderPenalty.get(n) ?? 0) > performance.now()) return;
    this.leaderUrl = n;
  }
}

// -------------------------------------------------------------------- helpers

/** `http(s)://host:port[/base]` without a trailing slash, or undefined when `s` is not such a URL. */
function normalizeEndpoint(s: string): string | undefined {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return undefined;
  }
  if (
    (u.protocol !== 'http:' && u.protocol !== 'https:') ||
    u.search !== '' ||
    u.hash !== '' ||
    u.username !== ''
  ) {
    return undefined;
  }
  return u.origin + u.pathname.replace(/\/+$/, '');
}

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0)
    throw new ConfigError(`${name} must be a positive number of milliseconds`);
  return v;
}

function callOptions(o: CallOptions): CallOptions {
  return {
    ...(o.deadlineMs !== undefined ? { deadlineMs: o.deadlineMs } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
  };
}

/**
 * `/v1/kv/<key>` with the whole key percent-encoded as one path segment (a `/` in a key becomes
 * `%2F`). `.` and `..` are refused: URL normalization would turn them into other paths.
 */
function keyPath(key: string): string {
  if (typeof key !== 'string' || key === '')
    throw new KvClientError('BAD_KEY', 'the key must be a non-empty string');
  if (key === '.' || key === '..')
    throw new KvClientError('BAD_KEY', `the key ${JSON.stringify(key)} cannot be sent in a URL`);
  try {
    return '/v1/kv/' + encodeURIComponent(key);
  } catch (e) {
    throw new KvClientError('BAD_KEY', 'the key is not valid Unicode (a lone surrogate)', undefined, {
      cause: e,
    });
  }
}

function indexQuery(prevIndex: number | undefined): string {
  if (prevIndex === undefined) return '';
  if (!Number.isSafeInteger(prevIndex) || prevIndex < 0) {
    throw new KvClientError('BAD_PARAM', 'prevIndex must be a non-negative integer');
  }
  return `?prevIndex=${prevIndex}`;
}

function consistencyQuery(c: ReadConsistency | undefined): string {
  if (c === undefined) return '';
  if (c !== 'linearizable' && c !== 'lease' && c !== 'stale') {
    throw new KvClientError('BAD_PARAM', 'consistency must be linearizable, lease or stale');
  }
  return `?consistency=${c}`;
}

function backoff(attempt: number): number {
  const d = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt - 1, 10));
  return d / 2 + Math.random() * (d / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function badResponse(a: Answer, why: string): KvClientError {
  return new KvClientError(
    'BAD_RESPONSE',
    `unexpected answer from ${a.endpoint} (${a.status}): ${why}`,
    a.status,
  );
}

function parseJson(a: Answer): unknown {
  try {
    return JSON.parse(a.body.toString('utf8')) as unknown;
  } catch {
    throw badResponse(a, 'not JSON');
  }
}

function errorBody(a: Answer): { code: string; message: string; modIndex?: unknown } | undefined {
  try {
    const b = JSON.parse(a.body.toString('utf8')) as {
      error?: { code?: unknown; message?: unknown; modIndex?: unknown };
    };
    if (typeof b.error?.code !== 'string') return undefined;
    return {
      code: b.error.code,
      message: typeof b.error.message === 'string' ? b.error.message : '',
      modIndex: b.error.modIndex,
    };
  } catch {
    return undefined;
  }
}

/** Codes for error answers without the API's JSON body (e.g. from a proxy). */
const STATUS_CODES: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  404: 'NO_ROUTE',
  405: 'METHOD_NOT_ALLOWED',
  413: 'VALUE_TOO_LARGE',
  500: 'INTERNAL',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'TIMEOUT',
};

function errorFromAnswer(a: Answer): KvClientError {
  const b = errorBody(a);
  if (b !== undefined) return new KvClientError(b.code, b.message || `HTTP ${a.status}`, a.status);
  const text = a.body.toString('utf8', 0, Math.min(a.body.byteLength, 200)).trim();
  return new KvClientError(
    STATUS_CODES[a.status] ?? 'BAD_RESPONSE',
    `HTTP ${a.status} from ${a.endpoint}${text === '' ? '' : `: ${text}`}`,
    a.status,
  );
}

/** Throws the answer's error unless it is a 2xx. */
function check(a: Answer, key?: string): void {
  if (a.status >= 200 && a.status < 300) return;
  if (a.status === 412 && key !== undefined) {
    const b = errorBody(a);
    if (b?.code === 'PRECONDITION_FAILED') {
      const modIndex = isIndex(b.modIndex) ? b.modIndex : 0;
      throw new PreconditionFailedError(key, modIndex);
    }
  }
  throw errorFromAnswer(a);
}

function indexOf(a: Answer): number {
  const b = parseJson(a) as { index?: unknown };
  if (!isIndex(b.index)) throw badResponse(a, 'no index');
  return b.index;
}

function headerInt(a: Answer, name: string): number {
  const v = a.headers[name];
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw badResponse(a, `no ${name} header`);
  return Number(v);
}

function parseCluster(a: Answer): ClusterStatus {
  const c = parseJson(a) as Partial<ClusterStatus>;
  if (
    typeof c !== 'object' ||
    c === null ||
    !(c.leader === null || typeof c.leader === 'string') ||
    !Array.isArray(c.members) ||
    !c.members.every((m: unknown) => typeof (m as { name?: unknown }).name === 'string')
  ) {
    throw badResponse(a, 'not a cluster status');
  }
  return c as ClusterStatus;
}
