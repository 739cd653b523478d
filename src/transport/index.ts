/** The transport layer: the contract, the binary codec and framing, TCP and in-memory transports. */
export type {
  IncomingSnapshot,
  MessageHandler,
  SnapshotPayload,
  SnapshotSink,
  Transport,
  TransportEvents,
} from './transport.js';
export { SNAP_ACK_TAG, SNAP_CHUNK_TAG } from './snapshot-frames.js';
export {
  CODEC_VERSION,
  DEFAULT_REF_THRESHOLD,
  decodeMessage,
  encodedSize,
  encodeFrames,
  encodeMessage,
  type EncodeFramesOptions,
} from './codec.js';
export { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, FrameDecoder, frame, frameBuffer } from './framing.js';
export { formatAddress, parseAddress, type HostPort } from './address.js';
export type { TransportLogger, TransportLogLevel } from './logger.js';
export {
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_BACKOFF_MIN_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_QUEUE_BYTES,
  TcpTransport,
  type LinkState,
  type LinkStats,
  type TcpTransportOptions,
} from './tcp-transport.js';
export {
  MemoryNetwork,
  MemoryTransport,
  type DropFilter,
  type MemoryNetworkOptions,
} from './memory-transport.js';
