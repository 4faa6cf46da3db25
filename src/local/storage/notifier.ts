import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

import type { Topic } from '@google-cloud/pubsub';
import { PubSub } from '@google-cloud/pubsub';

import { errorMessage, GrpcCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { badRequest } from './errors.js';
import { uniqueSuffix, writeJsonAtomic } from './files.js';
import type {
  BucketRecord,
  EventType,
  NotificationRecord,
  ObjectRecord,
  ObjectResource,
} from './resources.js';

/**
 * Publishes Cloud Storage notifications to the Pub/Sub emulator, with the attributes and payload
 * Google sends. Each message is first written to an outbox folder and removed only once the
 * emulator confirmed it, so a message survives an emulator that is down or a restart of the
 * local cloud: delivery is at least once, as on Google.
 */

export interface StorageEvent {
  eventType: EventType;
  object: ObjectRecord;
  /** On the finalize of an object that replaced a live one: the generation it replaced. */
  overwroteGeneration?: number;
  /** On the delete of a replaced object: the generation that replaced it. */
  overwrittenByGeneration?: number;
}

interface OutboxMessage {
  id: string;
  /** `projects/P/topics/T`. */
  topic: string;
  data: string;
  attributes: Record<string, string>;
}

const TOPIC = /^\/\/pubsub\.googleapis\.com\/(projects\/[^/]+\/topics\/[^/]+)$/;

/** How long an API call waits for its notifications before answering anyway. */
const DELIVERY_WAIT_MS = 5_000;
const MAX_BACKOFF_MS = 30_000;
/** How long a topic lookup may take before the emulator counts as unreachable. */
const LOOKUP_TIMEOUT_MS = 5_000;
/** How long a topic may be missing before its messages are dropped. */
const TOPIC_GRACE_MS = 60_000;

/** `//pubsub.googleapis.com/projects/P/topics/T` to `projects/P/topics/T`, or a 400. */
export function topicPath(topic: string): string {
  const match = TOPIC.exec(topic);
  if (!match?.[1]) {
    throw badRequest(
      `Invalid Google Cloud Pub/Sub topic "${topic}". It should look like ` +
        "'//pubsub.googleapis.com/projects/*/topics/*'.",
    );
  }
  return match[1];
}

export function matches(config: NotificationRecord, event: StorageEvent): boolean {
  if (config.eventTypes && config.eventTypes.length > 0) {
    if (!config.eventTypes.includes(event.eventType)) return false;
  }
  return event.object.name.startsWith(config.objectNamePrefix ?? '');
}

export class Notifier {
  private client: PubSub | undefined;
  private readonly topics = new Map<string, Topic>();
  private readonly pending: OutboxMessage[] = [];
  private readonly waiters = new Map<string, () => void>();
  private pumping = false;
  private closed = false;
  private backoffMs = 0;
  private wake: (() => void) | undefined;
  private published = 0;
  private readonly missingSince = new Map<string, number>();
  private dropped = 0;
  private sequence = 0;

  constructor(
    private readonly dir: string,
    private readonly pubsub: { host: string; projectId: string },
    private readonly log: Logger,
  ) {}

  /** Queues what an earlier run left in the outbox. */
  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const files = (await readdir(this.dir)).filter((f) => f.endsWith('.json')).sort();
    for (const file of files) {
      try {
        this.pending.push(
          JSON.parse(await readFile(join(this.dir, file), 'utf8')) as OutboxMessage,
        );
      } catch {
        // A message file cut short by a crash was never acknowledged to anyone; drop it.
        await rm(join(this.dir, file), { force: true });
      }
    }
    if (this.pending.length > 0) {
      this.log.info('delivering %d notification(s) left from the last run', this.pending.length);
      this.pump();
    }
  }

  get stats(): { published: number; dropped: number; pending: number } {
    return { published: this.published, dropped: this.dropped, pending: this.pending.length };
  }

  /** True when the topic exists in the emulator; throws when the emulator does not answer. */
  async topicExists(topic: string): Promise<boolean> {
    try {
      await this.topic(topic).getMetadata({ timeout: LOOKUP_TIMEOUT_MS });
      return true;
    } catch (error) {
      // The emulator calls a malformed name (such as one shorter than 3 characters) invalid.
      if (isTopicGone(error) || hasCode(error, GrpcCode.INVALID_ARGUMENT)) return false;
      throw error;
    }
  }

  /**
   * Records and publishes the messages `events` cause under `bucket`'s notification configs.
   * Resolves once they are published, or after a few seconds if the emulator is slow; either
   * way they stay in the outbox until published.
   */
  async emit(
    bucket: BucketRecord,
    events: StorageEvent[],
    render: (object: ObjectRecord) => ObjectResource,
  ): Promise<void> {
    const messages: OutboxMessage[] = [];
    for (const event of events) {
      for (const config of bucket.notifications) {
        if (matches(config, event)) messages.push(this.message(bucket.name, config, event, render));
      }
    }
    if (messages.length === 0) return;
    for (const message of messages) {
      await writeJsonAtomic(join(this.dir, `${message.id}.json`), message);
    }
    // While the emulator is failing, answer at once: the outbox keeps the messages.
    const failing = this.backoffMs > 0;
    const delivered = failing
      ? undefined
      : Promise.all(
          messages.map((m) => new Promise<void>((resolve) => this.waiters.set(m.id, resolve))),
        );
    this.pending.push(...messages);
    this.pump();
    if (!delivered) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, DELIVERY_WAIT_MS);
    });
    await Promise.race([delivered, timeout]);
    clearTimeout(timer);
    for (const m of messages) this.waiters.delete(m.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    for (const resolve of this.waiters.values()) resolve();
    this.waiters.clear();
    const client = this.client;
    this.client = undefined;
    this.topics.clear();
    if (client) await client.close().catch(() => undefined);
  }

  private message(
    bucket: string,
    config: NotificationRecord,
    event: StorageEvent,
    render: (object: ObjectRecord) => ObjectResource,
  ): OutboxMessage {
    const object = event.object;
    const attributes: Record<string, string> = {
      ...(config.customAttributes ?? {}),
      notificationConfig: `projects/_/buckets/${bucket}/notificationConfigs/${config.id}`,
      eventType: event.eventType,
      payloadFormat: config.payloadFormat,
      bucketId: bucket,
      objectId: object.name,
      objectGeneration: String(object.generation),
      eventTime: event.eventType === 'OBJECT_FINALIZE' ? object.timeCreated : nowIso(),
    };
    if (event.overwroteGeneration !== undefined)
      attributes.overwroteGeneration = String(event.overwroteGeneration);
    if (event.overwrittenByGeneration !== undefined)
      attributes.overwrittenByGeneration = String(event.overwrittenByGeneration);
    const data = config.payloadFormat === 'JSON_API_V1' ? JSON.stringify(render(object)) : '';
    // Ids sort in emission order, so messages left in the outbox are sent again in order.
    const id = `${Date.now()}-${String(this.sequence++).padStart(9, '0')}-${uniqueSuffix()}`;
    return { id, topic: topicPath(config.topic), data, attributes };
  }

  private topic(path: string): Topic {
    this.client ??= new PubSub({
      projectId: this.pubsub.projectId,
      emulatorMode: true,
      apiEndpoint: this.pubsub.host,
      // Named here so the auth library does not probe for a GCE metadata server (offline, that
      // probe fails slowly and prints a warning).
      universeDomain: 'googleapis.com',
    });
    let topic = this.topics.get(path);
    if (!topic) {
      topic = this.client.topic(path, { batching: { maxMilliseconds: 5 } });
      this.topics.set(path, topic);
    }
    return topic;
  }

  /** Publishes the queue in order; on a transient failure waits and tries again. */
  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    void this.drain().finally(() => {
      this.pumping = false;
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0 && !this.closed) {
      const batch = this.pending.splice(0, this.pending.length);
      const results = await Promise.allSettled(batch.map((m) => this.publish(m)));
      const retry: OutboxMessage[] = [];
      results.forEach((result, i) => {
        const message = batch[i] as OutboxMessage;
        if (result.status === 'fulfilled') this.settle(message);
        else if (isTopicGone(result.reason) && this.goneForGood(message)) {
          this.log.warn(
            'dropping a notification for %s: the topic no longer exists',
            message.topic,
          );
          this.settle(message, false);
        } else retry.push(message);
      });
      if (retry.length > 0) {
        this.pending.unshift(...retry);
        this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 250), MAX_BACKOFF_MS);
        const reason = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        this.log.warn(
          'could not publish %d notification(s) (%s); retrying in %d ms',
          retry.length,
          errorMessage(reason.reason),
          this.backoffMs,
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.backoffMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      } else this.backoffMs = 0;
    }
  }

  private async publish(message: OutboxMessage): Promise<void> {
    await this.topic(message.topic).publishMessage({
      data: Buffer.from(message.data, 'utf8'),
      attributes: message.attributes,
    });
  }

  /**
   * A missing topic may only be missing for a moment: after the emulator restarts, the daemon
   * creates the saved topics again. A message is dropped once its topic stayed missing a while.
   */
  private goneForGood(message: OutboxMessage): boolean {
    const since = this.missingSince.get(message.id) ?? Date.now();
    this.missingSince.set(message.id, since);
    return Date.now() - since >= TOPIC_GRACE_MS;
  }

  private settle(message: OutboxMessage, published = true): void {
    this.missingSince.delete(message.id);
    if (published) this.published += 1;
    else this.dropped += 1;
    void rm(join(this.dir, `${message.id}.json`), { force: true });
    this.waiters.get(message.id)?.();
    this.waiters.delete(message.id);
  }
}

function isTopicGone(error: unknown): boolean {
  return hasCode(error, GrpcCode.NOT_FOUND);
}

function hasCode(error: unknown, code: number): boolean {
  return (error as { code?: unknown } | undefined)?.code === code;
}

function nowIso(): string {
  return new Date().toISOString();
}
