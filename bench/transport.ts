/**
 * `npm run bench:transport` — the transport layer: codec encode/decode throughput of an
 * AppendEntries carrying 256 × 256-byte entries, frame reassembly from 64 KiB TCP-like chunks,
 * and TCP loopback messages per second between two TcpTransports. Figures, not pass/fail.
 */
import type { Message } from '../src/core/messages.js';
import { decodeMessage, encodeFrames, encodeMessage } from '../src/transport/codec.js';
import { formatAddress } from '../src/transport/address.js';
import { FrameDecoder } from '../src/transport/framing.js';
import { TcpTransport } from '../src/transport/tcp-transport.js';

const ENTRIES = 256;
const ENTRY_BYTES = 256;

function appendEntries(from: string, to: string, seq: number, entries: number, bytes: number): Message {
  return {
    type: 'app',
    from,
    to,
    term: 7,
    prevIndex: seq * entries,
    prevTerm: 7,
    commit: seq * entries,
    entries: Array.from({ length: entries }, (_, i) => ({
      term: 7,
      index: seq * entries + i + 1,
      type: 'normal' as const,
      data: new Uint8Array(bytes).fill(i & 0xff),
    })),
  };
}

/**
 * Runs `fn` repeatedly for about `seconds`, in five rounds; returns the best round's iterations
 * per second (the least disturbed by GC and by other load on the machine).
 */
function timeLoop(seconds: number, fn: () => void): number {
  for (let i = 0; i < 200; i++) fn(); // warm up
  let best = 0;
  for (let round = 0; round < 5; round++) {
    let n = 0;
    const t0 = performance.now();
    const deadline = t0 + (seconds * 1000) / 5;
    let now = t0;
    while (now < deadline) {
      for (let i = 0; i < 20; i++) fn();
      n += 20;
      now = performance.now();
    }
    best = Math.max(best, n / ((now - t0) / 1000));
  }
  return best;
}

const fmt = (x: number, digits = 0): string =>
  x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mb = (bytesPerSec: number): string => `${fmt(bytesPerSec / (1024 * 1024), 0)} MB/s`;

function codecBench(): void {
  const m = appendEntries('n1', 'n2', 1, ENTRIES, ENTRY_BYTES);
  const frameBytes = encodeFrames([m]).bytes;
  const payload = encodeMessage(m);
  console.log(
    `AppendEntries ${ENTRIES} × ${ENTRY_BYTES} B entries: ${fmt(frameBytes)} bytes per frame (${fmt(ENTRY_BYTES * ENTRIES)} of payload)`,
  );
  let sink = 0;
  const enc = timeLoop(1, () => {
    sink += encodeFrames([m]).bytes;
  });
  console.log(
    `  encode (encodeFrames)         ${fmt(enc).padStart(9)} msgs/s  ${mb(enc * frameBytes).padStart(12)}`,
  );
  const dec = timeLoop(1, () => {
    const d = decodeMessage(payload);
    sink += d.type === 'app' ? d.entries.length : 0;
  });
  console.log(
    `  decode (decodeMessage)        ${fmt(dec).padStart(9)} msgs/s  ${mb(dec * payload.byteLength).padStart(12)}`,
  );

  // Reassembly + decode of a stream of such frames arriving in 64 KiB chunks.
  const stream = Buffer.concat(Array.from({ length: 64 }, () => encodeFrames([m]).chunks).flat());
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.byteLength; at += 64 * 1024) chunks.push(stream.subarray(at, at + 64 * 1024));
  const framed = timeLoop(1, () => {
    const fd = new FrameDecoder();
    for (const c of chunks) fd.push(c, (f) => (sink += decodeMessage(f).term));
  });
  console.log(
    `  frame + decode, 64 KiB chunks ${fmt(framed * 64).padStart(9)} msgs/s  ${mb(framed * stream.byteLength).padStart(12)}`,
  );

  // Large entries travel by reference: 4 × 64 KiB entries are not copied on encode.
  const big = appendEntries('n1', 'n2', 1, 4, 64 * 1024);
  const bigBytes = encodeFrames([big]).bytes;
  const bigEnc = timeLoop(0.5, () => {
    sink += encodeFrames([big]).chunks.length;
  });
  console.log(
    `  encode 4 × 64 KiB, by ref     ${fmt(bigEnc).padStart(9)} msgs/s  ${mb(bigEnc * bigBytes).padStart(12)} framed, payloads not copied`,
  );
  if (sink === 42) console.log('');
}

async function tcpBench(
  label: string,
  makeMsg: (seq: number) => Message,
  seconds: number,
  window: number,
): Promise<void> {
  let received = 0;
  let receivedBytes = 0;
  const opts = { secret: 'bench-secret', listen: '127.0.0.1:0', maxQueueBytes: 256 * 1024 * 1024 };
  const a = new TcpTransport({ id: 'n1', ...opts });
  const b = new TcpTransport({ id: 'n2', ...opts });
  await b.start((m) => {
    received++;
    if (m.type === 'app') for (const e of m.entries) receivedBytes += e.data.byteLength;
  });
  await a.start(() => {});
  a.addPeer('n2', formatAddress(b.address()));
  // Wait for the link.
  a.send([makeMsg(0)]);
  while (received === 0) await new Promise((r) => setTimeout(r, 1));

  const batch = 64;
  let sent = 1;
  const startReceived = received;
  const startBytes = receivedBytes;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  while (performance.now() < deadline) {
    if (sent - received < window) {
      const msgs: Message[] = [];
      for (let i = 0; i < batch; i++) msgs.push(makeMsg(sent++));
      a.send(msgs);
    }
    await new Promise((r) => setImmediate(r));
  }
  const secs = (performance.now() - t0) / 1000;
  const n = received - startReceived;
  console.log(
    `  ${label.padEnd(30)}${fmt(n / secs).padStart(9)} msgs/s  ${mb((receivedBytes - startBytes) / secs).padStart(12)} of entry payload`,
  );
  await a.close();
  await b.close();
}

async function main(): Promise<void> {
  console.log(`tsraft transport bench — node ${process.version}, ${process.platform}/${process.arch}\n`);
  codecBench();
  console.log('\nTCP loopback (two TcpTransports, batches of 64, bounded in-flight window)');
  await tcpBench('app, 1 × 64 B entry', (s) => appendEntries('n1', 'n2', s, 1, 64), 2, 4096);
  await tcpBench(
    'heartbeat',
    (s) => ({ type: 'heartbeat', from: 'n1', to: 'n2', term: 7, commit: s, context: new Uint8Array(0) }),
    2,
    4096,
  );
  // Entries are built once and shared, so that the figure measures the transport, not the generator.
  const template = appendEntries('n1', 'n2', 1, ENTRIES, ENTRY_BYTES);
  await tcpBench(
    `app, ${ENTRIES} × ${ENTRY_BYTES} B entries`,
    (s) => ({ ...template, prevIndex: s }),
    2,
    256,
  );
}

await main();
