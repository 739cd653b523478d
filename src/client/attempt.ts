import http from 'node:http';
import https from 'node:https';

/** One HTTP answer, body read in full. */
export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** The base URL of the endpoint that answered. */
  readonly endpoint: string;
}

/** What one attempt of a request carries. */
export interface AttemptInit {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  readonly timeoutMs: number;
  readonly agent: http.Agent;
}

/**
 * An attempt that got no answer. `sent` says whether the request may have reached the server:
 * false only when the connection was never established (refused, unresolvable, unreachable), in
 * which case the request certainly did not take effect.
 */
export class AttemptError extends Error {
  override name = 'AttemptError';
  constructor(
    readonly kind: 'timeout' | 'network',
    readonly sent: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Sends one request to `base + path` and reads the whole answer, or fails with an
 * {@link AttemptError} after `timeoutMs` (which covers connecting, sending and reading).
 */
export function attempt(base: string, path: string, init: AttemptInit): Promise<Answer> {
  const url = new URL(base + path);
  const mod = url.protocol === 'https:' ? https : http;
  const secure = url.protocol === 'https:';
  return new Promise<Answer>((resolve, reject) => {
    let connected = false;
    let timedOut = false;
    let settled = false;
    const headers: Record<string, string | number> = { ...init.headers };
    if (init.body !== undefined) headers['content-length'] = init.body.byteLength;
    const req = mod.request(url, { method: init.method, headers, agent: init.agent });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy();
    }, init.timeoutMs);
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new AttemptError(
            'timeout',
            connected,
            `${init.method} ${base}: no answer within ${init.timeoutMs} ms`,
            {
              cause: e,
            },
          ),
        );
        return;
      }
      const code = (e as NodeJS.ErrnoException).code ?? '';
      // Only a connection that never opened proves the request did not reach the server.
      const sent = connected && !NEVER_SENT.has(code);
      reject(new AttemptError('network', sent, `${init.method} ${base}: ${code || e.message}`, { cause: e }));
    };
    req.on('socket', (s) => {
      // A reused keep-alive socket is already open; a new one is open once connected (TLS: after the handshake).
      if (!s.connecting) connected = true;
      else s.once(secure ? 'secureConnect' : 'connect', () => (connected = true));
    });
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('close', () => {
        if (!res.complete) fail(new Error('the answer was cut off'));
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
          endpoint: base,
        });
      });
    });
    req.end(init.body);
  });
}

/** errno codes that mean the connection was never established. */
const NEVER_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ERR_INVALID_URL',
]);
