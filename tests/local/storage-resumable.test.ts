import { createHash, randomBytes } from 'node:crypto';
import {
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Bucket } from '@google-cloud/storage';
import { Storage } from '@google-cloud/storage';

import { silentLogger } from '../../src/log.js';
import type { RunningHost } from '../../src/local/host.js';
import { openHost } from '../../src/local/host.js';
import type { StorageService } from '../../src/local/storage/service.js';
import { STORAGE_SERVICE, storageServiceFactory } from '../../src/local/storage/service.js';

/**
 * Resumable uploads larger than the server's in-memory body limit, in one request and in chunks,
 * checked by the client's own MD5 and CRC32C validation on the way back; then the protocol by
 * hand: 308 and Range, status queries, a resent overlap, a gap, and a restart in the middle.
 */

const PROJECT = 'storage-resumable-test';
const MiB = 1024 * 1024;

async function open(dir: string): Promise<{ host: RunningHost; storage: Storage }> {
  const host = await openHost({
    dataDir: dir,
    port: 0,
    pubsubHost: '127.0.0.1:9',
    projectId: PROJECT,
    log: silentLogger,
    factories: [storageServiceFactory],
  });
  return { host, storage: new Storage({ projectId: PROJECT, apiEndpoint: host.endpoint }) };
}

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('base64');

