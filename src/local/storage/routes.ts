import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import type { LocalRequest, Reply, Route } from '../http.js';
import { invalidArgument } from '../http.js';
import type { Checksums } from './checksums.js';
import { ChecksumAccumulator, parseGoogHash } from './checksums.js';
import { badRequest, rangeNotSatisfiable } from './errors.js';
import { receiveToFile } from './files.js';
import { boundaryOf, readMultipart } from './multipart.js';
import { notificationResource } from './resources.js';
import type { ObjectResource } from './resources.js';
import { parseContentRange, verifyClientHashes } from './resumable.js';
import type { StorageService } from './service.js';
import type { ObjectFields } from './store.js';
import { checkWritePreconditions, objectFieldsFrom, preconditionsFrom } from './store.js';

/**
 * The Cloud Storage JSON API routes. Paths are accepted with and without the `/storage/v1`
 * prefix: the client adds it when given `apiEndpoint`, but not when it is pointed here through
 * `STORAGE_EMULATOR_HOST`. Uploads stream to disk (`stream: true`), so their size is bounded by
 * the disk, not by memory.
 */

const API = '^(?:/storage/v1)?';
const BUCKET = '(?<bucket>[^/]+)';
const OBJECT = '(?<object>.+)';

/** Content types the client library parses as JSON; it reads any other spelling as text. */
const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

const MAX_RESUMABLE_START_BYTES = 1024 * 1024;

