import { RaftError } from '../errors.js';

/**
 * Asserts an internal invariant. A broken invariant is a bug: it throws
 * `RaftError('INVARIANT')`, which stops the node rather than let it continue wrongly.
 * The message is built lazily so the happy path costs nothing.
 */
export function invariant(cond: unknown, message: () => string): asserts cond {
  if (!cond) throw new RaftError('INVARIANT', `invariant broken: ${message()}`);
}
