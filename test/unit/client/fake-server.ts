import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/** One request as a fake server saw it. */
export interface Seen {
  readonly method: string;
  /** The raw request target, still percent-encoded. */
  readonly url: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export type Handler = (req: Seen, res: http.ServerResponse) => void | Promise<void>;

/** A programmable HTTP server on 127.0.0.1 (port 0) that records every request. */
export class FakeServer {
  readonly seen: Seen[] = [];
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    public handler: Handler,
  ) {}

  static async start(
    handler: Handler = (_req, res) => json(res, 404, { error: { code: 'NO_ROUTE', message: 'x' } }),
    tls?: { cert: string; key: string },
  ): Promise<FakeServer> {
    const ref: { self?: FakeServer } = {};
    const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://x');
        const seen: Seen = {
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          path: u.pathname,
          query: u.searchParams,
          headers: req.headers,
          body: Buffer.concat(chunks),
        };
        ref.self!.seen.push(seen);
        void Promise.resolve(ref.self!.handler(seen, res)).catch((e: unknown) => {
          if (!res.headersSent) json(res, 500, { error: { code: 'INTERNAL', message: String(e) } });
        });
      });
    };
    const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    ref.self = new FakeServer(server, `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, handler);
    return ref.self;
  }

  /** Requests other than the client's leader lookups. */
  get requests(): Seen[] {
    return this.seen.filter((s) => s.path !== '/v1/cluster');
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function json(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const b = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(b),
    ...headers,
  });
  res.end(b);
}

export function noLeader(res: http.ServerResponse): void {
  json(
    res,
    503,
    { error: { code: 'NO_LEADER', message: 'no leader is known; retry shortly' } },
    { 'retry-after': '1' },
  );
}

/** A URL on which nothing listens (connections are refused). */
export async function refusedUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

interface Entry {
  value: Buffer;
  modIndex: number;
  createIndex: number;
}

/**
 * A small in-memory imitation of the kv server's HTTP API (src/kv/server.ts): keys, modIndex and
 * createIndex, prevIndex compare-and-set, exactly-once sessions, list, cluster and health.
 */
export class FakeKv {
  readonly data = new Map<string, Entry>();
  readonly sessions = new Map<string, { seq: number; status: number; body: unknown }>();
  index = 0;
  /** What `/v1/cluster` answers. */
  cluster: unknown = { name: 'n1', leader: 'n1', term: 2, commitIndex: 0, appliedIndex: 0, members: [] };
  token: string | undefined;

  readonly handler: Handler = (req, res) => {
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      return json(res, 401, { error: { code: 'UNAUTHORIZED', message: 'a valid bearer token is required' } });
    }
    if (req.path === '/v1/cluster') return json(res, 200, this.cluster);
    if (req.path === '/health')
      return json(res, 200, {
        healthy: true,
        leader: 'n1',
        commitIndex: this.index,
        appliedIndex: this.index,
      });
    if (req.path === '/v1/kv') return this.list(req, res);
    if (!req.path.startsWith('/v1/kv/'))
      return json(res, 404, { error: { code: 'NO_ROUTE', message: `no route for ${req.path}` } });
    const key = decodeURIComponent(req.path.slice('/v1/kv/'.length));
    if (req.method === 'GET') return this.get(key, res);
    const id = req.headers['x-client-id'];
    const seq = Number(req.headers['x-request-seq']);
    if (typeof id === 'string') {
      const s = this.sessions.get(id);
      if (s !== undefined && s.seq === seq) return json(res, s.status, s.body);
      if (s !== undefined && seq < s.seq)
        return json(res, 409, { error: { code: 'STALE_SEQUENCE', message: 'stale' } });
    }
    const [status, body] = this.write(req, key);
    if (typeof id === 'string') this.sessions.set(id, { seq, status, body });
    return json(res, status, body);
  };

  private get(key: string, res: http.ServerResponse): void {
    const e = this.data.get(key);
    if (e === undefined) return json(res, 404, { error: { code: 'NOT_FOUND', message: `no key ${key}` } });
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': e.value.byteLength,
      'x-mod-index': String(e.modIndex),
      'x-create-index': String(e.createIndex),
      'x-raft-index': String(this.index),
    });
    res.end(e.value);
  }

  private write(req: Seen, key: string): [number, unknown] {
    const index = ++this.index;
    const cur = this.data.get(key);
    const prev = req.query.get('prevIndex');
    if (prev !== null && (cur?.modIndex ?? 0) !== Number(prev)) {
      const modIndex = cur?.modIndex ?? 0;
      return [412, { error: { code: 'PRECONDITION_FAILED', message: `modIndex is ${modIndex}`, modIndex } }];
    }
    if (req.method === 'PUT') {
      this.data.set(key, { value: req.body, modIndex: index, createIndex: cur?.createIndex ?? index });
      return [200, { index }];
    }
    if (cur === undefined) return [404, { error: { code: 'NOT_FOUND', message: `no key ${key}` } }];
    this.data.delete(key);
    return [200, { index, deleted: true }];
  }

  private list(req: Seen, res: http.ServerResponse): void {
    const prefix = req.query.get('prefix') ?? '';
    const limit = Number(req.query.get('limit') ?? 1000);
    const keys = [...this.data.keys()].filter((k) => k.startsWith(prefix)).sort();
    const items = keys.slice(0, limit).map((key) => {
      const e = this.data.get(key)!;
      const text = e.value.toString('utf8');
      const valid = Buffer.from(text, 'utf8').equals(e.value);
      return {
        key,
        ...(valid ? { value: text } : { value: e.value.toString('base64'), encoding: 'base64' }),
        modIndex: e.modIndex,
        createIndex: e.createIndex,
      };
    });
    json(res, 200, { items, raftIndex: this.index });
  }
}