export function storageRoutes(storage: StorageService): Route[] {
  const ok = (json: unknown, status = 200): Reply => ({ status, json, headers: JSON_HEADERS });
  const route = (
    method: Route['method'],
    path: string,
    handler: (r: LocalRequest) => Reply | Promise<Reply>,
    extra: Partial<Route> = {},
  ): Route => ({
    method,
    path: new RegExp(`${path}$`),
    handler: (r) => Promise.resolve().then(() => handler(r)),
    ...extra,
  });
  const p = (r: LocalRequest, key: string): string => r.params[key] ?? '';

  return [
    // ---- buckets
    route('GET', `${API}/b`, (r) => {
      const prefix = r.query.get('prefix') ?? '';
      const items = storage.store
        .listBuckets()
        .filter((b) => b.name.startsWith(prefix))
        .map((b) => storage.renderBucket(b));
      return ok({ kind: 'storage#buckets', ...(items.length > 0 ? { items } : {}) });
    }),
    route('POST', `${API}/b`, async (r) => {
      const body = r.json<Record<string, unknown>>();
      const name = typeof body.name === 'string' ? body.name : '';
      const bucket = await storage.store.createBucket(name, {
        ...(typeof body.location === 'string' ? { location: body.location } : {}),
        ...(typeof body.storageClass === 'string' ? { storageClass: body.storageClass } : {}),
        ...(isStringMap(body.labels) ? { labels: body.labels } : {}),
        ...(versioningOf(body) ? { versioning: versioningOf(body) } : {}),
      });
      return ok(storage.renderBucket(bucket));
    }),
    route('GET', `${API}/b/${BUCKET}`, (r) =>
      ok(storage.renderBucket(storage.store.bucket(p(r, 'bucket')))),
    ),
    route('PATCH', `${API}/b/${BUCKET}`, async (r) => patchBucket(storage, r, ok)),
    route('PUT', `${API}/b/${BUCKET}`, async (r) => patchBucket(storage, r, ok)),
    route('DELETE', `${API}/b/${BUCKET}`, async (r) => {
      await storage.store.deleteBucket(p(r, 'bucket'));
      return { status: 204 };
    }),

    // ---- notification configs
    route('GET', `${API}/b/${BUCKET}/notificationConfigs`, (r) => {
      const bucket = storage.store.bucket(p(r, 'bucket'));
      const items = bucket.notifications.map((n) =>
        notificationResource(storage.cloud.endpoint, bucket.name, n),
      );
      return ok({ kind: 'storage#notifications', ...(items.length > 0 ? { items } : {}) });
    }),
    route('POST', `${API}/b/${BUCKET}/notificationConfigs`, async (r) => {
      const added = await storage.addNotification(p(r, 'bucket'), r.json());
      return ok(notificationResource(storage.cloud.endpoint, p(r, 'bucket'), added));
    }),
    route('GET', `${API}/b/${BUCKET}/notificationConfigs/(?<id>[^/]+)`, (r) =>
      ok(
        notificationResource(
          storage.cloud.endpoint,
          p(r, 'bucket'),
          storage.notification(p(r, 'bucket'), p(r, 'id')),
        ),
      ),
    ),
    route('DELETE', `${API}/b/${BUCKET}/notificationConfigs/(?<id>[^/]+)`, async (r) => {
      await storage.removeNotification(p(r, 'bucket'), p(r, 'id'));
      return { status: 204 };
    }),

    // ---- objects: copies first, since their paths also match the object pattern
    route(
      'POST',
      `${API}/b/(?<sb>[^/]+)/o/(?<so>.+)/(?<verb>rewriteTo|copyTo)/b/(?<db>[^/]+)/o/(?<do>.+)`,
      async (r) => {
        const body = r.json<Record<string, unknown>>();
        const fields = Object.keys(body).length > 0 ? objectFieldsFrom(body) : undefined;
        const sourceGeneration = numberParam(r, 'sourceGeneration');
        const resource = await storage.copyObject(
          {
            bucket: p(r, 'sb'),
            name: p(r, 'so'),
            ...(sourceGeneration !== undefined ? { generation: sourceGeneration } : {}),
          },
          { bucket: p(r, 'db'), name: p(r, 'do') },
          fields,
          preconditionsFrom(r.query),
        );
        if (p(r, 'verb') === 'copyTo') return ok(resource);
        return ok({
          kind: 'storage#rewriteResponse',
          totalBytesRewritten: resource.size,
          objectSize: resource.size,
          done: true,
          resource,
        });
      },
    ),
    route('GET', `${API}/b/${BUCKET}/o`, (r) => {
      const maxResults = numberParam(r, 'maxResults');
      const options = {
        ...optional('prefix', r.query.get('prefix')),
        ...optional('delimiter', r.query.get('delimiter')),
        ...optional('pageToken', r.query.get('pageToken')),
        ...optional('startOffset', r.query.get('startOffset')),
        ...optional('endOffset', r.query.get('endOffset')),
        ...(maxResults !== undefined ? { maxResults } : {}),
        ...(r.query.get('versions') === 'true' ? { versions: true } : {}),
      };
      const { items, prefixes, nextPageToken } = storage.listObjects(p(r, 'bucket'), options);
      return ok({
        kind: 'storage#objects',
        ...(nextPageToken ? { nextPageToken } : {}),
        ...(prefixes.length > 0 ? { prefixes } : {}),
        ...(items.length > 0 ? { items } : {}),
      });
    }),
    route('GET', `${API}/b/${BUCKET}/o/${OBJECT}`, async (r) => {
      if (r.query.get('alt') === 'media') return download(storage, r);
      const object = storage.store.object(p(r, 'bucket'), p(r, 'object'), readOptions(r));
      return ok(storage.render(object));
    }),
    route('GET', `^/download/storage/v1/b/${BUCKET}/o/${OBJECT}`, async (r) =>
      download(storage, r),
    ),
    route('PATCH', `${API}/b/${BUCKET}/o/${OBJECT}`, async (r) =>
      ok(
        await storage.patchObject(
          p(r, 'bucket'),
          p(r, 'object'),
          objectFieldsFrom(r.json()),
          readOptions(r),
        ),
      ),
    ),
    route('PUT', `${API}/b/${BUCKET}/o/${OBJECT}`, async (r) =>
      ok(
        await storage.patchObject(p(r, 'bucket'), p(r, 'object'), objectFieldsFrom(r.json()), {
          ...readOptions(r),
          replaceMetadata: true,
        }),
      ),
    ),
    route('DELETE', `${API}/b/${BUCKET}/o/${OBJECT}`, async (r) => {
      await storage.deleteObject(p(r, 'bucket'), p(r, 'object'), readOptions(r));
      return { status: 204 };
    }),

    // ---- uploads
    route('POST', `^/upload/storage/v1/b/${BUCKET}/o`, async (r) => startUpload(storage, r), {
      stream: true,
    }),
    route('PUT', `^/upload/storage/v1/b/${BUCKET}/o`, async (r) => putChunk(storage, r), {
      stream: true,
    }),
    route('DELETE', `^/upload/storage/v1/b/${BUCKET}/o`, async (r) => {
      await storage.uploads.cancel(uploadId(r));
      return { status: 499 };
    }),
  ];
}

