import { describe, expect, it } from 'vitest';
import { Inflights, Progress } from '../../../src/core/progress.js';

describe('Inflights: the bounded window of appends in flight', () => {
  it('is full at maxCount messages and frees every message at or below an index', () => {
    const w = new Inflights(3, 0);
    w.add(1, 10);
    w.add(2, 10);
    expect(w.full()).toBe(false);
    w.add(5, 10);
    expect(w.full()).toBe(true);
    expect(w.length).toBe(3);
    w.freeLE(2);
    expect(w.length).toBe(1);
    expect(w.full()).toBe(false);
    w.freeLE(4); // nothing at or below 4 is left
    expect(w.length).toBe(1);
    w.freeLE(5);
    expect(w.length).toBe(0);
  });

  it('grows its ring buffer and keeps order across wrap-around', () => {
    const w = new Inflights(100, 0);
    for (let i = 1; i <= 3; i++) w.add(i, 1);
    w.freeLE(2); // start moves forward
    for (let i = 4; i <= 20; i++) w.add(i, 1); // wraps, then grows (4 → 8 → 16 → 32)
    expect(w.length).toBe(18);
    w.freeLE(10);
    expect(w.length).toBe(10);
    for (let i = 21; i <= 40; i++) w.add(i, 1);
    w.freeLE(39);
    expect(w.length).toBe(1);
    w.freeLE(40);
    expect(w.length).toBe(0);
  });

  it('is full once maxBytes are in flight; freeing releases their bytes', () => {
    const w = new Inflights(100, 100);
    w.add(1, 60);
    expect(w.full()).toBe(false);
    w.add(2, 40);
    expect(w.full()).toBe(true);
    w.freeLE(1);
    expect(w.full()).toBe(false);
    w.add(3, 59);
    expect(w.full()).toBe(false);
    w.add(4, 1);
    expect(w.full()).toBe(true);
  });

  it('frees the oldest message alone, and resets', () => {
    const w = new Inflights(2, 0);
    w.freeFirstOne(); // empty: nothing to do
    w.add(3, 1);
    w.add(6, 1);
    w.freeFirstOne();
    expect(w.length).toBe(1);
    expect(w.full()).toBe(false);
    w.reset();
    expect(w.length).toBe(0);
  });
});

describe('Progress: the leader’s view of one follower', () => {
  it('in probe state sends one append, then pauses until answered', () => {
    const p = new Progress(5, false, 4, 0);
    expect(p.state).toBe('probe');
    expect(p.isPaused()).toBe(false);
    p.sentEntries(3, 7, 100);
    expect(p.isPaused()).toBe(true);
    expect(p.next).toBe(5); // a probe does not move next
    expect(p.maybeUpdate(7)).toBe(true);
    expect(p.match).toBe(7);
    expect(p.next).toBe(8);
    expect(p.isPaused()).toBe(false);
  });

  it('in replicate state advances next optimistically and pauses when the window is full', () => {
    const p = new Progress(1, false, 2, 0);
    p.becomeReplicate();
    p.sentEntries(2, 2, 10);
    expect(p.next).toBe(3);
    p.sentEntries(0, 2, 0); // an empty append takes no slot
    expect(p.inflights.length).toBe(1);
    p.sentEntries(1, 3, 10);
    expect(p.isPaused()).toBe(true);
    expect(p.maybeUpdate(1)).toBe(true);
    expect(p.maybeUpdate(1)).toBe(false); // stale
    expect(p.next).toBe(4);
  });

  it('handles rejections: stale ones are ignored, fresh ones move next back', () => {
    const r = new Progress(1, false, 4, 0);
    r.match = 5;
    r.becomeReplicate();
    r.next = 9;
    expect(r.maybeDecrTo(5, 0)).toBe(false); // at or below match: stale
    expect(r.maybeDecrTo(8, 0)).toBe(true);
    expect(r.next).toBe(6);

    const p = new Progress(11, false, 4, 0);
    p.match = 2;
    expect(p.maybeDecrTo(7, 0)).toBe(false); // not the answer to our latest probe (10)
    p.probeSent = true;
    expect(p.maybeDecrTo(10, 4)).toBe(true); // skip to after the hint
    expect(p.next).toBe(5);
    expect(p.probeSent).toBe(false);
    expect(p.maybeDecrTo(4, 0)).toBe(true); // never below match + 1
    expect(p.next).toBe(3);
  });

  it('snapshot state pauses until the snapshot is done; probing resumes after it', () => {
    const p = new Progress(3, false, 4, 0);
    p.match = 2;
    p.becomeSnapshot(20);
    expect(p.isPaused()).toBe(true);
    p.sentEntries(1, 3, 1);
    expect(p.next).toBe(3);
    p.becomeProbe();
    expect(p.state).toBe('probe');
    expect(p.next).toBe(21);
    p.becomeSnapshot(20);
    p.pendingSnapshot = 0; // failed
    p.becomeProbe();
    expect(p.next).toBe(3);
  });

  it('becoming probe or replicate restarts from match + 1', () => {
    const p = new Progress(10, false, 4, 0);
    p.match = 6;
    p.becomeReplicate();
    p.sentEntries(1, 12, 1);
    p.becomeProbe();
    expect(p.next).toBe(7);
    expect(p.inflights.length).toBe(0);
  });
});
