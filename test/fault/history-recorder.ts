import fs from 'node:fs';
import type { Operation } from './checker/history.js';

/**
 * What the fault suite records per operation: the checker's {@link Operation} plus where it
 * went, for the report (the checker ignores the extra fields).
 */
export interface RecordedOp extends Operation {
  /** `kv` (the project's KvClient) or `raw` (one plain HTTP request). */
  via?: 'kv' | 'raw' | 'final';
  /** The member asked (raw requests) or that answered. */
  node?: string;
  /** Read consistency, when not linearizable. */
  consistency?: 'lease';
  /** The error code behind a fail/info, when there was one. */
  code?: string;
}

/**
 * The history of one run, written as JSON lines as it grows (so even a run that hangs or
 * crashes leaves its history behind). Times are ms since the run began, with µs precision.
 */
export class HistoryRecorder {
  readonly ops: RecordedOp[] = [];
  /** Invoked, not yet completed. */
  private readonly pending = new Map<number, RecordedOp>();
  private nextId = 0;
  private readonly t0 = performance.now();
  private fd: number | undefined;

  constructor(file?: string) {
    if (file !== undefined) this.fd = fs.openSync(file, 'w');
  }

  /** ms since the run began. */
  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  /** Starts an operation: its id and invoke time are fixed now. */
  invoke(op: Omit<RecordedOp, 'id' | 'invoke' | 'complete' | 'outcome'>): RecordedOp {
    const rec: RecordedOp = {
      ...op,
      id: this.nextId++,
      invoke: this.now(),
      complete: undefined,
      outcome: 'info',
    };
    this.pending.set(rec.id, rec);
    return rec;
  }

  /**
   * The history so far, with the operations still in flight as indeterminate (they may yet
   * take effect): a sound input for the checker in the middle of a run.
   */
  snapshot(): RecordedOp[] {
    return [...this.ops, ...this.pending.values()];
  }

  /** Completes and records an operation. */
  complete(op: RecordedOp, done: Pick<RecordedOp, 'outcome'> & Partial<RecordedOp>): RecordedOp {
    this.pending.delete(op.id);
    const rec: RecordedOp = { ...op, ...done, complete: this.now() };
    if (rec.complete! < rec.invoke) rec.complete = rec.invoke;
    this.ops.push(rec);
    if (this.fd !== undefined) fs.writeSync(this.fd, JSON.stringify(rec) + '\n');
    return rec;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