describe('resumable uploads', () => {
  let dir: string;
  let host: RunningHost;
  let storage: Storage;
  let bucket: Bucket;
  let source: string;
  let content: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-storage-resumable-'));
    ({ host, storage } = await open(join(dir, 'cloud')));
    [bucket] = await storage.createBucket('big-files');
    // Over the server's 10 MiB in-memory body limit, and not a multiple of the chunk size.
    content = randomBytes(11 * MiB + 12_345);
    source = join(dir, 'video.mp4');
    writeFileSync(source, content);
  });

  afterAll(async () => {
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes a large file in one streamed request; the client validates both hashes', async () => {
    const [file] = await bucket.upload(source, { destination: 'one/video.mp4', resumable: true });
    expect(file.metadata.md5Hash).toBe(md5(content));
    expect(Number(file.metadata.size)).toBe(content.length);

    const target = join(dir, 'one.mp4');
    await file.download({ destination: target, validation: 'md5' });
    expect(md5(readFileSync(target))).toBe(md5(content));
    const [crcChecked] = await file.download({ validation: 'crc32c' });
    expect(crcChecked.equals(content)).toBe(true);
  });

  it('takes a large file in 8 MiB chunks answered with 308 and Range', async () => {
    const [file] = await bucket.upload(source, {
      destination: 'chunks/video.mp4',
      resumable: true,
      chunkSize: 8 * MiB,
    });
    expect(file.metadata.md5Hash).toBe(md5(content));
    expect(Number(file.metadata.size)).toBe(content.length);
    const [data] = await file.download();
    expect(data.equals(content)).toBe(true);
  });

  it('lets the client catch bytes that changed on disk', async () => {
    const service = host.cloud.service<StorageService>(STORAGE_SERVICE);
    await bucket.file('corrupt.bin').save(randomBytes(4096), { resumable: false });
    const fd = openSync(service.objectPath('big-files', 'corrupt.bin'), 'r+');
    writeSync(fd, Buffer.from('flipped'), 0, 7, 100);
    closeSync(fd);
    await expect(bucket.file('corrupt.bin').download()).rejects.toMatchObject({
      code: 'CONTENT_DOWNLOAD_MISMATCH',
    });
  });

  it('speaks the protocol: 308, Range, status queries, overlaps, gaps and restarts', async () => {
    const start = await fetch(
      `${host.endpoint}/upload/storage/v1/b/big-files/o?uploadType=resumable&name=by-hand.bin`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-upload-content-type': 'video/mp4' },
        body: JSON.stringify({ metadata: { camera: 'north' } }),
      },
    );
    expect(start.status).toBe(200);
    const session = start.headers.get('location') as string;
    expect(session).toContain('upload_id=');

    const data = content.subarray(0, 3 * MiB);
    const put = (body: Buffer, range: string): Promise<Response> =>
      fetch(session, { method: 'PUT', headers: { 'content-range': range }, body });

    let response = await put(data.subarray(0, MiB), `bytes 0-${MiB - 1}/*`);
    expect(response.status).toBe(308);
    expect(response.headers.get('range')).toBe(`bytes=0-${MiB - 1}`);

    response = await put(Buffer.alloc(0), 'bytes */*');
    expect(response.status).toBe(308);
    expect(response.headers.get('range')).toBe(`bytes=0-${MiB - 1}`);

    // A chunk that starts past what the server holds is refused...
    response = await put(data.subarray(2 * MiB), `bytes ${2 * MiB}-${3 * MiB - 1}/*`);
    expect(response.status).toBe(400);
    // ...and one that overlaps is taken from where the server stands.
    response = await put(data.subarray(MiB / 2, 2 * MiB), `bytes ${MiB / 2}-${2 * MiB - 1}/*`);
    expect(response.status).toBe(308);
    expect(response.headers.get('range')).toBe(`bytes=0-${2 * MiB - 1}`);

    // The session survives a restart of the local cloud.
    await host.close();
    ({ host, storage } = await open(join(dir, 'cloud')));
    bucket = storage.bucket('big-files');
    const resumed = session.replace(/127\.0\.0\.1:\d+/, new URL(host.endpoint).host);
    response = await fetch(resumed, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    expect(response.status).toBe(308);
    expect(response.headers.get('range')).toBe(`bytes=0-${2 * MiB - 1}`);

    response = await fetch(resumed, {
      method: 'PUT',
      headers: { 'content-range': `bytes ${2 * MiB}-${3 * MiB - 1}/${3 * MiB}` },
      body: data.subarray(2 * MiB),
    });
    expect(response.status).toBe(200);
    const resource = (await response.json()) as Record<string, unknown>;
    expect(resource).toMatchObject({
      name: 'by-hand.bin',
      size: String(3 * MiB),
      md5Hash: md5(data),
      contentType: 'video/mp4',
      metadata: { camera: 'north' },
    });
    const [back] = await bucket.file('by-hand.bin').download();
    expect(back.equals(data)).toBe(true);

    // Asking again after the end answers with the object; a cancelled session is gone.
    response = await fetch(resumed, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    expect(response.status).toBe(200);
    const other = await fetch(
      `${host.endpoint}/upload/storage/v1/b/big-files/o?uploadType=resumable&name=cancelled.bin`,
      { method: 'POST', body: '{}' },
    );
    const cancelled = other.headers.get('location') as string;
    expect((await fetch(cancelled, { method: 'DELETE' })).status).toBe(499);
    response = await fetch(cancelled, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    expect(response.status).toBe(404);
  });

  it('keeps what arrived before a client hung up, and resumes from there', async () => {
    const start = await fetch(
      `${host.endpoint}/upload/storage/v1/b/big-files/o?uploadType=resumable&name=cut.bin`,
      { method: 'POST', body: '{}' },
    );
    const session = new URL(start.headers.get('location') as string);
    const data = content.subarray(0, 2 * MiB);

    // Send half the bytes of a single-request upload, then drop the connection.
    await new Promise<void>((resolve) => {
      const req = httpRequest(session, {
        method: 'PUT',
        headers: { 'content-range': `bytes 0-*/${data.length}` },
      });
      req.on('error', () => resolve());
      req.write(data.subarray(0, MiB), () => setTimeout(() => req.destroy(), 200));
    });

    // The status query waits for the broken request to finish, then tells what was kept.
    const status = await fetch(session, {
      method: 'PUT',
      headers: { 'content-range': 'bytes */*' },
    });
    expect(status.status).toBe(308);
    // Usually all of the first MiB arrived; on a very busy machine perhaps less, or none.
    const range = /^bytes=0-(\d+)$/.exec(status.headers.get('range') ?? '');
    const kept = range ? Number(range[1]) + 1 : 0;
    expect(kept).toBeLessThanOrEqual(MiB);

    const rest = await fetch(session, {
      method: 'PUT',
      headers: { 'content-range': `bytes ${kept}-${data.length - 1}/${data.length}` },
      body: data.subarray(kept),
    });
    expect(rest.status).toBe(200);
    expect(((await rest.json()) as { md5Hash: string }).md5Hash).toBe(md5(data));
  });

  it('refuses a final chunk whose checksum does not match', async () => {
    const start = await fetch(
      `${host.endpoint}/upload/storage/v1/b/big-files/o?uploadType=resumable&name=bad-hash.bin`,
      { method: 'POST', body: '{}' },
    );
    const session = start.headers.get('location') as string;
    const response = await fetch(session, {
      method: 'PUT',
      headers: { 'content-range': 'bytes 0-3/4', 'x-goog-hash': `md5=${md5(Buffer.from('nope'))}` },
      body: Buffer.from('data'),
    });
    expect(response.status).toBe(400);
    const [exists] = await bucket.file('bad-hash.bin').exists();
    expect(exists).toBe(false);
  });
});
