import { entrySize, type Entry, type Index } from '../../core/messages.js';

/**
 * The most recent entries, kept in memory up to a byte budget so that the reads a leader does
 * all the time (replicating the tail to followers) never touch the disk.
 *
 * Invariant: holds exactly the indexes `first .. first + count - 1`, contiguous.
 */
export class TailCache {
  private items: Entry[] = [];
  private head = 0;
  private bytes = 0;
  /** Index of the first cached entry (meaningful when not empty). */
  first: Index = 1;

  constructor(private readonly limit: number) {}

  get count(): number {
    return this.items.length - this.head;
  }

  get(i: Index): Entry | undefined {
    const k = i - this.first;
    if (k < 0 || k >= this.count) return undefined;
    return this.items[this.head + k];
  }

  /** Add entry `e`; an index at or below the last cached one truncates the cache first. */
  put(e: Entry): void {
    if (this.count > 0 && e.index !== this.first + this.count) {
      if (e.index > this.first && e.index < this.first + this.count) this.truncateFrom(e.index);
      else this.clear(e.index);
    }
    if (this.count === 0) this.first = e.index;
    this.items.push(e);
    this.bytes += entrySize(e);
    while (this.bytes > this.limit && this.count > 0) this.dropFirst();
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Drop cached entries `>= i`. */
  truncateFrom(i: Index): void {
    while (this.count > 0 && this.first + this.count - 1 >= i) {
      const e = this.items.pop()!;
      this.bytes -= entrySize(e);
    }
  }

  /** Drop cached entries `<= to`. */
  compact(to: Index): void {
    while (this.count > 0 && this.first <= to) this.dropFirst();
  }

  /** Empty the cache; the next entry expected is `next`. */
  clear(next: Index): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    this.first = next;
  }

  private dropFirst(): void {
    const e = this.items[this.head]!;
    this.items[this.head] = undefined as unknown as Entry;
    this.head++;
    this.bytes -= entrySize(e);
    this.first++;
  }
}
