import fs from 'node:fs';
import path from 'node:path';
import { CorruptionError, RaftError } from '../errors.js';
import { crc32 } from './wal/crc32.js';
import { fsyncDir, writeFully, type StorageFs } from './fs.js';

/**
 * Replace `dir/name` atomically and durably: write `dir/name.tmp`, fsync it, rename it over
 * `dir/name`, fsync `dir`. A crash at any point leaves either the old or the new file whole
 * (a leftover `.tmp` is garbage; readers ignore it).
 */
export async function writeFileAtomic(
  sfs: StorageFs,
  dir: string,
  name: string,
  data: Uint8Array,
): Promise<void> {
  const final = path.join(dir, name);
  const tmp = `${final}.tmp`;
  const fd = await sfs.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC);
  try {
    await writeFully(sfs, fd, data, 0);
    await sfs.fsync(fd);
  } finally {
    await sfs.close(fd);
  }
  await sfs.rename(tmp, final);
  await fsyncDir(sfs, dir);
}

/**
 * A small self-checking file: a 24-byte header (8-byte magic, u32 format version, u32 body
 * length, u32 CRC-32 of the body, u32 reserved) followed by the body. Used for the meta file.
 */
export const CHECKED_HEADER_SIZE = 24;

/** Frame `body` with the checked-file header. */
export function encodeCheckedFile(magic: string, version: number, body: Uint8Array): Buffer {
  const buf = Buffer.alloc(CHECKED_HEADER_SIZE + body.byteLength);
  buf.write(magic.padEnd(8, '\0').slice(0, 8), 0, 'latin1');
  buf.writeUInt32LE(version, 8);
  buf.writeUInt32LE(body.byteLength, 12);
  buf.writeUInt32LE(crc32(body), 16);
  buf.set(body, CHECKED_HEADER_SIZE);
  return buf;
}

/**
 * Check and unframe a checked file. Throws {@link CorruptionError} (naming `file` and the byte
 * offset) on a wrong magic, a wrong length or a checksum mismatch, and `UNSUPPORTED_FORMAT` on
 * a version newer than `version`.
 */
export function decodeCheckedFile(file: string, buf: Buffer, magic: string, version: number): Buffer {
  if (buf.byteLength < CHECKED_HEADER_SIZE) {
    throw new CorruptionError(
      file,
      buf.byteLength,
      `file is ${buf.byteLength} bytes, shorter than its header`,
    );
  }
  if (buf.toString('latin1', 0, 8) !== magic.padEnd(8, '\0').slice(0, 8)) {
    throw new CorruptionError(file, 0, 'bad magic: not a tsraft file of this kind');
  }
  const v = buf.readUInt32LE(8);
  if (v !== version) {
    throw new RaftError(
      'UNSUPPORTED_FORMAT',
      `${file}: format version ${v}; this build reads version ${version}`,
    );
  }
  const len = buf.readUInt32LE(12);
  if (CHECKED_HEADER_SIZE + len !== buf.byteLength) {
    throw new CorruptionError(
      file,
      12,
      `header says ${len} body bytes but the file holds ${buf.byteLength - CHECKED_HEADER_SIZE}`,
    );
  }
  const body = buf.subarray(CHECKED_HEADER_SIZE);
  if (crc32(body) !== buf.readUInt32LE(16)) {
    throw new CorruptionError(file, CHECKED_HEADER_SIZE, 'checksum mismatch');
  }
  return body;
}