async function patchBucket(
  storage: StorageService,
  r: LocalRequest,
  ok: (json: unknown) => Reply,
): Promise<Reply> {
  const body = r.json<Record<string, unknown>>();
  const labels = body.labels;
  if (labels !== undefined && labels !== null && typeof labels !== 'object')
    throw invalidArgument('labels must be an object of strings.');
  const bucket = await storage.store.updateBucket(r.params.bucket ?? '', (b) => {
    if (labels === null) b.labels = {};
    else if (labels) {
      if (r.method === 'PUT') b.labels = {};
      for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
        if (v === null) delete b.labels[k];
        else b.labels[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
    }
    if (typeof body.storageClass === 'string') b.storageClass = body.storageClass;
    const versioning = versioningOf(body);
    if (versioning) b.versioning = versioning;
  });
  return ok(storage.renderBucket(bucket));
}

// ---- downloads ----------------------------------------------------------------------------

async function download(storage: StorageService, r: LocalRequest): Promise<Reply> {
  const bucket = r.params.bucket ?? '';
  const name = r.params.object ?? '';
  const options = readOptions(r);
  const stat = storage.store.object(bucket, name, options);
  const range = parseRange(r.headers.range, stat.size);
  const { resource, stream } = await storage.openObject(bucket, name, range ?? {}, options);
  const headers: Record<string, string> = {
    'content-type': resource.contentType,
    'accept-ranges': 'bytes',
    etag: String(resource.etag),
    'last-modified': new Date(String(resource.updated)).toUTCString(),
    'x-goog-generation': resource.generation,
    'x-goog-metageneration': resource.metageneration,
    'x-goog-hash': `crc32c=${resource.crc32c},md5=${resource.md5Hash}`,
    'x-goog-stored-content-length': resource.size,
    'x-goog-stored-content-encoding': stringField(resource, 'contentEncoding') ?? 'identity',
  };
  const encoding = stringField(resource, 'contentEncoding');
  if (encoding) headers['content-encoding'] = encoding;
  for (const [field, header] of [
    ['contentDisposition', 'content-disposition'],
    ['contentLanguage', 'content-language'],
    ['cacheControl', 'cache-control'],
  ] as const) {
    const value = stringField(resource, field);
    if (value) headers[header] = value;
  }
  if (!range) {
    headers['content-length'] = resource.size;
    return { status: 200, headers, body: stream };
  }
  headers['content-length'] = String(range.end - range.start + 1);
  headers['content-range'] = `bytes ${range.start}-${range.end}/${stat.size}`;
  return { status: 206, headers, body: stream };
}

/** One `bytes=` range, resolved against the size; undefined means the whole object. */
function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) throw rangeNotSatisfiable(size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || end < start) throw rangeNotSatisfiable(size);
  return { start, end };
}

// ---- uploads ------------------------------------------------------------------------------

async function startUpload(storage: StorageService, r: LocalRequest): Promise<Reply> {
  const bucket = r.params.bucket ?? '';
  storage.store.bucket(bucket);
  const body = r.stream as Readable;
  const uploadType =
    r.query.get('uploadType') ?? (boundaryOf(header(r, 'content-type')) ? 'multipart' : 'media');
  const preconditions = preconditionsFrom(r.query);
  const queryFields: ObjectFields = {
    ...optional('contentEncoding', r.query.get('contentEncoding')),
  };

  if (uploadType === 'resumable') {
    const json = await readSmallBody(body);
    const metadata = parseObjectMetadata(json);
    const name = objectName(metadata.name ?? r.query.get('name'));
    const fields = objectFieldsFrom(metadata);
    const announcedType = header(r, 'x-upload-content-type');
    if (announcedType) fields.contentType ??= announcedType;
    const declared = Number(header(r, 'x-upload-content-length') ?? Number.NaN);
    // Refuse early what would fail at the end, as Google does for a failed precondition.
    checkWritePreconditions(preconditions, storage.store.findObject(bucket, name));
    const id = await storage.uploads.create({
      bucket,
      name,
      fields: { ...queryFields, ...fields },
      preconditions,
      ...(Number.isFinite(declared) ? { declaredSize: declared } : {}),
    });
    const base = r.headers.host ? `http://${r.headers.host}` : storage.cloud.endpoint;
    const location =
      `${base}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable` +
      `&name=${encodeURIComponent(name)}&upload_id=${id}`;
    return { status: 200, headers: { location, 'x-guploader-uploadid': id }, body: '' };
  }

  const file = storage.store.temporaryPath();
  try {
    const received = await receiveUpload(uploadType, r, body, file);
    const fields = { ...queryFields, ...received.fields };
    verifyClientHashes(received.checksums, received.expected);
    return okObject(
      await storage.commitFile(
        bucket,
        received.name,
        file,
        received.checksums,
        fields,
        preconditions,
      ),
    );
  } finally {
    await rm(file, { force: true });
  }
}

