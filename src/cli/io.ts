/** Where the CLI writes: `process.stdout`/`process.stderr`, or a capture in tests. */
export interface Output {
  write(chunk: string | Uint8Array): unknown;
}

/** The CLI's output streams. */
export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
}

/** A bad invocation: printed with the command's usage; exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    /** The usage text to print after the message. */
    readonly usage: string,
  ) {
    super(message);
  }
}

/** Exit codes of every tsraft command. */
export const EXIT = {
  OK: 0,
  /** The operation failed (printed as `error: CODE message`). */
  FAILED: 1,
  /** Bad flags or arguments. */
  USAGE: 2,
} as const;
