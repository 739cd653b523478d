/**
 * Errors of the key-value client. The server answers errors as JSON `{ "error": { "code", "message" } }`
 * (DESIGN.md "kv"); the client raises them as {@link KvClientError}s carrying the same `code` and
 * the HTTP `status`, and adds its own codes for what happens on the way (`TIMEOUT`, `UNAVAILABLE`,
 * `BAD_RESPONSE`).
 *
 * This is its own class rather than a {@link RaftError} subclass because its codes are the
 * HTTP API's (`NOT_FOUND`, `PRECONDITION_FAILED`, `UNAUTHORIZED`, ...), a different catalogue
 * from the node's; it follows the same rules (STYLE.md convention 6): each code says what the
 * caller may conclude.
 *
 * @module
 */

/** Every code a {@link KvClientError} may carry. Unknown codes from a newer server pass through as strings. */
export type KvClientErrorCode =
  // ---- raised by the client itself
  /**
   * The operation did not get a definite answer before the deadline: an attempt timed out, a
   * connection broke after the request was sent, or the server answered 504. A write MAY have
   * been applied: outcome unknown. (The client already retried it under the same sequence number,
   * which the server deduplicates; calling again is a new write, so read the key first to find out.)
   */
  | 'TIMEOUT'
  /**
   * No endpoint could be reached (connections refused, DNS failures) or every endpoint answered
   * "no leader" until the deadline, and no attempt's outcome is in doubt: a write was NOT applied.
   */
  | 'UNAVAILABLE'
  /** The server's answer could not be understood (not the JSON or headers the API promises). Nothing is known. */
  | 'BAD_RESPONSE'
  /** The client was closed. Writes still queued were NOT sent. */
  | 'CLOSED'
  // ---- answered by the server (DESIGN.md "kv")
  /** 400: the request was malformed. Nothing was applied; do not retry unchanged. */
  | 'BAD_REQUEST'
  /** 400: the key is empty or not valid (client-side also: `.` and `..`, which URLs cannot carry). Nothing applied. */
  | 'BAD_KEY'
  /** 400: a query parameter is out of range. Nothing applied. */
  | 'BAD_PARAM'
  /** 400: X-Client-Id / X-Request-Seq were malformed. Nothing applied. */
  | 'BAD_SESSION'
  /** 401: a valid bearer token is required. Nothing applied. */
  | 'UNAUTHORIZED'
  /** 404: no such key (`get` and `delete` answer this as a value, not an error), or no such route. */
  | 'NOT_FOUND'
  /** 404: the server has no such route (version mismatch?). Nothing applied. */
  | 'NO_ROUTE'
  /** 405: the method is not allowed there. Nothing applied. */
  | 'METHOD_NOT_ALLOWED'
  /** 409: a membership change is already in flight. NOT applied. */
  | 'CONF_CHANGE_IN_PROGRESS'
  /**
   * 409: a newer write of this client session was already applied, so this older one was refused
   * (NOT applied). Only possible when one client id is shared by concurrent writers.
   */
  | 'STALE_SEQUENCE'
  /** 412: the compare-and-set precondition failed; see {@link PreconditionFailedError.modIndex}. NOT applied. */
  | 'PRECONDITION_FAILED'
  /** 413: the key is too long. Nothing applied. */
  | 'KEY_TOO_LARGE'
  /** 413: the value is too large. Nothing applied. */
  | 'VALUE_TOO_LARGE'
  /** 503: no leader is known (an election is running). NOT applied; retried automatically until the deadline. */
  | 'NO_LEADER'
  /** 503: the proposal was dropped before being appended. NOT applied; retried automatically. */
  | 'PROPOSAL_DROPPED'
  /** 503: the leader is shedding load. NOT applied; retried automatically with back-off. */
  | 'BACK_PRESSURE'
  /** 503: a leadership transfer is in progress. NOT applied; retried automatically. */
  | 'TRANSFER_IN_PROGRESS'
  /** 503: the server is stopping. A write MAY have been applied; retried automatically (exactly-once). */
  | 'STOPPED'
  /** 503: the server's disk failed (fail-stop). Retried automatically on other endpoints. */
  | 'STORAGE_FAILED'
  /** 500: a bug on the server. Nothing is known. */
  | 'INTERNAL'
  | (string & {});

/** An error answered by a tsraft server or raised by {@link KvClient} on the way there. */
export class KvClientError extends Error {
  override name = 'KvClientError';
  constructor(
    /** What went wrong; see {@link KvClientErrorCode} for what each code lets the caller conclude. */
    readonly code: KvClientErrorCode,
    message: string,
    /** The HTTP status of the answer this came from, or undefined when there was no answer. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A compare-and-set (`prevIndex`) did not match; `modIndex` is the key's current one (0: absent). */
export class PreconditionFailedError extends KvClientError {
  override name = 'PreconditionFailedError';
  constructor(
    readonly key: string,
    /** The key's modification index on the server when the write was refused; 0 when the key is absent. */
    readonly modIndex: number,
    message = `precondition failed on ${JSON.stringify(key)}: its modIndex is ${modIndex}`,
  ) {
    super('PRECONDITION_FAILED', message, 412);
  }
}

/** True when `e` is a {@link KvClientError}, optionally carrying `code`. */
export function isKvClientError(e: unknown, code?: KvClientErrorCode): e is KvClientError {
  return e instanceof KvClientError && (code === undefined || e.code === code);
}
