import { createHash } from 'node:crypto';
import { copyFile, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Route } from '../http.js';
import { ApiError, invalidArgument, notFound } from '../http.js';
import type { LocalCloud, LocalService, ResourceLine, ServiceStatus } from '../service.js';
import { ChecksumAccumulator } from './checksums.js';
import { noSuchObject } from './errors.js';
import { receiveToFile } from './files.js';
import type { StorageEvent } from './notifier.js';
import { Notifier, topicPath } from './notifier.js';
import type {
  BucketRecord,
  NotificationRecord,
  ObjectRecord,
  ObjectResource,
} from './resources.js';
import { bucketResource, EVENT_TYPES, objectResource } from './resources.js';
import { ResumableUploads } from './resumable.js';
import { storageRoutes } from './routes.js';
import type { Committed, ListOptions, ObjectFields, Preconditions } from './store.js';
import { ObjectStore } from './store.js';

/**
 * The local Cloud Storage: the JSON API over files (see `routes.ts`), and an in-process API for
 * the other local services, such as Cloud Build reading a source archive or Video Intelligence
 * reading a `gs://` video. Both paths go through the same methods, so an object written in
 * process triggers the same notifications as an upload through the client.
 */

export const STORAGE_SERVICE = 'storage';

/** Downloads read the disk in pieces this big: fewer, larger writes to the socket. */
const READ_CHUNK_BYTES = 512 * 1024;

export type { ObjectResource } from './resources.js';

export interface WriteOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  /** Such as `{ ifGenerationMatch: 0 }` to write only if the object does not exist. */
  preconditions?: Preconditions;
}

export interface ReadRange {
  /** First byte, inclusive. */
  start?: number;
  /** Last byte, inclusive. */
  end?: number;
}

/** `gs://bucket/path/to/object` to its parts; INVALID_ARGUMENT for anything else. */
export function parseGsUri(uri: string): { bucket: string; name: string } {
  const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) {
    throw invalidArgument(`"${uri}" is not a Cloud Storage URI; use gs://BUCKET/OBJECT.`);
  }
  return { bucket: match[1], name: match[2] };
}

export class StorageService implements LocalService {
  readonly name = STORAGE_SERVICE;
  readonly routes: Route[];
  readonly store: ObjectStore;
  readonly uploads: ResumableUploads;
  readonly notifier: Notifier;
  readonly projectNumber: string;
  private readonly log: Logger;

  constructor(readonly cloud: LocalCloud) {
    const root = join(cloud.dataDir, STORAGE_SERVICE);
    this.log = cloud.log.child(STORAGE_SERVICE);
    this.store = new ObjectStore(root, this.log);
    this.uploads = new ResumableUploads(join(root, 'uploads'), this.log);
    this.notifier = new Notifier(
      join(root, 'outbox'),
      { host: cloud.pubsubHost, projectId: cloud.projectId },
      this.log,
    );
    this.projectNumber = projectNumberOf(cloud.projectId);
    this.routes = storageRoutes(this);
  }

  async start(): Promise<void> {
    await this.store.open();
    await this.uploads.open();
    await this.notifier.open();
  }

  async stop(): Promise<void> {
    await this.notifier.close();
  }

  status(): Promise<ServiceStatus> {
    const resources: ResourceLine[] = [];
    for (const bucket of this.store.listBuckets()) {
      const { count, noncurrent, bytes } = this.store.objectCount(bucket.name);
      const versions = noncurrent > 0 ? ` (+${noncurrent} noncurrent)` : '';
      resources.push({
        kind: 'bucket',
        name: bucket.name,
        detail: `${count} object${count === 1 ? '' : 's'}${versions}, ${formatBytes(bytes)}`,
      });
      for (const n of bucket.notifications) {
        resources.push({
          kind: 'notification',
          name: `${bucket.name}/notificationConfigs/${n.id}`,
          detail: `to ${n.topic.replace('//pubsub.googleapis.com/', '')} on ${
            n.eventTypes?.join(',') || 'all events'
          }${n.objectNamePrefix ? ` under ${n.objectNamePrefix}` : ''}`,
        });
      }
    }
    const { published, pending } = this.notifier.stats;
    return Promise.resolve({
      name: STORAGE_SERVICE,
      endpoint: `${this.cloud.endpoint}/storage/v1`,
      state: 'running',
      detail:
        `${published} notification(s) published, ${pending} pending, ` +
        `${this.uploads.count} resumable upload(s) open`,
      resources,
    });
  }

  // ---- the in-process API -------------------------------------------------------------------

  /** The JSON API resource of a live object; NOT_FOUND when it does not exist. */
  statObject(bucket: string, name: string): ObjectResource {
    return this.render(this.store.object(bucket, name));
  }

  /** True when the object exists (a missing bucket counts as missing). */
  objectExists(bucket: string, name: string): boolean {
    return this.store.hasBucket(bucket) && this.store.findObject(bucket, name) !== undefined;
  }

  /**
   * The file that holds the object's bytes now. It is replaced (and removed) when the object
   * is overwritten or deleted: open it at once, or use `openObject`, which holds it open.
   */
  objectPath(bucket: string, name: string): string {
    return this.store.dataPath(this.store.object(bucket, name));
  }

