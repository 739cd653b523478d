import http from 'node:http';
import { KvClient } from '../../src/client/index.js';
import { PreconditionFailedError, isKvClientError } from '../../src/client/errors.js';
import type { HistoryRecorder, RecordedOp } from './history-recorder.js';
import type { Rng } from './rng.js';

/**
 * The workload: concurrent clients doing put / get / cas / delete on a small set of keys
 * (high contention), every written value unique, each operation recorded with its invoke
 * and complete times and outcome: `ok`, `fail` (definitely not applied) or `info`
 * (indeterminate).
 *
 * Half the clients use the project's {@link KvClient} (leader discovery, failover, exactly-once
 * retries); the others send one plain HTTP request per operation to a member picked at
 * random, so followers serve reads and forward writes too.
 *
 * Keys rotate: a key slot moves on to a fresh key after `opsPerKey` operations, which keeps
 * each key's history small enough for the linearizability search while contention stays high.
 */

export interface WorkloadOptions {
  clients: number;
  rng: Rng;
  recorder: HistoryRecorder;
  /** Client URLs of the members to use now (raw clients pick one per operation). */
  endpoints: () => { name: string; url: string }[];
  /** Keys in use at any time. Default 8. */
  keys?: number;
  /** Operations on one key before its slot moves to a fresh key. Default 150. */
  opsPerKey?: number;
  /** Fraction of clients that use KvClient (the rest: raw HTTP). Default 0.5. */
  kvFraction?: number;
  /** Fraction of reads made with `consistency=lease`. Default 0.1. */
  leaseFraction?: number;
  /** Time limit of one raw request / one KvClient attempt. Default 3000 ms. */
  timeoutMs?: number;
  /** Time limit of a whole KvClient call (retries included). Default 6000 ms. */
  deadlineMs?: number;
  /** Pause between a client's operations, ms (uniform in [0, thinkMs]). Default 10. */
  thinkMs?: number;
  /** Only these operation kinds (default all). */
  ops?: readonly ('get' | 'put' | 'cas' | 'delete')[];
  /**
   * Fraction of puts made to a fresh key that nothing else touches until the final read-back:
   * such a key must end holding the value if the put was acknowledged and stay absent if it
   * definitely failed, whatever else happened. Default 0.15.
   */
  uniqueFraction?: number;
  /** Relative weights of the kinds. Default get 45, put 25, cas 20, delete 10. */
  mix?: { get: number; put: number; cas: number; delete: number };
}

/** 503 codes that guarantee a write was not appended (src/errors.ts, src/client/errors.ts). */
const NOT_APPLIED = new Set([
  'NO_LEADER',
  'NOT_LEADER',
  'PROPOSAL_DROPPED',
  'BACK_PRESSURE',
  'TRANSFER_IN_PROGRESS',
]);
/** Error codes after which a write's outcome is unknown. */
const UNKNOWN_OUTCOME = new Set(['TIMEOUT', 'STOPPED', 'STORAGE_FAILED', 'INTERNAL', 'BAD_RESPONSE']);

interface Plan {
  f: 'get' | 'put' | 'cas' | 'delete';
  key: string;
  value?: string;
  prevIndex?: number;
  lease?: boolean;
}

type Done = Pick<RecordedOp, 'outcome'> & Partial<RecordedOp>;

class KeySpace {
  private readonly gen: number[];
  private readonly count: number[];
  readonly touched = new Set<string>();

  constructor(
    private readonly slots: number,
    private readonly opsPerKey: number,
  ) {
    this.gen = Array.from({ length: slots }, () => 0);
    this.count = Array.from({ length: slots }, () => 0);
  }

  /** A key used once (and read back at the end). */
  unique(client: number, n: number): string {
    const k = `u${client}.${n}`;
    this.touched.add(k);
    return k;
  }

  next(rng: Rng): string {
    const s = rng.int(0, this.slots - 1);
    if (++this.count[s]! > this.opsPerKey) {
      this.gen[s]!++;
      this.count[s] = 1;
    }
    const k = `k${s}.${this.gen[s]}`;
    this.touched.add(k);
    return k;
  }
}

export class Workload {
  private stopped = false;
  private running: Promise<void>[] = [];
  private readonly keys: KeySpace;
  private readonly o: Required<Omit<WorkloadOptions, 'ops'>> & { ops: WorkloadOptions['ops'] };
  private readonly weights: readonly (readonly [number, Plan['f']])[];
  /** Operations completed per outcome, for progress reports. */
  readonly counts = { ok: 0, fail: 0, info: 0 };

  constructor(o: WorkloadOptions) {
    this.o = {
      keys: 8,
      opsPerKey: 150,
      kvFraction: 0.5,
      leaseFraction: 0.1,
      timeoutMs: 3000,
      deadlineMs: 6000,
      thinkMs: 10,
      uniqueFraction: 0.15,
      mix: { get: 45, put: 25, cas: 20, delete: 10 },
      ...o,
      ops: o.ops,
    };
    const kinds = this.o.ops ?? ['get', 'put', 'cas', 'delete'];
    this.weights = (['get', 'put', 'cas', 'delete'] as const)
      .filter((k) => kinds.includes(k))
      .map((k) => [this.o.mix[k], k] as const);
    this.keys = new KeySpace(this.o.keys, this.o.opsPerKey);
  }

