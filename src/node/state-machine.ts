import type { Index, Term } from '../core/messages.js';

/** A committed command, as the state machine sees it. */
export interface Command {
  readonly index: Index;
  readonly term: Term;
  readonly data: Uint8Array;
}

/**
 * What users implement: the replicated state machine (§1 of the paper). Every server calls
 * `apply` with the same commands in the same order; it must be deterministic (no clocks, no
 * randomness, no I/O whose outcome differs between servers).
 *
 * Snapshots (§7): the node calls {@link snapshot} between two `apply` calls, never during one,
 * and stores the result with the index of the last command applied. Snapshotting must not
 * stall applying: a small state may return its bytes; a large one returns an
 * `AsyncIterable` of chunks produced from an immutable (e.g. copy-on-write) view captured
 * *before `snapshot()` returns*, and keeps applying while the node reads it.
 *
 * @example
 * ```ts
 * class Counter implements StateMachine<number> {
 *   value = 0;
 *   apply(cmds: readonly Command[]): number[] {
 *     return cmds.map((c) => (this.value += Number(new TextDecoder().decode(c.data))));
 *   }
 *   snapshot(): Uint8Array { return new TextEncoder().encode(String(this.value)); }
 *   restore(data: Uint8Array): void { this.value = Number(new TextDecoder().decode(data)); }
 * }
 * ```
 */
export interface StateMachine<R = unknown> {
  /** Applies committed commands in log order; returns one result per command. */
  apply(commands: readonly Command[]): readonly R[] | Promise<readonly R[]>;
  /**
   * The whole state as of the last applied command: its bytes, or a stream of chunks read once
   * (see above). The state must be captured synchronously, before this returns.
   */
  snapshot(): Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>;
  /** Replaces the whole state with a snapshot's bytes. */
  restore(data: Uint8Array): void | Promise<void>;
  /**
   * Optional: replaces the whole state from a snapshot's chunks, so a large snapshot is never
   * whole in memory. Used instead of {@link restore} when present.
   */
  restoreStream?(chunks: AsyncIterable<Uint8Array>): Promise<void>;
}
