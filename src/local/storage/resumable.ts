import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from '../../log.js';
import { ApiError } from '../http.js';
import type { Checksums } from './checksums.js';
import { ChecksumAccumulator, checksumsOfFile } from './checksums.js';
import { badRequest } from './errors.js';
import { receiveToFile, SerialQueue, writeJsonAtomic } from './files.js';
import type { ObjectFields, Preconditions } from './store.js';

/**
 * Resumable upload sessions, as the official clients drive them: a POST opens a session and
 * answers with its URI; PUTs carry the bytes in one request or in chunks, each with a
 * `Content-Range`; a PUT with `bytes * /TOTAL` asks how much arrived. Until the last byte the
 * server answers 308 with a `Range` header naming what it holds.
 *
 * A session's settings live in `uploads/ID.json` and its bytes in `uploads/ID.part`, so an
 * upload can resume after the local cloud restarts. Sessions expire after a week, as on Google.
 */

export interface SessionSettings {
  bucket: string;
  name: string;
  fields: ObjectFields;
  preconditions: Preconditions;
  /** From `X-Upload-Content-Length`, when the client announced it. */
  declaredSize?: number;
}

interface SessionRecord extends SessionSettings {
  id: string;
  created: string;
}

interface Session {
  record: SessionRecord;
  received: number;
  /** Checksums of the bytes so far; missing after a restart, then computed from the file. */
  checksums: ChecksumAccumulator | undefined;
  queue: SerialQueue;
}

/** What a PUT's `Content-Range` says. */
export interface ChunkRange {
  /** First byte in the body, or undefined for a status query (`bytes * /N`). */
  start: number | undefined;
  /** Total object size, when the client knows it. */
  total: number | undefined;
  /** True for `bytes A-* /N` and bodies without a range: the body runs to the end. */
  open: boolean;
}

export type ChunkOutcome =
  | { done: false; received: number }
  | { done: true; file: string; checksums: Checksums; settings: SessionSettings };

const WEEK_MS = 7 * 24 * 3600 * 1000;
const MAX_FINISHED = 1_000;

export function parseContentRange(header: string | undefined): ChunkRange {
  if (!header) return { start: 0, total: undefined, open: true };
  const match = /^bytes\s+(?:\*|(\d+)-(\d+|\*))\/(\d+|\*)$/i.exec(header.trim());
  if (!match) throw badRequest(`Invalid Content-Range "${header}".`);
  const [, first, last, total] = match;
  return {
    start: first === undefined ? undefined : Number(first),
    total: total === '*' ? undefined : Number(total),
    open: last === '*',
  };
}

