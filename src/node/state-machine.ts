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
  /** The whole state as bytes (taken at the last applied index). */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /** Replaces the whole state with a snapshot's bytes. */
  restore(data: Uint8Array): void | Promise<void>;
}
