import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

import type { ChecksumAccumulator } from './checksums.js';

/**
 * Small file helpers with crash safety in mind: a file is written under a temporary name,
 * flushed to disk, then renamed over its final name, so a reader (or a restart) sees either the
 * old content or the new one, never half of it.
 */

export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const temporary = `${path}.tmp-${uniqueSuffix()}`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(dirname(path));
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 1)}\n`);
}

export interface ReceiveOptions {
  /** Append instead of replacing the file. */
  append?: boolean;
  /** Leading bytes of the source to discard (a resent part of a resumable upload). */
  skip?: number;
  /** Fed every byte written. */
  checksums?: ChecksumAccumulator;
}

/**
 * Streams `source` into `path` and flushes it to disk. Resolves with the number of bytes
 * written; when the source fails midway (a client that hung up), the bytes written so far stay
 * in the file and the error carries `bytesWritten`.
 */
export async function receiveToFile(
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  path: string,
  options: ReceiveOptions = {},
): Promise<number> {
  const handle = await open(path, options.append ? 'a' : 'w');
  let skip = options.skip ?? 0;
  let written = 0;
  try {
    for await (const piece of source) {
      let chunk = piece;
      if (skip > 0) {
        const dropped = Math.min(skip, chunk.length);
        skip -= dropped;
        chunk = chunk.subarray(dropped);
        if (chunk.length === 0) continue;
      }
      for (let offset = 0; offset < chunk.length;) {
        offset += (await handle.write(chunk, offset)).bytesWritten;
      }
      options.checksums?.update(chunk);
      written += chunk.length;
    }
    await handle.sync();
    return written;
  } catch (error) {
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), {
      bytesWritten: written,
    });
  } finally {
    await handle.close();
  }
}

/** Makes a rename in `dir` durable; a no-op where directories cannot be opened for sync. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself has still happened.
  }
}

/** A queue that runs one task at a time, in order. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