export class ResumableUploads {
  private readonly sessions = new Map<string, Session>();
  /** Objects of recently finished sessions, for a client that asks again after the last PUT. */
  private readonly finished = new Map<string, unknown>();

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const file of await readdir(this.dir)) {
      if (!file.endsWith('.json')) continue;
      const path = join(this.dir, file);
      try {
        const record = JSON.parse(await readFile(path, 'utf8')) as SessionRecord;
        if (Date.now() - Date.parse(record.created) > WEEK_MS) {
          await this.forget(record.id);
          continue;
        }
        const received = await stat(this.partPath(record.id)).then((s) => s.size);
        this.sessions.set(record.id, {
          record,
          received,
          checksums: received === 0 ? new ChecksumAccumulator() : undefined,
          queue: new SerialQueue(),
        });
      } catch (error) {
        this.log.debug('dropping unreadable upload session %s: %s', file, String(error));
        await rm(path, { force: true });
      }
    }
  }

  get count(): number {
    return this.sessions.size;
  }

  async create(settings: SessionSettings): Promise<string> {
    const id = randomBytes(16).toString('hex');
    const record: SessionRecord = { ...settings, id, created: new Date().toISOString() };
    await writeFile(this.partPath(id), '');
    await writeJsonAtomic(this.recordPath(id), record);
    this.sessions.set(id, {
      record,
      received: 0,
      checksums: new ChecksumAccumulator(),
      queue: new SerialQueue(),
    });
    return id;
  }

  /** The bytes received so far, or 404 for an unknown or finished session. */
  received(id: string): number {
    return this.session(id).received;
  }

  async cancel(id: string): Promise<void> {
    this.session(id);
    await this.forget(id);
  }

  /**
   * Takes one PUT. Bytes the session already holds are skipped (a client may resend them);
   * a body that starts past them is refused. When the last byte arrives the outcome carries
   * the finished file, which the caller commits and then passes to `finish`.
   */
  put(
    id: string,
    range: ChunkRange,
    body: AsyncIterable<Buffer>,
    clientHashes: { md5?: string; crc32c?: string },
  ): Promise<ChunkOutcome> {
    const session = this.session(id);
    return session.queue.run(async () => {
      if (!this.sessions.has(id)) throw noSuchSession();
      if (range.start !== undefined) {
        if (range.start > session.received) {
          throw badRequest(
            `The chunk starts at byte ${range.start} but the session holds only ` +
              `${session.received} bytes; resume from byte ${session.received}.`,
          );
        }
        try {
          session.received += await receiveToFile(body, this.partPath(id), {
            append: true,
            skip: session.received - range.start,
            ...(session.checksums ? { checksums: session.checksums } : {}),
          });
        } catch (error) {
          // Keep the whole pieces that were written; cut off a piece written only in part, so
          // the file and the byte count agree for the next request.
          session.received += (error as { bytesWritten?: number }).bytesWritten ?? 0;
          await truncate(this.partPath(id), session.received).catch(() => undefined);
          throw error;
        }
      }
      const total = range.total ?? session.record.declaredSize;
      if (total !== undefined && session.received > total) {
        throw badRequest(
          `The upload holds ${session.received} bytes, more than its declared size ${total}.`,
        );
      }
      // With a known total the object is complete when it is all there; with `bytes A-*/*` (or
      // no range) when this request's body ended.
      const complete =
        total !== undefined
          ? session.received === total && (range.start !== undefined || range.total !== undefined)
          : range.start !== undefined && range.open;
      if (!complete) return { done: false, received: session.received };
      const checksums = session.checksums
        ? session.checksums.digest()
        : await checksumsOfFile(this.partPath(id));
      verifyClientHashes(checksums, clientHashes);
      // No later PUT may append to a file that is about to become the object.
      this.sessions.delete(id);
      return {
        done: true,
        file: this.partPath(id),
        checksums,
        settings: session.record,
      };
    });
  }

  /** Forgets a session once its object is committed (with its resource) or refused. */
  async finish(id: string, resource?: unknown): Promise<void> {
    await this.forget(id);
    if (resource === undefined) return;
    this.finished.set(id, resource);
    if (this.finished.size > MAX_FINISHED) {
      const oldest = this.finished.keys().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
  }

  /** The object a finished session created, if it finished recently in this process. */
  finishedObject(id: string): unknown {
    return this.finished.get(id);
  }

  private session(id: string): Session {
    const session = this.sessions.get(id);
    if (!session) throw noSuchSession();
    return session;
  }

  private async forget(id: string): Promise<void> {
    this.sessions.delete(id);
    await rm(this.recordPath(id), { force: true });
    await rm(this.partPath(id), { force: true });
  }

  private recordPath(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  private partPath(id: string): string {
    return join(this.dir, `${id}.part`);
  }
}

function noSuchSession(): ApiError {
  return new ApiError(
    'NOT_FOUND',
    'No such upload session: it finished, was cancelled or expired. Start a new upload.',
  );
}

/** Refuses an upload whose bytes differ from the checksums the client sent along. */
export function verifyClientHashes(
  actual: Checksums,
  expected: { md5?: string; crc32c?: string },
): void {
  if (expected.md5 && expected.md5 !== actual.md5Hash) {
    throw badRequest(
      `Provided MD5 hash "${expected.md5}" doesn't match calculated MD5 hash "${actual.md5Hash}".`,
    );
  }
  if (expected.crc32c && expected.crc32c !== actual.crc32c) {
    throw badRequest(
      `Provided CRC32C "${expected.crc32c}" doesn't match calculated CRC32C "${actual.crc32c}".`,
    );
  }
}
