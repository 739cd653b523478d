/**
 * Polls `f` until it yields a value (not undefined/false) or `ms` pass; errors thrown by `f`
 * count as "not yet". Throws naming `what` on timeout.
 */
export async function until<T>(
  f: () => Promise<T | undefined | false>,
  ms: number,
  what: string,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