  /** Every key an operation was issued on. */
  touchedKeys(): string[] {
    return [...this.keys.touched].sort();
  }

  start(): void {
    const nKv = Math.round(this.o.clients * this.o.kvFraction);
    for (let i = 0; i < this.o.clients; i++) {
      this.running.push(this.client(i, i < nKv ? 'kv' : 'raw', this.o.rng.fork(100 + i)));
    }
  }

  /** Stops issuing operations and waits for those in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  private plan(rng: Rng, seen: Map<string, number>, client: number, n: number): Plan {
    const key = this.keys.next(rng);
    const f = rng.weighted(this.weights);
    const value = `c${client}-${n}`;
    switch (f) {
      case 'get':
        return rng.chance(this.o.leaseFraction) ? { f, key, lease: true } : { f, key };
      case 'put':
        return rng.chance(this.o.uniqueFraction)
          ? { f, key: this.keys.unique(client, n), value }
          : { f, key, value };
      case 'cas':
        return { f, key, value, prevIndex: seen.get(key) ?? 0 };
      case 'delete':
        return rng.chance(0.3) ? { f, key, prevIndex: seen.get(key) ?? 0 } : { f, key };
    }
  }

  private async client(i: number, via: 'kv' | 'raw', rng: Rng): Promise<void> {
    let process = i;
    let n = 0;
    const seen = new Map<string, number>();
    const rec = this.o.recorder;
    const urls = (): string[] => this.o.endpoints().map((e) => e.url);
    let kv: KvClient | undefined;
    let kvEndpoints = '';
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!this.stopped) {
        const p = this.plan(rng, seen, i, n++);
        const op = rec.invoke({
          process,
          key: p.key,
          f: p.f,
          via,
          ...(p.value !== undefined ? { value: p.value } : {}),
          ...(p.prevIndex !== undefined ? { prevIndex: p.prevIndex } : {}),
          ...(p.lease ? { consistency: 'lease' as const } : {}),
        });
        let done: Done;
        if (via === 'kv') {
          // A new member list (membership changes) means a new client.
          const eps = urls();
          if (kv === undefined || eps.join(',') !== kvEndpoints) {
            kv?.close();
            kvEndpoints = eps.join(',');
            kv = new KvClient({
              endpoints: rng.shuffle(eps),
              timeoutMs: this.o.timeoutMs,
              deadlineMs: this.o.deadlineMs,
            });
          }
          done = await kvOp(kv, p);
        } else {
          const target = rng.pick(this.o.endpoints());
          op.node = target.name;
          done = await rawOp(target.url, p, agent, this.o.timeoutMs);
        }
        const r = rec.complete(op, done);
        this.counts[r.outcome]++;
        learn(seen, r);
        // After an indeterminate operation, carry on as a new process (it may still apply).
        if (r.outcome === 'info') process += this.o.clients;
        // Back off a little after a refusal (no leader, member down), as a real client would.
        const refused = r.outcome === 'fail' && r.error !== 'precondition';
        const think = refused ? rng.int(20, 100) : rng.int(0, this.o.thinkMs);
        if (think > 0) await new Promise((res) => setTimeout(res, think));
      }
    } finally {
      kv?.close();
      agent.destroy();
    }
  }
}

/** What a client learns about a key's modIndex from an answer (for its next cas). */
function learn(seen: Map<string, number>, r: RecordedOp): void {
  if (r.outcome === 'ok') {
    if (r.f === 'get') seen.set(r.key, r.value === null ? 0 : (r.result?.modIndex ?? 0));
    else if (r.f === 'delete') seen.set(r.key, 0);
    else if (r.result?.index !== undefined) seen.set(r.key, r.result.index);
  } else if (r.error === 'precondition' && r.result?.modIndex !== undefined) {
    seen.set(r.key, r.result.modIndex);
  }
}

// ------------------------------------------------------------------ KvClient

async function kvOp(kv: KvClient, p: Plan): Promise<Done> {
  try {
    switch (p.f) {
      case 'get': {
        const r = await kv.get(p.key, p.lease ? { consistency: 'lease' } : {});
        if (r === undefined) return { outcome: 'ok', value: null };
        return {
          outcome: 'ok',
          value: Buffer.from(r.value).toString('utf8'),
          result: { modIndex: r.modIndex },
        };
      }
      case 'put': {
        const r = await kv.put(p.key, p.value!);
        return { outcome: 'ok', result: { index: r.index } };
      }
      case 'cas': {
        const r = await kv.cas(p.key, p.value!, p.prevIndex!);
        return { outcome: 'ok', result: { index: r.index } };
      }
      case 'delete': {
        const r = await kv.delete(p.key, p.prevIndex !== undefined ? { prevIndex: p.prevIndex } : {});
        return r.deleted
          ? { outcome: 'ok', result: { index: r.index } }
          : { outcome: 'ok', result: { deleted: false } };
      }
    }
  } catch (e) {
    if (e instanceof PreconditionFailedError) {
      return {
        outcome: 'fail',
        error: 'precondition',
        code: 'PRECONDITION_FAILED',
        result: { modIndex: e.modIndex },
      };
    }
    if (isKvClientError(e)) {
      return UNKNOWN_OUTCOME.has(e.code)
        ? { outcome: 'info', code: e.code }
        : { outcome: 'fail', error: e.code, code: e.code };
    }
    return { outcome: 'info', code: `EXCEPTION ${(e as Error).message}` };
  }
}

// ------------------------------------------------------------------ raw HTTP

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

class RawError extends Error {
  constructor(
    readonly sent: boolean,
    message: string,
  ) {
    super(message);
  }
}

const NEVER_SENT = new Set(['ECONNREFUSED', 'EADDRNOTAVAIL', 'EHOSTUNREACH', 'ENETUNREACH']);

function request(
  base: string,
  method: string,
  path: string,
  body: string | undefined,
  agent: http.Agent,
  timeoutMs: number,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let connected = false;
    let settled = false;
    const req = http.request(new URL(base + path), {
      method,
      agent,
      headers: body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {},
    });
    const timer = setTimeout(() => {
      fail(new Error(`no answer within ${timeoutMs} ms`), true);
      req.destroy();
    }, timeoutMs);
    const fail = (e: Error, timeout = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const code = (e as NodeJS.ErrnoException).code ?? '';
      reject(new RawError(timeout || (connected && !NEVER_SENT.has(code)), code || e.message));
    };
    req.on('socket', (s) => {
      if (!s.connecting) connected = true;
      else s.once('connect', () => (connected = true));
    });
    req.on('error', (e) => fail(e));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => fail(e));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.end(body);
  });
}

