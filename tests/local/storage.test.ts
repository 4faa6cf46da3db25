import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
 * The local Cloud Storage driven by the official client: buckets, each upload type, downloads
 * (whole and ranged), listings, generations and preconditions, metadata, persistence across a
 * restart, and the in-process API other services use. No Pub/Sub here: see
 * storage-notifications.test.ts.
 */

const PROJECT = 'storage-test';

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

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('base64');

describe('local Cloud Storage', () => {
  let dir: string;
  let host: RunningHost;
  let storage: Storage;
  let bucket: Bucket;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-storage-'));
    ({ host, storage } = await open(dir));
    [bucket] = await storage.createBucket('lab-videos', { location: 'us-central1' });
  });

  afterAll(async () => {
    await host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates, lists, gets, labels and deletes buckets as Google does', async () => {
    const [meta] = await bucket.getMetadata();
    expect(meta).toMatchObject({
      name: 'lab-videos',
      location: 'US-CENTRAL1',
      metageneration: '1',
    });

    await expect(storage.createBucket('lab-videos')).rejects.toMatchObject({ code: 409 });
    await expect(storage.createBucket('Bad_Name!')).rejects.toMatchObject({ code: 400 });

    const [other] = await storage.createBucket('lab-other');
    const [buckets] = await storage.getBuckets();
    expect(buckets.map((b) => b.name)).toEqual(['lab-other', 'lab-videos']);

    await other.setLabels({ team: 'data' });
    const [labels] = await other.getLabels();
    expect(labels).toEqual({ team: 'data' });

    await other.file('x.txt').save('x');
    await expect(other.delete()).rejects.toMatchObject({ code: 409 });
    await other.file('x.txt').delete();
    await other.delete();
    const [exists] = await other.exists();
    expect(exists).toBe(false);
    await expect(storage.bucket('lab-other').getMetadata()).rejects.toMatchObject({ code: 404 });
  });

  it('uploads with media, multipart and resumable uploads and downloads the same bytes', async () => {
    const text = 'Cymbal Direct events\n'.repeat(100);
    const cases = [
      { name: 'simple/multipart.txt', options: { resumable: false } },
      { name: 'simple/resumable.txt', options: { resumable: true } },
    ];
    for (const { name, options } of cases) {
      await bucket.file(name).save(text, { ...options, contentType: 'text/plain' });
      const [data] = await bucket.file(name).download();
      expect(data.toString()).toBe(text);
      const [meta] = await bucket.file(name).getMetadata();
      expect(meta).toMatchObject({ name, contentType: 'text/plain', size: String(text.length) });
      expect(meta.md5Hash).toBe(md5(text));
    }

    // uploadType=media: the bytes are the body and the name is in the query.
    const url =
      `${host.endpoint}/upload/storage/v1/b/lab-videos/o?uploadType=media` +
      `&name=${encodeURIComponent('simple/media.json')}`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(response.status).toBe(200);
    const resource = (await response.json()) as Record<string, string>;
    expect(resource).toMatchObject({
      name: 'simple/media.json',
      size: '7',
      contentType: 'application/json',
    });
    expect(resource.md5Hash).toBe(md5('{"a":1}'));
    expect(resource.mediaLink).toContain(host.endpoint);
    const [media] = await bucket.file('simple/media.json').download();
    expect(media.toString()).toBe('{"a":1}');
  });

  it('computes the CRC32C Google does and the client validates downloads with it', async () => {
    // The CRC32C of "123456789" is 0xE3069283; Google writes it as base64 of the big-endian bytes.
    await bucket.file('check.txt').save('123456789', { resumable: false });
    const [meta] = await bucket.file('check.txt').getMetadata();
    expect(meta.crc32c).toBe(Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'));
    const [data] = await bucket.file('check.txt').download({ validation: 'md5' });
    expect(data.toString()).toBe('123456789');
    const [again] = await bucket.file('check.txt').download({ validation: 'crc32c' });
    expect(again.toString()).toBe('123456789');
  });

  it('serves byte ranges', async () => {
    await bucket.file('range.txt').save('0123456789', { resumable: false });
    const [middle] = await bucket.file('range.txt').download({ start: 2, end: 5 });
    expect(middle.toString()).toBe('2345');
    const [tail] = await bucket.file('range.txt').download({ start: 7 });
    expect(tail.toString()).toBe('789');
    const response = await fetch(`${host.endpoint}/storage/v1/b/lab-videos/o/range.txt?alt=media`, {
      headers: { range: 'bytes=-3' },
    });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe('bytes 7-9/10');
    expect(await response.text()).toBe('789');
    const beyond = await fetch(`${host.endpoint}/storage/v1/b/lab-videos/o/range.txt?alt=media`, {
      headers: { range: 'bytes=20-' },
    });
    expect(beyond.status).toBe(416);
  });

  it('lists with prefix, delimiter and pages', async () => {
    const names = [
      'list/a.mp4',
      'list/b.mp4',
      'list/clips/c~0.mp4',
      'list/clips/c~1.mp4',
      'list/z/y.txt',
    ];
    for (const name of names) await bucket.file(name).save(name, { resumable: false });

    const [all] = await bucket.getFiles({ prefix: 'list/' });
    expect(all.map((f) => f.name)).toEqual(names);

    const [top, , response] = await bucket.getFiles({
      prefix: 'list/',
      delimiter: '/',
      autoPaginate: false,
    });
    expect(top.map((f) => f.name)).toEqual(['list/a.mp4', 'list/b.mp4']);
    expect((response as { prefixes?: string[] }).prefixes).toEqual(['list/clips/', 'list/z/']);

    // Pages of two: items and prefixes both count, and no prefix is repeated across pages.
    const seen: string[] = [];
    let query: Record<string, unknown> | null = {
      prefix: 'list/',
      delimiter: '/',
      maxResults: 2,
      autoPaginate: false,
    };
    let pages = 0;
    while (query) {
      const [files, next, raw]: [
        { name: string }[],
        Record<string, unknown> | null,
        { prefixes?: string[] },
      ] = (await bucket.getFiles(query)) as never;
      seen.push(...files.map((f) => f.name), ...(raw.prefixes ?? []));
      query = next;
      pages += 1;
    }
    expect(pages).toBe(2);
    expect(seen.sort()).toEqual(['list/a.mp4', 'list/b.mp4', 'list/clips/', 'list/z/']);

    const [clips] = await bucket.getFiles({ prefix: 'list/clips/', maxResults: 1 });
    expect(clips.map((f) => f.name)).toEqual(['list/clips/c~0.mp4']);
    const [late] = await bucket.getFiles({ prefix: 'list/', startOffset: 'list/clips/c~1' });
    expect(late.map((f) => f.name)).toEqual(['list/clips/c~1.mp4', 'list/z/y.txt']);
  });

  it('gives every finalize a new generation and honours preconditions', async () => {
    const file = bucket.file('gen.txt');
    await file.save('one', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    const [first] = await file.getMetadata();
    await expect(
      file.save('again', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
    ).rejects.toMatchObject({ code: 412 });

    await file.save('two', {
      resumable: true,
      preconditionOpts: { ifGenerationMatch: Number(first.generation) },
    });
    const [second] = await file.getMetadata();
    expect(BigInt(second.generation as string)).toBeGreaterThan(BigInt(first.generation as string));
    expect(second.metageneration).toBe('1');

    // A stale generation is refused when the resumable session opens, before any byte is sent.
    const stale = await file
      .save('three', {
        resumable: true,
        preconditionOpts: { ifGenerationMatch: Number(first.generation) },
      })
      .catch((e: unknown) => e as { status?: number; code?: number });
    expect(stale).toBeInstanceOf(Error);
    expect((stale as { status?: number }).status ?? (stale as { code?: number }).code).toBe(412);
    const [content] = await file.download();
    expect(content.toString()).toBe('two');

    // Reading an old generation is a 404, as in a bucket without versioning.
    await expect(
      bucket.file('gen.txt', { generation: Number(first.generation) }).download(),
    ).rejects.toMatchObject({ code: 404 });
    await expect(
      file.delete({ ifGenerationMatch: Number(first.generation) }),
    ).rejects.toMatchObject({ code: 412 });
  });

  it('keeps noncurrent generations in a bucket with versioning', async () => {
    const [versioned] = await storage.createBucket('lab-versioned', {
      versioning: { enabled: true },
    });
    const [bucketMeta] = await versioned.getMetadata();
    expect(bucketMeta.versioning).toEqual({ enabled: true });
    const file = versioned.file('v.txt');
    await file.save('one', { resumable: false });
    const [one] = await file.getMetadata();
    await file.save('two', { resumable: false });

    const old = versioned.file('v.txt', { generation: Number(one.generation) });
    const [oldContent] = await old.download();
    expect(oldContent.toString()).toBe('one');
    const [oldMeta] = await old.getMetadata();
    expect(oldMeta.timeDeleted).toBeDefined();

    await file.delete();
    expect((await file.exists())[0]).toBe(false);
    const [versions] = await versioned.getFiles({ versions: true });
    expect(versions.map((f) => f.name)).toEqual(['v.txt', 'v.txt']);
    const [current] = await versioned.getFiles();
    expect(current).toHaveLength(0);
    await expect(versioned.delete()).rejects.toMatchObject({ code: 409 });
    await versioned.deleteFiles({ versions: true });
    await versioned.delete();
  });

  it('patches metadata and bumps the metageneration', async () => {
    const file = bucket.file('meta.txt');
    await file.save('m', { resumable: false, metadata: { metadata: { a: '1', b: '2' } } });
    await file.setMetadata({ contentType: 'text/csv', metadata: { b: null, c: '3' } });
    const [meta] = await file.getMetadata();
    expect(meta).toMatchObject({ contentType: 'text/csv', metageneration: '2' });
    expect(meta.metadata).toEqual({ a: '1', c: '3' });
    await expect(
      file.setMetadata({ metadata: { d: '4' } }, { ifMetagenerationMatch: 1 }),
    ).rejects.toMatchObject({ code: 412 });
  });

  it("copies, deletes and reports missing objects in Google's words", async () => {
    await bucket
      .file('copy/source.txt')
      .save('copy me', { resumable: false, contentType: 'text/plain' });
    await bucket.file('copy/source.txt').copy(bucket.file('copy/target.txt'));
    const [copied] = await bucket.file('copy/target.txt').download();
    expect(copied.toString()).toBe('copy me');

    await bucket.file('copy/source.txt').delete();
    const error = (await bucket
      .file('copy/source.txt')
      .getMetadata()
      .catch((e: unknown) => e)) as { code: number; message: string };
    expect(error.code).toBe(404);
    expect(error.message).toBe('No such object: lab-videos/copy/source.txt');
  });

  it('answers clients pointed here by STORAGE_EMULATOR_HOST, which drop /storage/v1', async () => {
    process.env.STORAGE_EMULATOR_HOST = host.endpoint;
    let viaEnv: Storage;
    try {
      viaEnv = new Storage({ projectId: PROJECT });
    } finally {
      delete process.env.STORAGE_EMULATOR_HOST;
    }
    const odd = 'odd names/ä b+c%d#e?.txt';
    const target = viaEnv.bucket('lab-videos');
    await target.file(odd).save('odd', { resumable: true });
    await target.file(`${odd}.gz`).save('squeeze me '.repeat(50), { gzip: true, resumable: false });
    const [files] = await target.getFiles({ prefix: 'odd names/' });
    expect(files.map((f) => f.name)).toEqual([odd, `${odd}.gz`]);
    const [content] = await bucket.file(odd).download();
    expect(content.toString()).toBe('odd');
    const [meta] = await bucket.file(`${odd}.gz`).getMetadata();
    expect(meta.contentEncoding).toBe('gzip');
    const [unzipped] = await target.file(`${odd}.gz`).download();
    expect(unzipped.toString()).toBe('squeeze me '.repeat(50));
  });

  it('offers an in-process API to the other local services', async () => {
    const service = host.cloud.service<StorageService>(STORAGE_SERVICE);
    const written = await service.writeObject(
      'lab-videos',
      'inproc/source.tgz',
      Buffer.from('tar'),
      {
        contentType: 'application/gzip',
      },
    );
    expect(written).toMatchObject({
      name: 'inproc/source.tgz',
      size: '3',
      contentType: 'application/gzip',
    });
    expect(service.statObject('lab-videos', 'inproc/source.tgz').md5Hash).toBe(md5('tar'));
    expect((await service.readObject('lab-videos', 'inproc/source.tgz')).toString()).toBe('tar');
    expect(readFileSync(service.objectPath('lab-videos', 'inproc/source.tgz'), 'utf8')).toBe('tar');
    const [viaClient] = await bucket.file('inproc/source.tgz').download();
    expect(viaClient.toString()).toBe('tar');
    expect(() => service.statObject('lab-videos', 'inproc/missing')).toThrow(
      'No such object: lab-videos/inproc/missing',
    );

    const status = await service.status();
    expect(status.resources).toContainEqual(
      expect.objectContaining({ kind: 'bucket', name: 'lab-videos' }),
    );
  });

  it('keeps buckets, objects and metadata across a restart', async () => {
    const [before] = await bucket.file('meta.txt').getMetadata();
    await host.close();
    ({ host, storage } = await open(dir));
    bucket = storage.bucket('lab-videos');
    const [after] = await bucket.file('meta.txt').getMetadata();
    expect(after).toMatchObject({
      generation: before.generation,
      metageneration: before.metageneration,
      md5Hash: before.md5Hash,
      metadata: { a: '1', c: '3' },
    });
    const [content] = await bucket.file('simple/resumable.txt').download();
    expect(content.toString()).toContain('Cymbal Direct events');
    // Generations keep rising after a restart.
    await bucket.file('meta.txt').save('new', { resumable: false });
    const [replaced] = await bucket.file('meta.txt').getMetadata();
    expect(BigInt(replaced.generation as string)).toBeGreaterThan(
      BigInt(before.generation as string),
    );
  });
});
