/**
 * Which Cloud Storage notifications the template annotates: finalize events (a new object or a
 * new generation of one) for names that end in a video extension the Video Intelligence API
 * reads. Everything else is acknowledged and skipped, as Google's pipeline does. Pure functions:
 * no I/O, every rule unit-tested.
 */

/** The object a kept notification names, at the generation that was finalized. */
export interface VideoObject {
  bucket: string;
  name: string;
  /** The object's generation as a decimal string; `0` when the notification carries none. */
  generation: string;
  /** `gs://BUCKET/OBJECT`, what the Video Intelligence API is asked to annotate. */
  uri: string;
}

export type NotificationDecision =
  { kind: 'video'; video: VideoObject } | { kind: 'ignored'; reason: string };

const VIDEO_NAME = /\.(mov|mpeg4|mp4|avi)$/i;

/** True for object names the template annotates: `.mov`, `.mpeg4`, `.mp4`, `.avi`, any case. */
export function isVideoFileName(name: string): boolean {
  return VIDEO_NAME.test(name);
}

/**
 * Reads a notification's attributes (and, for what they lack, its JSON_API_V1 payload, the
 * object resource) and decides whether to annotate the object it names.
 */
export function classifyNotification(
  attributes: Record<string, string>,
  data: Buffer | string,
): NotificationDecision {
  const eventType = attributes.eventType ?? '';
  if (eventType.toUpperCase() !== 'OBJECT_FINALIZE') {
    return {
      kind: 'ignored',
      reason: `event type ${eventType || '(none)'} is not OBJECT_FINALIZE`,
    };
  }
  const payload = objectResource(data);
  const bucket = attributes.bucketId || stringField(payload, 'bucket');
  const name = attributes.objectId || stringField(payload, 'name');
  if (!bucket || !name) {
    return { kind: 'ignored', reason: 'the notification names no bucket or object' };
  }
  if (!isVideoFileName(name)) {
    return { kind: 'ignored', reason: `${name} does not end in .mov, .mpeg4, .mp4 or .avi` };
  }
  const generation = attributes.objectGeneration || stringField(payload, 'generation') || '0';
  return { kind: 'video', video: { bucket, name, generation, uri: `gs://${bucket}/${name}` } };
}

function objectResource(data: Buffer | string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(data.toString());
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    // The payload is only a fallback for the attributes; a notification without one still works.
    return {};
  }
}

function stringField(record: Record<string, unknown>, key: string): string {
  const value = record[key];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}