  /** A stream of the object's bytes (or of a range of them) and its resource. */
  async openObject(
    bucket: string,
    name: string,
    range: ReadRange = {},
    options: { generation?: number; preconditions?: Preconditions } = {},
  ): Promise<{ resource: ObjectResource; stream: Readable }> {
    const object = this.store.object(bucket, name, options);
    // Opening the file before answering keeps the bytes readable even if the object is
    // replaced while the stream is read: the old file stays alive until it is closed.
    const handle = await open(this.store.dataPath(object), 'r').catch(() => {
      throw noSuchObject(bucket, name);
    });
    if (object.size === 0) {
      await handle.close();
      return { resource: this.render(object), stream: Readable.from([]) };
    }
    const stream = handle.createReadStream({
      highWaterMark: READ_CHUNK_BYTES,
      start: range.start ?? 0,
      ...(range.end !== undefined ? { end: range.end } : {}),
    });
    return { resource: this.render(object), stream };
  }

  /** The whole object in memory; for small objects such as a UDF or a template spec. */
  async readObject(bucket: string, name: string): Promise<Buffer> {
    const { stream } = await this.openObject(bucket, name);
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** Writes a new generation of the object from memory or a stream, with notifications. */
  async writeObject(
    bucket: string,
    name: string,
    data: Buffer | string | Readable | AsyncIterable<Buffer>,
    options: WriteOptions = {},
  ): Promise<ObjectResource> {
    this.store.bucket(bucket);
    const source =
      typeof data === 'string' ? [Buffer.from(data)] : Buffer.isBuffer(data) ? [data] : data;
    const fields: ObjectFields = {
      ...(options.contentType ? { contentType: options.contentType } : {}),
      ...(options.metadata ? { metadata: options.metadata } : {}),
    };
    const file = this.store.temporaryPath();
    try {
      const checksums = new ChecksumAccumulator();
      await receiveToFile(source, file, { checksums });
      return await this.commitFile(
        bucket,
        name,
        file,
        checksums,
        fields,
        options.preconditions ?? {},
      );
    } finally {
      await rm(file, { force: true });
    }
  }

  async deleteObject(
    bucket: string,
    name: string,
    options: { preconditions?: Preconditions; generation?: number } = {},
  ): Promise<void> {
    const { object, archived } = await this.store.deleteObject(bucket, name, options);
    await this.notify(bucket, [
      { eventType: archived ? 'OBJECT_ARCHIVE' : 'OBJECT_DELETE', object },
    ]);
  }

  listObjects(
    bucket: string,
    options: ListOptions = {},
  ): { items: ObjectResource[]; prefixes: string[]; nextPageToken?: string } {
    const result = this.store.list(bucket, options);
    return { ...result, items: result.items.map((o) => this.render(o)) };
  }

  /** Creates the bucket if it does not exist yet; returns its resource either way. */
  async ensureBucket(name: string): Promise<Record<string, unknown>> {
    const bucket = this.store.hasBucket(name)
      ? this.store.bucket(name)
      : await this.store.createBucket(name);
    return this.renderBucket(bucket);
  }

  // ---- shared by the routes and the in-process API ------------------------------------------

  render(object: ObjectRecord): ObjectResource {
    return objectResource(this.cloud.endpoint, object);
  }

  renderBucket(bucket: BucketRecord): Record<string, unknown> {
    return bucketResource(this.cloud.endpoint, this.projectNumber, bucket);
  }

  /** Commits a finished file as the object's new generation, then notifies. */
  async commitFile(
    bucket: string,
    name: string,
    file: string,
    checksums: ChecksumAccumulator | ReturnType<ChecksumAccumulator['digest']>,
    fields: ObjectFields,
    preconditions: Preconditions,
  ): Promise<ObjectResource> {
    const sums = checksums instanceof ChecksumAccumulator ? checksums.digest() : checksums;
    const committed = await this.store.commit(bucket, name, file, sums, fields, preconditions);
    await this.notify(bucket, finalizeEvents(committed));
    return this.render(committed.object);
  }

  /** Copies an object's bytes to a new object (rewrite and copy). */
  async copyObject(
    source: { bucket: string; name: string; generation?: number },
    target: { bucket: string; name: string },
    fields: ObjectFields | undefined,
    preconditions: Preconditions,
  ): Promise<ObjectResource> {
    const from = this.store.object(source.bucket, source.name, {
      ...(source.generation !== undefined ? { generation: source.generation } : {}),
    });
    this.store.bucket(target.bucket);
    const file = this.store.temporaryPath();
    await copyFile(this.store.dataPath(from), file);
    const inherited: ObjectFields = {
      contentType: from.contentType,
      ...(from.contentEncoding ? { contentEncoding: from.contentEncoding } : {}),
      ...(from.contentDisposition ? { contentDisposition: from.contentDisposition } : {}),
      ...(from.contentLanguage ? { contentLanguage: from.contentLanguage } : {}),
      ...(from.cacheControl ? { cacheControl: from.cacheControl } : {}),
      ...(from.metadata ? { metadata: from.metadata } : {}),
    };
    const sums = { md5Hash: from.md5Hash, crc32c: from.crc32c, size: from.size };
    return this.commitFile(
      target.bucket,
      target.name,
      file,
      sums,
      { ...inherited, ...(fields ?? {}) },
      preconditions,
    );
  }

  async patchObject(
    bucket: string,
    name: string,
    fields: ObjectFields,
    options: { preconditions?: Preconditions; generation?: number; replaceMetadata?: boolean },
  ): Promise<ObjectResource> {
    const patched = await this.store.patchObject(bucket, name, fields, options);
    await this.notify(bucket, [{ eventType: 'OBJECT_METADATA_UPDATE', object: patched }]);
    return this.render(patched);
  }

  // ---- notification configs -----------------------------------------------------------------

  async addNotification(
    bucket: string,
    body: Record<string, unknown>,
  ): Promise<NotificationRecord> {
    this.store.bucket(bucket);
    const topic = typeof body.topic === 'string' ? body.topic : '';
    const path = topicPath(topic);
    if (!(await this.notifier.topicExists(path).catch(unavailable))) {
      throw invalidArgument(
        `Cloud Pub/Sub topic '${topic}' not found. Create the topic first, then the ` +
          'notification config.',
      );
    }
    const format = body.payload_format ?? 'JSON_API_V1';
    if (format !== 'JSON_API_V1' && format !== 'NONE') {
      throw invalidArgument(
        `payload_format must be JSON_API_V1 or NONE, not ${JSON.stringify(format)}.`,
      );
    }
    const eventTypes = body.event_types;
    if (eventTypes !== undefined) {
      const known: readonly string[] = EVENT_TYPES;
      if (!Array.isArray(eventTypes) || eventTypes.some((t) => !known.includes(String(t)))) {
        throw invalidArgument(`event_types must be a list of ${EVENT_TYPES.join(', ')}.`);
      }
    }
    const prefix = body.object_name_prefix;
    const custom = body.custom_attributes;
    let added: NotificationRecord | undefined;
    await this.store.updateBucket(
      bucket,
      (b) => {
        added = {
          id: String(b.nextNotificationId),
          topic,
          payloadFormat: format,
          ...(Array.isArray(eventTypes) && eventTypes.length > 0
            ? { eventTypes: eventTypes.map(String) }
            : {}),
          ...(typeof prefix === 'string' && prefix ? { objectNamePrefix: prefix } : {}),
          ...(custom && typeof custom === 'object'
            ? {
                customAttributes: Object.fromEntries(
                  Object.entries(custom as Record<string, unknown>).map(([k, v]) => [
                    k,
                    typeof v === 'string' ? v : JSON.stringify(v),
                  ]),
                ),
              }
            : {}),
        };
        b.nextNotificationId += 1;
        b.notifications.push(added);
      },
      { bumpMetageneration: false },
    );
    return added as NotificationRecord;
  }

  async removeNotification(bucket: string, id: string): Promise<void> {
    this.notification(bucket, id);
    await this.store.updateBucket(
      bucket,
      (b) => {
        b.notifications = b.notifications.filter((n) => n.id !== id);
      },
      { bumpMetageneration: false },
    );
  }

  notification(bucket: string, id: string): NotificationRecord {
    const found = this.store.bucket(bucket).notifications.find((n) => n.id === id);
    if (!found) throw noSuchNotification(bucket, id);
    return found;
  }

  private async notify(bucket: string, events: StorageEvent[]): Promise<void> {
    if (!this.store.hasBucket(bucket)) return;
    await this.notifier.emit(this.store.bucket(bucket), events, (o) => this.render(o));
  }
}

/**
 * A finalize, and for an object that replaced another the end of the old one: OBJECT_ARCHIVE
 * where versioning kept it as noncurrent, OBJECT_DELETE where it is gone, as Google sends them.
 */
function finalizeEvents(committed: Committed): StorageEvent[] {
  const { object, replaced, archived } = committed;
  if (!replaced) return [{ eventType: 'OBJECT_FINALIZE', object }];
  return [
    { eventType: 'OBJECT_FINALIZE', object, overwroteGeneration: replaced.generation },
    {
      eventType: archived ? 'OBJECT_ARCHIVE' : 'OBJECT_DELETE',
      object: replaced,
      overwrittenByGeneration: object.generation,
    },
  ];
}

function noSuchNotification(bucket: string, id: string): ApiError {
  return notFound(`No such notification config ${id} on bucket ${bucket}.`);
}

function unavailable(error: unknown): never {
  throw new ApiError(
    'UNAVAILABLE',
    `The Pub/Sub emulator did not answer (${errorMessage(error)}); run \`cymbal-lab local status\`.`,
  );
}

function projectNumberOf(projectId: string): string {
  const digest = createHash('sha256').update(projectId).digest();
  return String(100_000_000_000 + (digest.readUInt32BE(0) % 900_000_000_000));
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export const storageServiceFactory = (cloud: LocalCloud): StorageService =>
  new StorageService(cloud);