/** Streams a media or multipart upload into `file`. */
async function receiveUpload(
  uploadType: string,
  r: LocalRequest,
  body: Readable,
  file: string,
): Promise<{
  name: string;
  fields: ObjectFields;
  checksums: Checksums;
  expected: { md5?: string; crc32c?: string };
}> {
  const accumulator = new ChecksumAccumulator();
  const fromHeader = parseGoogHash(r.headers['x-goog-hash']);
  if (uploadType === 'media') {
    const name = objectName(r.query.get('name'));
    await receiveToFile(body, file, { checksums: accumulator });
    const fields = optional('contentType', header(r, 'content-type'));
    return { name, fields, checksums: accumulator.digest(), expected: fromHeader };
  }
  if (uploadType !== 'multipart') {
    throw invalidArgument(`Unknown uploadType "${uploadType}": use media, multipart or resumable.`);
  }
  const boundary = boundaryOf(header(r, 'content-type'));
  if (!boundary) throw badRequest('A multipart upload needs a multipart/related Content-Type.');
  const upload = await readMultipart(body, boundary);
  const metadata = upload.metadata;
  const name = objectName(typeof metadata.name === 'string' ? metadata.name : r.query.get('name'));
  const fields = objectFieldsFrom(metadata);
  if (!fields.contentType && upload.contentType) fields.contentType = upload.contentType;
  await receiveToFile(upload.data, file, { checksums: accumulator });
  const expected = {
    ...fromHeader,
    ...(typeof metadata.md5Hash === 'string' ? { md5: metadata.md5Hash } : {}),
    ...(typeof metadata.crc32c === 'string' ? { crc32c: metadata.crc32c } : {}),
  };
  return { name, fields, checksums: accumulator.digest(), expected };
}

async function putChunk(storage: StorageService, r: LocalRequest): Promise<Reply> {
  const id = uploadId(r);
  const finished = storage.uploads.finishedObject(id);
  if (finished !== undefined) {
    r.stream?.resume();
    return { status: 200, json: finished, headers: JSON_HEADERS };
  }
  const range = parseContentRange(header(r, 'content-range'));
  const outcome = await storage.uploads.put(
    id,
    range,
    r.stream as Readable,
    parseGoogHash(r.headers['x-goog-hash']),
  );
  if (!outcome.done) {
    const headers: Record<string, string> = { 'content-length': '0' };
    if (outcome.received > 0) headers.range = `bytes=0-${outcome.received - 1}`;
    return { status: 308, headers, body: '' };
  }
  const { settings } = outcome;
  let resource: ObjectResource | undefined;
  try {
    resource = await storage.commitFile(
      settings.bucket,
      settings.name,
      outcome.file,
      outcome.checksums,
      settings.fields,
      settings.preconditions,
    );
    return okObject(resource);
  } finally {
    await storage.uploads.finish(id, resource);
  }
}

function okObject(resource: ObjectResource): Reply {
  return { status: 200, json: resource, headers: JSON_HEADERS };
}

async function readSmallBody(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_RESUMABLE_START_BYTES)
      throw badRequest('The metadata of a resumable upload must be under 1 MiB.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseObjectMetadata(json: Buffer): Record<string, unknown> & { name?: string } {
  if (json.length === 0) return {};
  try {
    const parsed = JSON.parse(json.toString('utf8')) as unknown;
    if (parsed && typeof parsed === 'object') return parsed as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw badRequest('The object metadata of the upload is not a JSON object.', 'parseError');
}

// ---- small helpers ------------------------------------------------------------------------

function uploadId(r: LocalRequest): string {
  const id = r.query.get('upload_id');
  if (!id) throw invalidArgument('This upload URL has no upload_id: start a resumable upload.');
  return id;
}

function objectName(name: unknown): string {
  if (typeof name !== 'string' || name === '')
    throw badRequest('Required parameter: name (the object name is missing).', 'required');
  return name;
}

function readOptions(r: LocalRequest): {
  preconditions: ReturnType<typeof preconditionsFrom>;
  generation?: number;
} {
  const generation = numberParam(r, 'generation');
  return {
    preconditions: preconditionsFrom(r.query),
    ...(generation !== undefined ? { generation } : {}),
  };
}

function numberParam(r: LocalRequest, key: string): number | undefined {
  const value = r.query.get(key);
  if (value === null || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw invalidArgument(`${key} must be a number, not "${value}".`);
  return Number(value);
}

function optional<K extends string>(
  key: K,
  value: string | null | undefined,
): Partial<Record<K, string>> {
  return value ? ({ [key]: value } as Record<K, string>) : {};
}

function header(r: LocalRequest, name: string): string | undefined {
  const value = r.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function stringField(resource: ObjectResource, key: string): string | undefined {
  const value = resource[key];
  return typeof value === 'string' ? value : undefined;
}

function versioningOf(body: Record<string, unknown>): { enabled: boolean } | undefined {
  const versioning = body.versioning as { enabled?: unknown } | undefined | null;
  if (!versioning || typeof versioning !== 'object') return undefined;
  return { enabled: versioning.enabled === true };
}

function isStringMap(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.values(value).every((v) => typeof v === 'string')
  );
}
