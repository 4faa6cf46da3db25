import type { Hash } from 'node:crypto';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * The two checksums Cloud Storage keeps for every object: MD5 and CRC32C (Castagnoli), both
 * base64 of the big-endian digest. The official clients check downloads and uploads against
 * them, so they must match Google's byte for byte.
 */

const CASTAGNOLI = 0x82f63b78;

/** Eight 256-entry tables for slicing-by-8: table k holds the CRC of a byte followed by k zeros. */
const TABLES: Uint32Array[] = buildTables();

function buildTables(): Uint32Array[] {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const first = tables[0] as Uint32Array;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI : c >>> 1;
    first[n] = c >>> 0;
  }
  for (let t = 1; t < 8; t++) {
    const previous = tables[t - 1] as Uint32Array;
    const table = tables[t] as Uint32Array;
    for (let n = 0; n < 256; n++) {
      const c = previous[n] as number;
      table[n] = ((c >>> 8) ^ (first[c & 0xff] as number)) >>> 0;
    }
  }
  return tables;
}

type Crc32c = (data: Uint8Array, previous: number) => number;

/**
 * The native CRC32C of `@node-rs/crc32` (SSE 4.2, several GB/s) when its binary loads on this
 * platform, else the table-driven one below (about 200 MB/s). Both give the same numbers.
 */
const nativeCrc32c: Crc32c | undefined = (() => {
  try {
    const native = createRequire(import.meta.url)('@node-rs/crc32') as {
      crc32c: (input: Uint8Array, initialState?: number) => number;
    };
    return (data, previous) => native.crc32c(data, previous);
  } catch {
    return undefined;
  }
})();

/** Continues a CRC32C over `data`; start with 0. */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  return nativeCrc32c ? nativeCrc32c(data, crc) >>> 0 : crc32cPortable(crc, data);
}

/** The table-driven CRC32C (slicing by eight), used where the native one is missing. */
export function crc32cPortable(crc: number, data: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = ~crc >>> 0;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  while (i < end8) {
    const lo =
      (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
    i += 8;
  }
  while (i < data.length) c = t0[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The CRC32C as Cloud Storage writes it: base64 of the four big-endian bytes. */
export function crc32cBase64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
}

export interface Checksums {
  md5Hash: string;
  crc32c: string;
  size: number;
}

/** Computes both checksums over data that arrives in pieces. */
export class ChecksumAccumulator {
  private readonly md5: Hash = createHash('md5');
  private crc = 0;
  private bytes = 0;

  update(chunk: Uint8Array): void {
    this.md5.update(chunk);
    this.crc = crc32cUpdate(this.crc, chunk);
    this.bytes += chunk.length;
  }

  get size(): number {
    return this.bytes;
  }

  digest(): Checksums {
    return {
      md5Hash: this.md5.digest('base64'),
      crc32c: crc32cBase64(this.crc),
      size: this.bytes,
    };
  }
}

export async function checksumsOfFile(path: string): Promise<Checksums> {
  const accumulator = new ChecksumAccumulator();
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    accumulator.update(chunk);
  }
  return accumulator.digest();
}

/** Parses an `X-Goog-Hash` header (`crc32c=...,md5=...`). */
export function parseGoogHash(header: string | string[] | undefined): {
  md5?: string;
  crc32c?: string;
} {
  const result: { md5?: string; crc32c?: string } = {};
  const values = Array.isArray(header) ? header : header ? [header] : [];
  for (const part of values.flatMap((value) => value.split(','))) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const key = part.slice(0, at).trim().toLowerCase();
    const value = part.slice(at + 1).trim();
    if (key === 'md5') result.md5 = value;
    if (key === 'crc32c') result.crc32c = value;
  }
  return result;
}
