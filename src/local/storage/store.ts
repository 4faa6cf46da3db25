import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from '../../log.js';
import { ApiError, invalidArgument } from '../http.js';
import type { Checksums } from './checksums.js';
import { badRequest, noSuchBucket, noSuchObject, preconditionFailed } from './errors.js';
import { SerialQueue, syncDirectory, uniqueSuffix, writeJsonAtomic } from './files.js';
import type { BucketRecord, ObjectRecord } from './resources.js';
import { SETTABLE_OBJECT_FIELDS } from './resources.js';

/**
 * The buckets and objects on disk. Layout under the service's data folder:
 *
 *   buckets/B/bucket.json             the bucket and its notification configs
 *   buckets/B/objects/KEY.json        one object's metadata (KEY is a hash of the name)
 *   buckets/B/objects/KEY.GEN.data    that object's bytes for generation GEN
 *   tmp/                              uploads being received; emptied on start
 *
 * Every object and bucket is also held in memory, so reads and listings never touch the
 * metadata files. Writes go to a temporary file first and are renamed into place, and each
 * metadata change is serialised through one queue, so a crash leaves either the old or the new
 * object, never a mix.
 */

export interface Preconditions {
  ifGenerationMatch?: number;
  ifGenerationNotMatch?: number;
  ifMetagenerationMatch?: number;
  ifMetagenerationNotMatch?: number;
}

const PRECONDITION_NAMES = [
  'ifGenerationMatch',
  'ifGenerationNotMatch',
  'ifMetagenerationMatch',
  'ifMetagenerationNotMatch',
] as const;

export function preconditionsFrom(query: URLSearchParams): Preconditions {
  const result: Preconditions = {};
  for (const name of PRECONDITION_NAMES) {
    const value = query.get(name);
    if (value === null || value === '') continue;
    if (!/^\d+$/.test(value)) throw invalidArgument(`${name} must be a number, not "${value}".`);
    result[name] = Number(value);
  }
  return result;
}

/** Object fields a client can set: content headers and custom metadata. */
export interface ObjectFields {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  /** On a patch, a null value removes that key. */
  metadata?: Record<string, string | null> | null;
}

export function objectFieldsFrom(body: Record<string, unknown>): ObjectFields {
  const fields: ObjectFields = {};
  for (const key of SETTABLE_OBJECT_FIELDS) {
    const value = body[key];
    if (typeof value === 'string') fields[key] = value;
  }
  const metadata = body.metadata;
  if (metadata === null) fields.metadata = null;
  else if (typeof metadata === 'object' && metadata !== undefined) {
    const entries = Object.entries(metadata as Record<string, unknown>).map(
      ([k, v]) => [k, v === null || typeof v === 'string' ? v : JSON.stringify(v)] as const,
    );
    fields.metadata = Object.fromEntries(entries);
  }
  return fields;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  pageToken?: string;
  maxResults?: number;
  startOffset?: string;
  endOffset?: string;
  /** Include noncurrent generations. */
  versions?: boolean;
}

export interface ListResult {
  items: ObjectRecord[];
  prefixes: string[];
  nextPageToken?: string;
}

/** The outcome of writing an object: the new record and the one it replaced, if any. */
export interface Committed {
  object: ObjectRecord;
  replaced?: ObjectRecord;
  /** True when `replaced` was kept as a noncurrent generation (a bucket with versioning). */
  archived: boolean;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const DEFAULT_PAGE_SIZE = 1000;

export class ObjectStore {
  private readonly buckets = new Map<string, BucketRecord>();
  private readonly objects = new Map<string, Map<string, ObjectRecord>>();
  /** Noncurrent generations kept by buckets with versioning, oldest first, by name. */
  private readonly noncurrent = new Map<string, Map<string, ObjectRecord[]>>();
  private readonly queue = new SerialQueue();
  private lastGeneration = 0;

