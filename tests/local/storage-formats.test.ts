import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

import { describe, expect, it } from '@jest/globals';
import { CRC32C } from '@google-cloud/storage';

import {
  ChecksumAccumulator,
  crc32cBase64,
  crc32cPortable,
  crc32cUpdate,
  parseGoogHash,
} from '../../src/local/storage/checksums.js';
import { boundaryOf, readMultipart } from '../../src/local/storage/multipart.js';
import { parseContentRange } from '../../src/local/storage/resumable.js';

/**
 * The wire formats the local Cloud Storage parses and produces: CRC32C as Google computes it
 * (checked against the client library's own implementation), multipart/related bodies cut into
 * arbitrary pieces, and the Content-Range forms of resumable uploads.
 */

function* pieces(data: Buffer, sizes: number[]): Generator<Buffer> {
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const size = sizes[i++ % sizes.length] as number;
    yield data.subarray(at, at + size);
    at += size;
  }
}

/** Pieces as a stream; `objectMode` keeps each piece whole, as a socket would deliver it. */
const asAsync = (chunks: Iterable<Buffer>): AsyncIterable<Buffer> =>
  Readable.from(chunks, { objectMode: true });

async function readAll(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('CRC32C', () => {
  it('matches the check value and the client library on data fed in pieces', () => {
    expect(crc32cUpdate(0, Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32cPortable(0, Buffer.from('123456789'))).toBe(0xe3069283);
    for (const size of [0, 1, 7, 8, 9, 4096, 100_003]) {
      const data = randomBytes(size);
      const reference = new CRC32C();
      reference.update(data);
      const accumulator = new ChecksumAccumulator();
      for (const piece of pieces(data, [1, 13, 4096])) accumulator.update(piece);
      expect(accumulator.digest().crc32c).toBe(reference.toString());
      expect(crc32cBase64(crc32cPortable(0, data))).toBe(reference.toString());
    }
  });

  it('reads X-Goog-Hash headers', () => {
    expect(parseGoogHash('crc32c=n03x6A==,md5=Ojk9c3dhfxgoKVVHYwFbHQ==')).toEqual({
      crc32c: 'n03x6A==',
      md5: 'Ojk9c3dhfxgoKVVHYwFbHQ==',
    });
    expect(parseGoogHash(['crc32c=AAAAAA==', 'md5=x'])).toEqual({ crc32c: 'AAAAAA==', md5: 'x' });
    expect(parseGoogHash(undefined)).toEqual({});
  });
});

describe('multipart/related uploads', () => {
  const boundary = 'b0undary-1234';
  const data = Buffer.concat([randomBytes(50_000), Buffer.from(`\r\n--${boundary.slice(0, 5)}`)]);
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Type: application/json\r\n\r\n` +
        `{"name":"clips/a.mp4","contentType":"video/mp4","metadata":{"k":"v"}}\r\n` +
        `--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    data,
    Buffer.from(`\r\n--${boundary}--`),
  ]);

  it('finds the boundary in the Content-Type', () => {
    expect(boundaryOf(`multipart/related; boundary=${boundary}`)).toBe(boundary);
    expect(boundaryOf('multipart/related; boundary="quoted value"')).toBe('quoted value');
    expect(boundaryOf('application/json')).toBeUndefined();
  });

  it.each([[[1]], [[7, 3, 1000]], [[65_536]], [[body.length]]])(
    'reads metadata and data whatever the piece sizes (%j)',
    async (sizes) => {
      const upload = await readMultipart(asAsync(pieces(body, sizes)), boundary);
      expect(upload.metadata).toEqual({
        name: 'clips/a.mp4',
        contentType: 'video/mp4',
        metadata: { k: 'v' },
      });
      expect(upload.contentType).toBe('application/octet-stream');
      expect((await readAll(upload.data)).equals(data)).toBe(true);
    },
  );

  it('refuses a body cut short', async () => {
    const upload = await readMultipart(asAsync([body.subarray(0, body.length - 40)]), boundary);
    await expect(readAll(upload.data)).rejects.toThrow('ended before its closing boundary');
  });
});

describe('Content-Range of resumable uploads', () => {
  it('reads chunks, open ends and status queries', () => {
    expect(parseContentRange('bytes 0-99/*')).toEqual({ start: 0, total: undefined, open: false });
    expect(parseContentRange('bytes 100-199/200')).toEqual({ start: 100, total: 200, open: false });
    expect(parseContentRange('bytes 0-*/*')).toEqual({ start: 0, total: undefined, open: true });
    expect(parseContentRange('bytes */*')).toEqual({
      start: undefined,
      total: undefined,
      open: false,
    });
    expect(parseContentRange('bytes */300')).toEqual({ start: undefined, total: 300, open: false });
    expect(parseContentRange(undefined)).toEqual({ start: 0, total: undefined, open: true });
    expect(() => parseContentRange('items 1-2/3')).toThrow('Invalid Content-Range');
  });
});
