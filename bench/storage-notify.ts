import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Message } from '@google-cloud/pubsub';
import { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';

import { silentLogger } from '../src/log.js';
import { openHost } from '../src/local/host.js';
import { startEmulator } from '../src/local/pubsub/emulator.js';
import { storageServiceFactory } from '../src/local/storage/service.js';

/**
 * Latency of bucket notifications, as Part 2 relies on them: small uploads with the official
 * client, one after another, each timed from the start of the upload to the arrival of its
 * OBJECT_FINALIZE message on a streaming-pull subscriber of the real Pub/Sub emulator.
 *
 *     node dist/bench/storage-notify.js [uploads=200]
 */

const uploads = Number(process.argv[2] ?? 200);
const project = 'bench-notify';
const dir = mkdtempSync(join(tmpdir(), 'cymbal-bench-notify-'));
const emulator = await startEmulator({
  port: 0,
  dataDir: dir,
  log: silentLogger,
  projectIds: [project],
  saveIntervalMs: 0,
});
const pubsub = new PubSub({ projectId: project, emulatorMode: true, apiEndpoint: emulator.host });
const [topic] = await pubsub.createTopic('gcs-notification-topic');
const [subscription] = await topic.createSubscription('gcs-notification-subscription');
const host = await openHost({
  dataDir: join(dir, 'cloud'),
  port: 0,
  pubsubHost: emulator.host,
  projectId: project,
  log: silentLogger,
  factories: [storageServiceFactory],
});
const storage = new Storage({ projectId: project, apiEndpoint: host.endpoint });
const [bucket] = await storage.createBucket(`${project}_videos`);
await bucket.createNotification('gcs-notification-topic', { eventTypes: ['OBJECT_FINALIZE'] });

const arrived = new Map<string, () => void>();
subscription.on('message', (message: Message) => {
  message.ack();
  arrived.get(message.attributes.objectId ?? '')?.();
});

const answered: number[] = [];
const delivered: number[] = [];
for (let i = 0; i < uploads; i++) {
  const name = `clip-${i}.mp4`;
  const message = new Promise<void>((resolve) => arrived.set(name, resolve));
  const started = performance.now();
  await bucket.file(name).save(`frame data ${i}`, { resumable: false });
  answered.push(performance.now() - started);
  await message;
  delivered.push(performance.now() - started);
}

const percentile = (values: number[], p: number): string => {
  const sorted = [...values].sort((a, b) => a - b);
  return (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0).toFixed(
    1,
  );
};
console.log(`${uploads} uploads, one at a time`);
console.log(
  `upload answered   p50 ${percentile(answered, 50)} ms, p99 ${percentile(answered, 99)} ms`,
);
console.log(
  `message delivered p50 ${percentile(delivered, 50)} ms, p99 ${percentile(delivered, 99)} ms`,
);

await subscription.close();
await pubsub.close();
await host.close();
await emulator.stop();
rmSync(dir, { recursive: true, force: true });