  constructor(
    readonly root: string,
    private readonly log: Logger,
  ) {}

  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  /** Loads every bucket and object, and removes what an interrupted write left behind. */
  async open(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    const bucketsDir = join(this.root, 'buckets');
    await mkdir(bucketsDir, { recursive: true });
    for (const name of await readdir(bucketsDir)) {
      const bucketFile = join(bucketsDir, name, 'bucket.json');
      if (!existsSync(bucketFile)) continue;
      const bucket = JSON.parse(await readFile(bucketFile, 'utf8')) as BucketRecord;
      this.buckets.set(bucket.name, bucket);
      const { live, old } = await this.loadObjects(bucket.name);
      this.objects.set(bucket.name, live);
      this.noncurrent.set(bucket.name, old);
    }
  }

  private async loadObjects(
    bucket: string,
  ): Promise<{ live: Map<string, ObjectRecord>; old: Map<string, ObjectRecord[]> }> {
    const dir = this.objectsDir(bucket);
    await mkdir(dir, { recursive: true });
    const files = await readdir(dir);
    const live = new Map<string, ObjectRecord>();
    const archived: ObjectRecord[] = [];
    for (const file of files.filter((f) => f.endsWith('.json'))) {
      const record = JSON.parse(await readFile(join(dir, file), 'utf8')) as ObjectRecord;
      if (record.timeDeleted) archived.push(record);
      else live.set(record.name, record);
      this.lastGeneration = Math.max(this.lastGeneration, record.generation);
    }
    const old = new Map<string, ObjectRecord[]>();
    for (const record of archived.sort((a, b) => a.generation - b.generation)) {
      // A crash between archiving a generation and writing its successor leaves it twice.
      if (live.get(record.name)?.generation === record.generation) continue;
      old.set(record.name, [...(old.get(record.name) ?? []), record]);
    }
    const referenced = new Set(
      [...live.values(), ...[...old.values()].flat()].map((r) => r.dataFile),
    );
    for (const file of files) {
      if (file.endsWith('.json') || referenced.has(file)) continue;
      this.log.debug('removing %s/%s left by an interrupted write', bucket, file);
      await rm(join(dir, file), { force: true });
    }
    return { live, old };
  }

  // ---- buckets ------------------------------------------------------------------------------

