import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Message, Subscription } from '@google-cloud/pubsub';
import { PubSub } from '@google-cloud/pubsub';
import type { Bucket } from '@google-cloud/storage';
import { Storage } from '@google-cloud/storage';

import { silentLogger } from '../../src/log.js';
import type { RunningHost } from '../../src/local/host.js';
import { openHost } from '../../src/local/host.js';
import type { RunningEmulator } from '../../src/local/pubsub/emulator.js';
import { startEmulator } from '../../src/local/pubsub/emulator.js';
import { storageServiceFactory } from '../../src/local/storage/service.js';

/**
 * Bucket notifications as the lab's Part 2 uses them: a config made with the official Storage
 * client publishes real messages to the real Pub/Sub emulator, with Google's attributes and the
 * object resource as JSON, for finalize, overwrite, metadata update and delete, honouring the
 * event type and prefix filters. Configs outlive a restart of the local cloud.
 */

const PROJECT = 'storage-notify-test';
const BUCKET = `${PROJECT}_videos`;

interface Received {
  attributes: Record<string, string>;
  data: string;
}

/** Collects every message of a subscription as it arrives. */
function collect(subscription: Subscription): Received[] {
  const received: Received[] = [];
  subscription.on('message', (message: Message) => {
    received.push({ attributes: { ...message.attributes }, data: message.data.toString('utf8') });
    message.ack();
  });
  return received;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('Cloud Storage notifications to Pub/Sub', () => {
  let dir: string;
  let emulator: RunningEmulator;
  let host: RunningHost;
  let storage: Storage;
  let pubsub: PubSub;
  let bucket: Bucket;
  let all: Received[];
  let videos: Received[];
  const subscriptions: Subscription[] = [];

  const openCloud = async (pubsubHost = emulator.host): Promise<void> => {
    host = await openHost({
      dataDir: join(dir, 'cloud'),
      port: 0,
      pubsubHost,
      projectId: PROJECT,
      log: silentLogger,
      factories: [storageServiceFactory],
    });
    storage = new Storage({ projectId: PROJECT, apiEndpoint: host.endpoint });
    bucket = storage.bucket(BUCKET);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-storage-notify-'));
    const start = (): Promise<RunningEmulator> =>
      startEmulator({
        port: 0,
        dataDir: dir,
        log: silentLogger,
        projectIds: [PROJECT],
        saveIntervalMs: 0,
      });
    // A free port can be taken by another program between the pick and the JVM's bind, which
    // happens when many suites start emulators at once; one more try makes that harmless.
    emulator = await start().catch(start);
    pubsub = new PubSub({ projectId: PROJECT, emulatorMode: true, apiEndpoint: emulator.host });
    for (const name of ['gcs-notification-topic', 'video-topic']) {
      const [topic] = await pubsub.createTopic(name);
      const [subscription] = await topic.createSubscription(`${name}-sub`);
      subscriptions.push(subscription);
    }
    all = collect(subscriptions[0] as Subscription);
    videos = collect(subscriptions[1] as Subscription);
    await openCloud();
    await storage.createBucket(BUCKET);
  }, 90_000);

  afterAll(async () => {
    for (const subscription of subscriptions) await subscription.close();
    await pubsub?.close();
    await host?.close();
    await emulator?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates, gets and lists configs, and refuses a topic that does not exist', async () => {
    const [notification, created] = await bucket.createNotification('gcs-notification-topic', {
      payloadFormat: 'JSON_API_V1',
    });
    expect(notification.id).toBe('1');
    expect(created).toMatchObject({
      kind: 'storage#notification',
      topic: `//pubsub.googleapis.com/projects/${PROJECT}/topics/gcs-notification-topic`,
      payload_format: 'JSON_API_V1',
    });
    const [filtered] = await bucket.createNotification('video-topic', {
      eventTypes: ['OBJECT_FINALIZE'],
      objectNamePrefix: 'clips/',
      customAttributes: { origin: 'camera' },
      payloadFormat: 'NONE',
    });
    expect(filtered.id).toBe('2');

    const [listed] = await bucket.getNotifications();
    expect(listed.map((n) => n.id)).toEqual(['1', '2']);
    const [meta] = await bucket.notification('2').getMetadata();
    expect(meta).toMatchObject({ event_types: ['OBJECT_FINALIZE'], object_name_prefix: 'clips/' });

    await expect(bucket.createNotification('no-such-topic')).rejects.toMatchObject({ code: 400 });
    await expect(bucket.notification('9').getMetadata()).rejects.toMatchObject({ code: 404 });
  });

  it('publishes OBJECT_FINALIZE with the attributes and JSON payload Google sends', async () => {
    await bucket.file('cat.mp4').save(Buffer.from('not really a video'), {
      resumable: false,
      contentType: 'video/mp4',
    });
    const [object] = await bucket.file('cat.mp4').getMetadata();
    const message = await until('the finalize of cat.mp4', () =>
      all.find((m) => m.attributes.objectId === 'cat.mp4'),
    );
    expect(message.attributes).toEqual({
      notificationConfig: `projects/_/buckets/${BUCKET}/notificationConfigs/1`,
      eventType: 'OBJECT_FINALIZE',
      payloadFormat: 'JSON_API_V1',
      bucketId: BUCKET,
      objectId: 'cat.mp4',
      objectGeneration: object.generation,
      eventTime: object.timeCreated,
    });
    const payload = JSON.parse(message.data) as Record<string, unknown>;
    expect(payload).toEqual(object);
    expect(payload).toMatchObject({
      kind: 'storage#object',
      bucket: BUCKET,
      name: 'cat.mp4',
      contentType: 'video/mp4',
      size: '18',
    });
  });

  it('reports an overwrite, a metadata update and a delete', async () => {
    const [before] = await bucket.file('cat.mp4').getMetadata();
    await bucket.file('cat.mp4').save('second take', { resumable: true });
    const [after] = await bucket.file('cat.mp4').getMetadata();

    const finalize = await until('the finalize that overwrote cat.mp4', () =>
      all.find((m) => m.attributes.overwroteGeneration !== undefined),
    );
    expect(finalize.attributes).toMatchObject({
      eventType: 'OBJECT_FINALIZE',
      objectGeneration: after.generation,
      overwroteGeneration: before.generation,
    });
    const replaced = await until('the delete of the replaced generation', () =>
      all.find((m) => m.attributes.overwrittenByGeneration !== undefined),
    );
    expect(replaced.attributes).toMatchObject({
      eventType: 'OBJECT_DELETE',
      objectGeneration: before.generation,
      overwrittenByGeneration: after.generation,
    });

    await bucket.file('cat.mp4').setMetadata({ metadata: { reviewed: 'yes' } });
    const update = await until('the metadata update', () =>
      all.find((m) => m.attributes.eventType === 'OBJECT_METADATA_UPDATE'),
    );
    expect(JSON.parse(update.data)).toMatchObject({
      metageneration: '2',
      metadata: { reviewed: 'yes' },
    });

    await bucket.file('cat.mp4').delete();
    const deleted = await until('the delete', () =>
      all.find(
        (m) => m.attributes.eventType === 'OBJECT_DELETE' && !m.attributes.overwrittenByGeneration,
      ),
    );
    expect(deleted.attributes).toMatchObject({
      objectId: 'cat.mp4',
      objectGeneration: after.generation,
    });
  });

  it('honours event type and prefix filters, custom attributes and payload NONE', async () => {
    await bucket.file('clips/dog~0.mp4').save('clip', { resumable: false });
    await bucket.file('other/dog.mp4').save('not under the prefix', { resumable: false });
    await bucket.file('clips/dog~0.mp4').delete();
    // Every config's messages are published before the API call answers, so by the time the
    // broad config has seen the delete, the filtered one has had its chance too.
    await until('the delete of the clip', () =>
      all.find(
        (m) =>
          m.attributes.objectId === 'clips/dog~0.mp4' && m.attributes.eventType === 'OBJECT_DELETE',
      ),
    );
    await until('the filtered finalize', () => (videos.length > 0 ? videos : undefined));
    expect(videos).toHaveLength(1);
    expect(videos[0]?.attributes).toMatchObject({
      notificationConfig: `projects/_/buckets/${BUCKET}/notificationConfigs/2`,
      eventType: 'OBJECT_FINALIZE',
      payloadFormat: 'NONE',
      objectId: 'clips/dog~0.mp4',
      origin: 'camera',
    });
    expect(videos[0]?.data).toBe('');
  });

  it('sends OBJECT_ARCHIVE where versioning keeps the old generation', async () => {
    const [versioned] = await storage.createBucket(`${PROJECT}_archive`, {
      versioning: { enabled: true },
    });
    await versioned.createNotification('gcs-notification-topic');
    const mine = (): Received[] => all.filter((m) => m.attributes.bucketId === versioned.name);

    await versioned.file('take.mp4').save('first', { resumable: false });
    const [first] = await versioned.file('take.mp4').getMetadata();
    await versioned.file('take.mp4').save('second', { resumable: false });
    const [second] = await versioned.file('take.mp4').getMetadata();
    const archive = await until('the archive of the first take', () =>
      mine().find((m) => m.attributes.eventType === 'OBJECT_ARCHIVE'),
    );
    expect(archive.attributes).toMatchObject({
      objectGeneration: first.generation,
      overwrittenByGeneration: second.generation,
    });
    expect(JSON.parse(archive.data)).toHaveProperty('timeDeleted');

    // Deleting the live object archives it too; deleting a noncurrent generation removes it.
    await versioned.file('take.mp4').delete();
    await versioned.file('take.mp4', { generation: Number(first.generation) }).delete();
    await until('the archive and the delete', () => (mine().length >= 5 ? mine() : undefined));
    const events = mine().map((m) => `${m.attributes.eventType} ${m.attributes.objectGeneration}`);
    expect(events.sort()).toEqual(
      [
        `OBJECT_FINALIZE ${first.generation}`,
        `OBJECT_FINALIZE ${second.generation}`,
        `OBJECT_ARCHIVE ${first.generation}`,
        `OBJECT_ARCHIVE ${second.generation}`,
        `OBJECT_DELETE ${first.generation}`,
      ].sort(),
    );
  });

  it('keeps notifications in its outbox while Pub/Sub is unreachable and sends them later', async () => {
    await host.close();
    // Nothing listens on 127.0.0.1:9 (discard): every publish fails.
    await openCloud('127.0.0.1:9');
    const started = Date.now();
    await bucket.file('while-down.mp4').save('queued', { resumable: false });
    expect(Date.now() - started).toBeLessThan(10_000);
    await host.close();
    expect(all.some((m) => m.attributes.objectId === 'while-down.mp4')).toBe(false);

    await openCloud();
    const late = await until('the queued finalize', () =>
      all.find((m) => m.attributes.objectId === 'while-down.mp4'),
    );
    expect(late.attributes.eventType).toBe('OBJECT_FINALIZE');
  }, 40_000);

  it('keeps configs across a restart and deletes them on request', async () => {
    await host.close();
    await openCloud();
    const [listed] = await bucket.getNotifications();
    expect(listed.map((n) => n.id)).toEqual(['1', '2']);

    await bucket.file('after-restart.mp4').save('again', { resumable: false });
    await until('a finalize after the restart', () =>
      all.find((m) => m.attributes.objectId === 'after-restart.mp4'),
    );

    await bucket.notification('1').delete();
    const [left] = await bucket.getNotifications();
    expect(left.map((n) => n.id)).toEqual(['2']);
    const [created] = await bucket.createNotification('gcs-notification-topic');
    expect(created.id).toBe('3');
  });
});
