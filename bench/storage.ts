import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { UploadOptions } from '@google-cloud/storage';
import { Storage } from '@google-cloud/storage';

import { silentLogger } from '../src/log.js';
import { openHost } from '../src/local/host.js';
import { storageServiceFactory } from '../src/local/storage/service.js';

/**
 * Large objects through the local Cloud Storage with the official client: upload by each method,
 * then download with the client's hash validation on and off. Prints MiB/s and the peak resident
 * memory of this process, which holds both the client and the server: it stays flat whatever the
 * file size, since both sides stream. Plain HTTP requests at the end show the server's own rate.
 *
 *     node dist/bench/storage.js [MiB=256]
 */

const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 256) * MiB;

const dir = mkdtempSync(join(tmpdir(), 'cymbal-bench-storage-'));
const source = join(dir, 'source.bin');
const fd = openSync(source, 'w');
const block = randomBytes(8 * MiB);
for (let written = 0; written < size; written += block.length) {
  writeSync(fd, block, 0, Math.min(block.length, size - written));
}
closeSync(fd);

const host = await openHost({
  dataDir: join(dir, 'cloud'),
  port: 0,
  pubsubHost: '127.0.0.1:9',
  projectId: 'bench',
  log: silentLogger,
  factories: [storageServiceFactory],
});
const storage = new Storage({ projectId: 'bench', apiEndpoint: host.endpoint });
const [bucket] = await storage.createBucket('bench-bucket');

let peak = process.memoryUsage().rss;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const rate = (ms: number): string => `${((size / MiB / ms) * 1000).toFixed(0)} MiB/s`;

const uploads: Array<[string, UploadOptions]> = [
  ['resumable, one request', { resumable: true }],
  ['resumable, 16 MiB chunks', { resumable: true, chunkSize: 16 * MiB }],
  ['multipart', { resumable: false }],
];
console.log(`object of ${size / MiB} MiB`);
for (const [label, options] of uploads) {
  const started = Date.now();
  await bucket.upload(source, { destination: 'big.bin', ...options });
  console.log(`upload   ${label.padEnd(28)} ${rate(Date.now() - started)}`);
}
for (const validation of ['crc32c', false] as const) {
  const started = Date.now();
  await bucket.file('big.bin').download({ destination: join(dir, 'back.bin'), validation });
  const label = validation ? 'validating CRC32C' : 'without validation';
  console.log(`download ${label.padEnd(28)} ${rate(Date.now() - started)}`);
}
// The server alone, without the client's own costs: a plain streamed POST and GET.
{
  let started = Date.now();
  const url = new URL(
    `${host.endpoint}/upload/storage/v1/b/bench-bucket/o?uploadType=media&name=raw.bin`,
  );
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', headers: { 'content-type': 'video/mp4' } },
      (res) => {
        res.resume().on('end', resolve).on('error', reject);
      },
    );
    req.on('error', reject);
    createReadStream(source).pipe(req);
  });
  console.log(`upload   ${'plain HTTP, media'.padEnd(28)} ${rate(Date.now() - started)}`);
  started = Date.now();
  await new Promise<void>((resolve, reject) => {
    httpRequest(`${host.endpoint}/storage/v1/b/bench-bucket/o/raw.bin?alt=media`, (res) => {
      res.resume().on('end', resolve).on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  console.log(`download ${'plain HTTP'.padEnd(28)} ${rate(Date.now() - started)}`);
}
clearInterval(sampler);
console.log(`peak resident memory ${(peak / MiB).toFixed(0)} MiB (client and server together)`);

await host.close();
rmSync(dir, { recursive: true, force: true });