  listBuckets(): BucketRecord[] {
    return [...this.buckets.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  bucket(name: string): BucketRecord {
    const bucket = this.buckets.get(name);
    if (!bucket) throw noSuchBucket(name);
    return bucket;
  }

  hasBucket(name: string): boolean {
    return this.buckets.has(name);
  }

  createBucket(name: string, fields: Partial<BucketRecord> = {}): Promise<BucketRecord> {
    return this.queue.run(async () => {
      if (!BUCKET_NAME.test(name) || name.includes('..')) {
        throw badRequest(
          `Invalid bucket name: '${name}'. Use 3 to 222 lowercase letters, digits, dashes, ` +
            'underscores and dots, starting and ending with a letter or digit.',
        );
      }
      if (this.buckets.has(name)) {
        throw new ApiError(
          'ALREADY_EXISTS',
          'Your previous request to create the named bucket succeeded and you already own it.',
          { reason: 'conflict' },
        );
      }
      const now = new Date().toISOString();
      const bucket: BucketRecord = {
        name,
        location: (fields.location ?? 'US').toUpperCase(),
        locationType: fields.locationType ?? 'multi-region',
        ...(fields.versioning ? { versioning: { enabled: fields.versioning.enabled } } : {}),
        storageClass: fields.storageClass ?? 'STANDARD',
        labels: fields.labels ?? {},
        timeCreated: now,
        updated: now,
        metageneration: 1,
        notifications: [],
        nextNotificationId: 1,
      };
      await mkdir(this.objectsDir(name), { recursive: true });
      await writeJsonAtomic(this.bucketFile(name), bucket);
      this.buckets.set(name, bucket);
      this.objects.set(name, new Map());
      this.noncurrent.set(name, new Map());
      return bucket;
    });
  }

  /** Applies `change` to a copy of the bucket, saves it and bumps its metageneration. */
  updateBucket(
    name: string,
    change: (bucket: BucketRecord) => void,
    options: { bumpMetageneration?: boolean } = {},
  ): Promise<BucketRecord> {
    return this.queue.run(async () => {
      const next = structuredClone(this.bucket(name));
      change(next);
      if (options.bumpMetageneration ?? true) {
        next.metageneration += 1;
        next.updated = new Date().toISOString();
      }
      await writeJsonAtomic(this.bucketFile(name), next);
      this.buckets.set(name, next);
      return next;
    });
  }

  deleteBucket(name: string): Promise<void> {
    return this.queue.run(async () => {
      this.bucket(name);
      const versions = [...(this.noncurrent.get(name)?.values() ?? [])].flat().length;
      if ((this.objects.get(name)?.size ?? 0) + versions > 0) {
        throw new ApiError('ABORTED', 'The bucket you tried to delete is not empty.', {
          reason: 'conflict',
        });
      }
      // Renaming first makes the deletion atomic: a crash leaves no half-deleted bucket.
      const doomed = join(this.root, 'tmp', `bucket-${name}-${uniqueSuffix()}`);
      await rename(join(this.root, 'buckets', name), doomed);
      this.buckets.delete(name);
      this.objects.delete(name);
      this.noncurrent.delete(name);
      await rm(doomed, { recursive: true, force: true });
    });
  }

  // ---- objects ------------------------------------------------------------------------------

  /**
   * The live object, or with `generation` that generation (live or noncurrent), checked against
   * the preconditions.
   */
  object(
    bucket: string,
    name: string,
    options: { preconditions?: Preconditions; generation?: number } = {},
  ): ObjectRecord {
    const live = this.objectsOf(bucket).get(name);
    const object =
      options.generation === undefined || live?.generation === options.generation
        ? live
        : this.versionsOf(bucket)
            .get(name)
            ?.find((o) => o.generation === options.generation);
    if (!object) throw noSuchObject(bucket, name);
    if (options.preconditions) checkPreconditions(options.preconditions, object);
    return object;
  }

  findObject(bucket: string, name: string): ObjectRecord | undefined {
    return this.objectsOf(bucket).get(name);
  }

  /** Live objects, noncurrent generations, and the bytes of both. */
  objectCount(bucket: string): { count: number; noncurrent: number; bytes: number } {
    let bytes = 0;
    const objects = this.objectsOf(bucket);
    for (const o of objects.values()) bytes += o.size;
    const old = [...this.versionsOf(bucket).values()].flat();
    for (const o of old) bytes += o.size;
    return { count: objects.size, noncurrent: old.length, bytes };
  }

  dataPath(object: ObjectRecord): string {
    return join(this.objectsDir(object.bucket), object.dataFile);
  }

  /** A fresh path in the temporary folder, on the same file system as the objects. */
  temporaryPath(): string {
    return join(this.tmpDir, `upload-${uniqueSuffix()}`);
  }

  /**
   * Makes `file` (already complete and flushed) the new generation of bucket/name. The file is
   * moved, not copied; on failure it is removed.
   */
  commit(
    bucket: string,
    name: string,
    file: string,
    checksums: Checksums,
    fields: ObjectFields,
    preconditions: Preconditions = {},
  ): Promise<Committed> {
    return this.queue.run(async () => {
      try {
        validateObjectName(name);
        const objects = this.objectsOf(bucket);
        const replaced = objects.get(name);
        checkWritePreconditions(preconditions, replaced);
        const generation = this.nextGeneration();
        const key = objectKey(name);
        const now = new Date().toISOString();
        const object: ObjectRecord = {
          bucket,
          name,
          generation,
          metageneration: 1,
          contentType: fields.contentType || 'application/octet-stream',
          size: checksums.size,
          md5Hash: checksums.md5Hash,
          crc32c: checksums.crc32c,
          timeCreated: now,
          updated: now,
          dataFile: `${key}.${generation}.data`,
        };
        applyFields(object, { ...fields, contentType: object.contentType });
        await rename(file, this.dataPath(object));
        const archived =
          replaced && this.versioned(bucket) ? await this.archive(replaced, now) : undefined;
        await writeJsonAtomic(join(this.objectsDir(bucket), `${key}.json`), object);
        objects.set(name, object);
        if (archived) return { object, replaced: archived, archived: true };
        if (replaced) await rm(this.dataPath(replaced), { force: true });
        return replaced ? { object, replaced, archived: false } : { object, archived: false };
      } catch (error) {
        await rm(file, { force: true });
        throw error;
      }
    });
  }

  patchObject(
    bucket: string,
    name: string,
    fields: ObjectFields,
    options: { preconditions?: Preconditions; generation?: number; replaceMetadata?: boolean },
  ): Promise<ObjectRecord> {
    return this.queue.run(async () => {
      const current = this.object(bucket, name, options);
      const next = structuredClone(current);
      if (options.replaceMetadata) delete next.metadata;
      applyFields(next, fields);
      next.metageneration += 1;
      next.updated = new Date().toISOString();
      await writeJsonAtomic(join(this.objectsDir(bucket), `${objectKey(name)}.json`), next);
      this.objectsOf(bucket).set(name, next);
      return next;
    });
  }

  /**
   * Deletes the live object, or with `generation` that generation. In a bucket with versioning,
   * deleting the live object without naming its generation keeps it as noncurrent (`archived`).
   */
  deleteObject(
    bucket: string,
    name: string,
    options: { preconditions?: Preconditions; generation?: number } = {},
  ): Promise<{ object: ObjectRecord; archived: boolean }> {
    return this.queue.run(async () => {
      const object = this.object(bucket, name, options);
      const dir = this.objectsDir(bucket);
      const key = objectKey(name);
      if (object.timeDeleted) {
        await rm(join(dir, `${key}.${object.generation}.json`), { force: true });
        const left = (this.versionsOf(bucket).get(name) ?? []).filter((o) => o !== object);
        if (left.length > 0) this.versionsOf(bucket).set(name, left);
        else this.versionsOf(bucket).delete(name);
      } else if (options.generation === undefined && this.versioned(bucket)) {
        const archived = await this.archive(object, new Date().toISOString());
        await rm(join(dir, `${key}.json`), { force: true });
        await syncDirectory(dir);
        this.objectsOf(bucket).delete(name);
        return { object: archived, archived: true };
      } else {
        await rm(join(dir, `${key}.json`), { force: true });
        this.objectsOf(bucket).delete(name);
      }
      await syncDirectory(dir);
      await rm(this.dataPath(object), { force: true });
      return { object, archived: false };
    });
  }

  /** Keeps `object` as a noncurrent generation; its data file stays where it is. */
  private async archive(object: ObjectRecord, when: string): Promise<ObjectRecord> {
    const archived: ObjectRecord = { ...object, timeDeleted: when };
    const key = objectKey(object.name);
    await writeJsonAtomic(
      join(this.objectsDir(object.bucket), `${key}.${object.generation}.json`),
      archived,
    );
    const versions = this.versionsOf(object.bucket);
    versions.set(object.name, [...(versions.get(object.name) ?? []), archived]);
    return archived;
  }

  private versioned(bucket: string): boolean {
    return this.bucket(bucket).versioning?.enabled === true;
  }

  private versionsOf(bucket: string): Map<string, ObjectRecord[]> {
    let versions = this.noncurrent.get(bucket);
    if (!versions) {
      this.objectsOf(bucket);
      versions = new Map();
      this.noncurrent.set(bucket, versions);
    }
    return versions;
  }

  list(bucket: string, options: ListOptions = {}): ListResult {
    const prefix = options.prefix ?? '';
    const delimiter = options.delimiter || undefined;
    const limit = Math.max(1, Math.min(options.maxResults ?? DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE));
    const after = options.pageToken ? decodePageToken(options.pageToken) : undefined;
    const records = [...this.objectsOf(bucket).values()];
    if (options.versions) records.push(...[...this.versionsOf(bucket).values()].flat());
    records.sort((a, b) => compareNames(a.name, b.name) || a.generation - b.generation);
    const items: ObjectRecord[] = [];
    const prefixes: string[] = [];
    let last: PageMark | undefined;
    for (const record of records) {
      const name = record.name;
      if (!name.startsWith(prefix)) continue;
      if (options.startOffset !== undefined && compareNames(name, options.startOffset) < 0)
        continue;
      if (options.endOffset !== undefined && compareNames(name, options.endOffset) >= 0) continue;
      if (after && !isAfter(record, after)) continue;
      if (last?.kind === 'prefix' && name.startsWith(last.value)) continue;
      if (items.length + prefixes.length >= limit) {
        return { items, prefixes, ...(last ? { nextPageToken: encodePageToken(last) } : {}) };
      }
      const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
      if (delimiter && cut >= 0) {
        const common = name.slice(0, cut + delimiter.length);
        prefixes.push(common);
        last = { kind: 'prefix', value: common };
      } else {
        items.push(record);
        last = { kind: 'name', value: name, generation: record.generation };
      }
    }
    return { items, prefixes };
  }

  private objectsOf(bucket: string): Map<string, ObjectRecord> {
    const objects = this.objects.get(bucket);
    if (!objects) throw noSuchBucket(bucket);
    return objects;
  }

  private nextGeneration(): number {
    // Cloud Storage generations are microseconds since the epoch; keep them strictly rising.
    this.lastGeneration = Math.max(Date.now() * 1000, this.lastGeneration + 1);
    return this.lastGeneration;
  }

  private objectsDir(bucket: string): string {
    return join(this.root, 'buckets', bucket, 'objects');
  }

  private bucketFile(bucket: string): string {
    return join(this.root, 'buckets', bucket, 'bucket.json');
  }
}

interface PageMark {
  kind: 'name' | 'prefix';
  value: string;
  /** Set when listing versions: the generation last returned under `value`. */
  generation?: number;
}

function encodePageToken(mark: PageMark): string {
  return Buffer.from(JSON.stringify(mark)).toString('base64url');
}

function decodePageToken(token: string): PageMark {
  try {
    const mark = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as PageMark;
    if (typeof mark.value === 'string') return mark;
  } catch {
    // Fall through to the error below.
  }
  throw invalidArgument(`Invalid pageToken "${token}": pass the nextPageToken of a listing.`);
}

function isAfter(record: ObjectRecord, mark: PageMark): boolean {
  if (mark.kind === 'prefix' && record.name.startsWith(mark.value)) return false;
  const order = compareNames(record.name, mark.value);
  if (order === 0 && mark.generation !== undefined) return record.generation > mark.generation;
  return order > 0;
}

/** Cloud Storage lists names in the lexicographic order of their UTF-8 bytes. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function objectKey(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 40);
}

function validateObjectName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 1024 || /[\r\n]/.test(name) || name === '.' || name === '..') {
    throw badRequest(
      `Invalid object name "${name}": use 1 to 1024 bytes of UTF-8 without line breaks.`,
    );
  }
}

function applyFields(object: ObjectRecord, fields: ObjectFields): void {
  for (const key of SETTABLE_OBJECT_FIELDS) {
    const value = fields[key];
    if (value === undefined) continue;
    if (key === 'contentType') object.contentType = value || 'application/octet-stream';
    else if (value === '') delete object[key];
    else object[key] = value;
  }
  if (fields.metadata === null) delete object.metadata;
  else if (fields.metadata) {
    const merged: Record<string, string> = { ...(object.metadata ?? {}) };
    for (const [k, v] of Object.entries(fields.metadata)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    object.metadata = merged;
  }
}

function checkPreconditions(p: Preconditions, object: ObjectRecord | undefined): void {
  const generation = object?.generation ?? 0;
  if (p.ifGenerationMatch !== undefined && p.ifGenerationMatch !== generation)
    throw preconditionFailed(`ifGenerationMatch=${p.ifGenerationMatch}, live is ${generation}`);
  if (p.ifGenerationNotMatch !== undefined && p.ifGenerationNotMatch === generation)
    throw preconditionFailed(`ifGenerationNotMatch=${p.ifGenerationNotMatch}`);
  if (p.ifMetagenerationMatch !== undefined || p.ifMetagenerationNotMatch !== undefined) {
    const meta = object?.metageneration;
    if (meta === undefined) throw preconditionFailed('the object has no metageneration yet');
    if (p.ifMetagenerationMatch !== undefined && p.ifMetagenerationMatch !== meta)
      throw preconditionFailed(`ifMetagenerationMatch=${p.ifMetagenerationMatch}, live is ${meta}`);
    if (p.ifMetagenerationNotMatch !== undefined && p.ifMetagenerationNotMatch === meta)
      throw preconditionFailed(`ifMetagenerationNotMatch=${p.ifMetagenerationNotMatch}`);
  }
}

/** On a write, `ifGenerationMatch=0` means "only if no live object has this name". */
export function checkWritePreconditions(p: Preconditions, live: ObjectRecord | undefined): void {
  checkPreconditions(p, live);
}
