/**
 * What the store keeps for buckets, objects and notification configs, and how each is rendered
 * as the Cloud Storage JSON API resource the official clients expect (numbers such as `size` and
 * `generation` are strings there; hashes are base64).
 */

export interface BucketRecord {
  name: string;
  location: string;
  locationType: string;
  storageClass: string;
  labels: Record<string, string>;
  /** Keep replaced and deleted objects as noncurrent generations. */
  versioning?: { enabled: boolean };
  timeCreated: string;
  updated: string;
  metageneration: number;
  notifications: NotificationRecord[];
  /** The id the next notification config gets; Cloud Storage numbers them per bucket. */
  nextNotificationId: number;
}

export interface NotificationRecord {
  id: string;
  /** `//pubsub.googleapis.com/projects/P/topics/T`, as the API writes it. */
  topic: string;
  payloadFormat: 'JSON_API_V1' | 'NONE';
  eventTypes?: string[];
  objectNamePrefix?: string;
  customAttributes?: Record<string, string>;
}

export interface ObjectRecord {
  bucket: string;
  name: string;
  generation: number;
  metageneration: number;
  contentType: string;
  size: number;
  md5Hash: string;
  crc32c: string;
  timeCreated: string;
  updated: string;
  /** Set on a noncurrent generation: when it stopped being live. */
  timeDeleted?: string;
  metadata?: Record<string, string>;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  /** The data file's name inside the bucket's object folder. */
  dataFile: string;
}

/** The optional object fields a client may set on upload or patch. */
export const SETTABLE_OBJECT_FIELDS = [
  'contentType',
  'contentEncoding',
  'contentDisposition',
  'contentLanguage',
  'cacheControl',
] as const;

export type ObjectResource = Record<string, unknown> & {
  kind: 'storage#object';
  bucket: string;
  name: string;
  generation: string;
  metageneration: string;
  size: string;
  contentType: string;
  md5Hash: string;
  crc32c: string;
  mediaLink: string;
  selfLink: string;
};

export const EVENT_TYPES = [
  'OBJECT_FINALIZE',
  'OBJECT_METADATA_UPDATE',
  'OBJECT_DELETE',
  'OBJECT_ARCHIVE',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const enc = encodeURIComponent;

export function objectResource(endpoint: string, o: ObjectRecord): ObjectResource {
  const path = `b/${enc(o.bucket)}/o/${enc(o.name)}`;
  const resource: ObjectResource = {
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${endpoint}/storage/v1/${path}`,
    mediaLink: `${endpoint}/download/storage/v1/${path}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: String(o.generation),
    metageneration: String(o.metageneration),
    contentType: o.contentType,
    storageClass: 'STANDARD',
    size: String(o.size),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: etagOf(o.generation, o.metageneration),
    timeCreated: o.timeCreated,
    updated: o.updated,
    timeStorageClassUpdated: o.timeCreated,
    timeFinalized: o.timeCreated,
  };
  for (const field of SETTABLE_OBJECT_FIELDS) {
    if (field !== 'contentType' && o[field] !== undefined) resource[field] = o[field];
  }
  if (o.metadata && Object.keys(o.metadata).length > 0) resource.metadata = { ...o.metadata };
  if (o.timeDeleted) resource.timeDeleted = o.timeDeleted;
  return resource;
}

export function bucketResource(
  endpoint: string,
  projectNumber: string,
  b: BucketRecord,
): Record<string, unknown> {
  return {
    kind: 'storage#bucket',
    id: b.name,
    selfLink: `${endpoint}/storage/v1/b/${enc(b.name)}`,
    projectNumber,
    name: b.name,
    timeCreated: b.timeCreated,
    updated: b.updated,
    metageneration: String(b.metageneration),
    location: b.location,
    locationType: b.locationType,
    storageClass: b.storageClass,
    etag: etagOf(b.metageneration, 0),
    ...(Object.keys(b.labels).length > 0 ? { labels: { ...b.labels } } : {}),
    ...(b.versioning ? { versioning: { ...b.versioning } } : {}),
    iamConfiguration: {
      uniformBucketLevelAccess: { enabled: true },
      publicAccessPrevention: 'inherited',
    },
  };
}

export function notificationResource(
  endpoint: string,
  bucket: string,
  n: NotificationRecord,
): Record<string, unknown> {
  return {
    kind: 'storage#notification',
    id: n.id,
    selfLink: `${endpoint}/storage/v1/b/${enc(bucket)}/notificationConfigs/${n.id}`,
    topic: n.topic,
    payload_format: n.payloadFormat,
    ...(n.eventTypes ? { event_types: [...n.eventTypes] } : {}),
    ...(n.objectNamePrefix ? { object_name_prefix: n.objectNamePrefix } : {}),
    ...(n.customAttributes ? { custom_attributes: { ...n.customAttributes } } : {}),
    etag: n.id,
  };
}

function etagOf(a: number, b: number): string {
  return Buffer.from(`${a}/${b}`).toString('base64');
}
