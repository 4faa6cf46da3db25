import { randomUUID } from 'node:crypto';

import { templateBucket, videoBucket } from '../config.js';
import { check, createOrKeep, deleteIfPresent, expectThat, waitUntil } from '../steps/kit.js';
import { checkPair, deletePair, ensurePair, planPair, subscriptionPath } from '../steps/pubsub.js';
import type { TopicPair } from '../steps/pubsub.js';
import type { Check, PlanItem, StepContext, StepDefinition } from '../steps/types.js';

const pair = (ctx: StepContext): TopicPair => ({
  topic: ctx.config.notificationTopic,
  subscription: ctx.config.notificationSubscription,
});

/** The bucket's notification configs that publish to the lab's topic. */
async function labNotifications(ctx: StepContext) {
  const [notifications] = await ctx.clients.storage
    .bucket(videoBucket(ctx.config))
    .getNotifications();
  const suffix = `/topics/${ctx.config.notificationTopic}`;
  return notifications.filter((n) => String(n.metadata.topic ?? '').endsWith(suffix));
}

/**
 * Writes a probe object and waits for its notification on a subscription of its own, so the
 * check neither steals a message from the pipeline nor depends on it running.
 */
async function probeNotification(ctx: StepContext): Promise<string> {
  const { pubsub, storage } = ctx.clients;
  const bucket = videoBucket(ctx.config);
  const probeSubscription = `cymbal-lab-probe-${randomUUID().slice(0, 8)}`;
  const objectName = `cymbal-lab-probe/${randomUUID()}.txt`;
  await pubsub.topic(ctx.config.notificationTopic).createSubscription(probeSubscription);
  const subscription = pubsub.subscription(probeSubscription);
  try {
    await storage.bucket(bucket).file(objectName).save('probe', { contentType: 'text/plain' });
    const started = Date.now();
    const attributes = await waitUntil(
      'the upload notification',
      async () => {
        const [response] = await ctx.clients.subscriber.pull({
          subscription: subscriptionPath(ctx, probeSubscription),
          maxMessages: 10,
        });
        const found = (response.receivedMessages ?? []).find(
          (m) => m.message?.attributes?.objectId === objectName,
        );
        return found?.message?.attributes ?? undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, signal: ctx.signal },
    );
    expectThat(
      attributes.eventType === 'OBJECT_FINALIZE',
      `event type ${attributes.eventType ?? '?'}`,
    );
    expectThat(
      attributes.payloadFormat === 'JSON_API_V1',
      `payload ${attributes.payloadFormat ?? '?'}`,
    );
    return `an upload was announced in ${((Date.now() - started) / 1000).toFixed(1)} s (OBJECT_FINALIZE, JSON_API_V1)`;
  } finally {
    await subscription.delete().catch(() => undefined);
    await storage
      .bucket(bucket)
      .file(objectName)
      .delete({ ignoreNotFound: true })
      .catch(() => undefined);
  }
}

export const buckets: StepDefinition = {
  part: 2,
  number: 2,
  title: 'Create the buckets and the upload notification',
  explain:
    'Videos are uploaded to a bucket. A notification on that bucket publishes a Pub/Sub ' +
    'message each time an object is written, which is how the pipeline learns that there is ' +
    "a new video to analyse. A second bucket holds the pipeline's template.",
  commands: (c) => [
    `gcloud storage buckets create gs://${videoBucket(c)} --location ${c.region}`,
    `gcloud storage buckets create gs://${templateBucket(c)} --location ${c.region}`,
    `gcloud pubsub topics create ${c.notificationTopic}`,
    `gcloud pubsub subscriptions create ${c.notificationSubscription} --topic ${c.notificationTopic}`,
    `gcloud storage buckets notifications create gs://${videoBucket(c)} ` +
      `--topic=${c.notificationTopic} --payload-format=json`,
  ],
  needs: ['project'],
  outputs: ['videoBucket', 'templateBucket', 'notificationSubscription'],

  async plan(ctx) {
    const { storage } = ctx.clients;
    const items: PlanItem[] = [];
    for (const name of [videoBucket(ctx.config), templateBucket(ctx.config)]) {
      const [found] = await storage.bucket(name).exists();
      items.push({ action: found ? 'keep' : 'create', resource: `bucket ${name}` });
    }
    items.push(...(await planPair(ctx, pair(ctx))));
    const [videoExists] = await storage.bucket(videoBucket(ctx.config)).exists();
    const notified = videoExists && (await labNotifications(ctx)).length > 0;
    items.push({
      action: notified ? 'keep' : 'create',
      resource: `notification on ${videoBucket(ctx.config)}`,
      detail: `to ${ctx.config.notificationTopic}, JSON payload`,
    });
    return items;
  },

  async ensure(ctx) {
    const { storage } = ctx.clients;
    const c = ctx.config;
    for (const name of [videoBucket(c), templateBucket(c)]) {
      await createOrKeep(ctx.log, `bucket ${name}`, () =>
        storage.createBucket(name, { location: c.region }),
      );
    }
    await ensurePair(ctx, pair(ctx));
    if ((await labNotifications(ctx)).length === 0) {
      await storage
        .bucket(videoBucket(c))
        .createNotification(c.notificationTopic, { payloadFormat: 'JSON_API_V1' });
      ctx.log.info(`created a notification on ${videoBucket(c)} to ${c.notificationTopic}`);
    }
    return {
      videoBucket: videoBucket(c),
      templateBucket: templateBucket(c),
      notificationSubscription: subscriptionPath(ctx, c.notificationSubscription),
    };
  },

  async verify(ctx) {
    const { storage } = ctx.clients;
    const checks: Check[] = [];
    for (const name of [videoBucket(ctx.config), templateBucket(ctx.config)]) {
      checks.push(
        await check(`bucket ${name}`, async () => {
          const [found] = await storage.bucket(name).exists();
          expectThat(found, 'not found');
          return 'exists';
        }),
      );
    }
    checks.push(await checkPair(ctx, pair(ctx)));
    const notification = await check(`notification on ${videoBucket(ctx.config)}`, async () => {
      const found = await labNotifications(ctx);
      expectThat(found.length > 0, `none publishes to ${ctx.config.notificationTopic}`);
      const metadata = found[0]!.metadata as { payload_format?: string; payloadFormat?: string };
      const format = metadata.payload_format ?? metadata.payloadFormat ?? '';
      expectThat(format === 'JSON_API_V1', `payload format ${format || 'unset'}, not JSON_API_V1`);
      return `publishes to ${ctx.config.notificationTopic} with a JSON payload`;
    });
    checks.push(notification);
    if (notification.ok)
      checks.push(await check('uploads are announced', () => probeNotification(ctx)));
    return checks;
  },

  async teardown(ctx) {
    const { storage } = ctx.clients;
    const c = ctx.config;
    const [videoExists] = await storage.bucket(videoBucket(c)).exists();
    if (videoExists)
      for (const notification of await labNotifications(ctx)) await notification.delete();
    for (const name of [videoBucket(c), templateBucket(c)]) {
      await deleteIfPresent(ctx.log, `bucket ${name}`, async () => {
        await storage.bucket(name).deleteFiles({ force: true });
        await storage.bucket(name).delete();
      });
    }
    await deletePair(ctx, pair(ctx));
  },
};
