/**
 * Seeded randomness for the core. The core never calls `Math.random`: every random choice
 * (today only the election timeout) comes from a {@link Rand} in its config, so a simulator
 * seed replays a run exactly.
 */
export interface Rand {
  /** A uniformly distributed integer in `[0, n)`. */
  intn(n: number): number;
}

/**
 * A small, fast, seeded generator (mulberry32). Not cryptographic; it only has to spread
 * election timeouts and drive the simulator reproducibly.
 */
export class SeededRand implements Rand {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next 32-bit unsigned value. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in `[0, 1)`. */
  float(): number {
    return this.nextUint32() / 4294967296;
  }

  intn(n: number): number {
    if (n <= 0) return 0;
    return Math.floor(this.float() * n);
  }
}

/** A stable 32-bit hash of a string (FNV-1a), used to derive a per-node seed from its id. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
