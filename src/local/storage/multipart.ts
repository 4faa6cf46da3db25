import { badRequest } from './errors.js';

/**
 * A streaming reader for the `multipart/related` bodies of `uploadType=multipart`: a JSON part
 * with the object's metadata, then a part with its bytes. The metadata is small and read whole;
 * the bytes are handed on as they arrive, so an upload of any size needs only a few chunks of
 * memory.
 */

const MAX_METADATA_BYTES = 1024 * 1024;
const MAX_HEADER_BYTES = 16 * 1024;

export interface MultipartUpload {
  metadata: Record<string, unknown>;
  /** The Content-Type of the data part, if it had one. */
  contentType: string | undefined;
  /** The object's bytes; must be read to the end. */
  data: AsyncIterable<Buffer>;
}

export function boundaryOf(contentType: string | undefined): string | undefined {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  return match?.[1] ?? match?.[2];
}

export async function readMultipart(
  body: AsyncIterable<Buffer>,
  boundary: string,
): Promise<MultipartUpload> {
  const reader = new ByteReader(body);
  // The body opens with the boundary itself; a CRLF in front lets one delimiter serve throughout.
  reader.unshift(Buffer.from('\r\n'));
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  await reader.readUntil(delimiter, MAX_HEADER_BYTES, 'the first boundary');
  await reader.skipLineEnd();
  await reader.readUntil(Buffer.from('\r\n\r\n'), MAX_HEADER_BYTES, 'the metadata headers');
  const json = await reader.readUntil(delimiter, MAX_METADATA_BYTES, 'the metadata part');
  let metadata: Record<string, unknown>;
  try {
    metadata =
      json.length > 0 ? (JSON.parse(json.toString('utf8')) as Record<string, unknown>) : {};
  } catch {
    throw badRequest('The metadata part of the multipart upload is not valid JSON.', 'parseError');
  }
  await reader.skipLineEnd();
  const headers = await reader.readUntil(
    Buffer.from('\r\n\r\n'),
    MAX_HEADER_BYTES,
    'the data headers',
  );
  const contentType = /^content-type:\s*(.+)$/im.exec(headers.toString('latin1'))?.[1]?.trim();
  return { metadata, contentType, data: reader.streamUntil(delimiter) };
}

class ByteReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly source: AsyncIterator<Buffer>;

  constructor(body: AsyncIterable<Buffer>) {
    this.source = body[Symbol.asyncIterator]();
  }

  unshift(bytes: Buffer): void {
    this.buffer = Buffer.concat([bytes, this.buffer]);
  }

  private async fill(): Promise<boolean> {
    const next = await this.source.next();
    if (next.done) return false;
    this.buffer = this.buffer.length === 0 ? next.value : Buffer.concat([this.buffer, next.value]);
    return true;
  }

  async readUntil(delimiter: Buffer, limit: number, what: string): Promise<Buffer> {
    for (;;) {
      const at = this.buffer.indexOf(delimiter);
      if (at >= 0) {
        const head = this.buffer.subarray(0, at);
        this.buffer = this.buffer.subarray(at + delimiter.length);
        return head;
      }
      if (this.buffer.length > limit + delimiter.length)
        throw badRequest(`The multipart upload's ${what} is larger than ${limit} bytes.`);
      if (!(await this.fill())) throw badRequest(`The multipart upload ended inside ${what}.`);
    }
  }

  /** Consumes the CRLF after a boundary. */
  async skipLineEnd(): Promise<void> {
    while (this.buffer.length < 2) {
      if (!(await this.fill())) throw badRequest('The multipart upload ended after a boundary.');
    }
    if (this.buffer.subarray(0, 2).toString('latin1') === '--')
      throw badRequest('The multipart upload needs a metadata part and a data part.');
    this.buffer = this.buffer.subarray(this.buffer[0] === 0x0d ? 2 : 1);
  }

  async *streamUntil(delimiter: Buffer): AsyncGenerator<Buffer> {
    for (;;) {
      const at = this.buffer.indexOf(delimiter);
      if (at >= 0) {
        if (at > 0) yield this.buffer.subarray(0, at);
        this.buffer = Buffer.alloc(0);
        // Drain the closing boundary and any epilogue so the request completes.
        while ((await this.source.next()).done !== true);
        return;
      }
      const keep = delimiter.length - 1;
      if (this.buffer.length > keep) {
        yield this.buffer.subarray(0, this.buffer.length - keep);
        this.buffer = this.buffer.subarray(this.buffer.length - keep);
      }
      if (!(await this.fill()))
        throw badRequest('The multipart upload ended before its closing boundary.');
    }
  }
}