function errorCode(a: RawAnswer): string {
  try {
    const b = JSON.parse(a.body.toString('utf8')) as { error?: { code?: unknown } };
    return typeof b.error?.code === 'string' ? b.error.code : `HTTP_${a.status}`;
  } catch {
    return `HTTP_${a.status}`;
  }
}

/**
 * One request, no retry. A connection that never opened → fail; no answer → info; the
 * answer's status and code decide the rest (DESIGN.md "kv" errors, src/errors.ts).
 */
async function rawOp(base: string, p: Plan, agent: http.Agent, timeoutMs: number): Promise<Done> {
  const path = `/v1/kv/${encodeURIComponent(p.key)}`;
  const q = p.prevIndex !== undefined ? `?prevIndex=${p.prevIndex}` : '';
  let a: RawAnswer;
  try {
    if (p.f === 'get')
      a = await request(
        base,
        'GET',
        path + (p.lease ? '?consistency=lease' : ''),
        undefined,
        agent,
        timeoutMs,
      );
    else if (p.f === 'delete') a = await request(base, 'DELETE', path + q, undefined, agent, timeoutMs);
    else a = await request(base, 'PUT', path + q, p.value, agent, timeoutMs);
  } catch (e) {
    const sent = e instanceof RawError ? e.sent : true;
    const code = (e as Error).message;
    return sent ? { outcome: 'info', code } : { outcome: 'fail', error: 'unreachable', code };
  }
  if (a.status === 200) {
    if (p.f === 'get') {
      const mod = Number(a.headers['x-mod-index']);
      return {
        outcome: 'ok',
        value: a.body.toString('utf8'),
        ...(Number.isSafeInteger(mod) ? { result: { modIndex: mod } } : {}),
      };
    }
    const index = (JSON.parse(a.body.toString('utf8')) as { index?: number }).index;
    return { outcome: 'ok', ...(typeof index === 'number' ? { result: { index } } : {}) };
  }
  const code = errorCode(a);
  if (a.status === 404 && code === 'NOT_FOUND') {
    if (p.f === 'get') return { outcome: 'ok', value: null };
    if (p.f === 'delete') return { outcome: 'ok', result: { deleted: false } };
  }
  if (a.status === 412 && code === 'PRECONDITION_FAILED') {
    const b = JSON.parse(a.body.toString('utf8')) as { error?: { modIndex?: number } };
    const m = b.error?.modIndex;
    return {
      outcome: 'fail',
      error: 'precondition',
      code,
      ...(typeof m === 'number' ? { result: { modIndex: m } } : {}),
    };
  }
  if (a.status >= 400 && a.status < 500) return { outcome: 'fail', error: code, code };
  if (a.status === 503 && NOT_APPLIED.has(code)) return { outcome: 'fail', error: code, code };
  // 503 STOPPED / STORAGE_FAILED, 504, 500, 502: the outcome is unknown.
  return { outcome: 'info', code };
}
