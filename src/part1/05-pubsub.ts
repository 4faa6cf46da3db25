import { check, createOrKeep, deleteIfPresent, expectThat } from '../steps/kit.js';
import type { PlanItem, StepDefinition } from '../steps/types.js';

/** The lab's ack deadline: how long the pipeline has to write a message before redelivery. */
export const ACK_DEADLINE_SECONDS = 20;

export const eventsTopic: StepDefinition = {
  part: 1,
  number: 5,
  title: 'Create the Pub/Sub topic and subscription',
  explain:
    'Pub/Sub decouples the ingest app from the pipeline: the app publishes each event to a ' +
    'topic and returns at once, and the pipeline reads them from a subscription at its own ' +
    'pace. A message not acknowledged within the ack deadline is delivered again.',
  commands: (c) => [
    `gcloud pubsub topics create ${c.topic}`,
    `gcloud pubsub subscriptions create ${c.subscription} --topic ${c.topic} ` +
      `--ack-deadline ${ACK_DEADLINE_SECONDS}`,
  ],
  needs: ['project'],
  outputs: ['topic', 'subscription'],

  async plan(ctx) {
    const { pubsub } = ctx.clients;
    const { topic, subscription } = ctx.config;
    const [topicExists] = await pubsub.topic(topic).exists();
    const [subscriptionExists] = await pubsub.subscription(subscription).exists();
    const items: PlanItem[] = [
      { action: topicExists ? 'keep' : 'create', resource: `topic ${topic}` },
      {
        action: subscriptionExists ? 'keep' : 'create',
        resource: `subscription ${subscription}`,
        detail: `ack deadline ${ACK_DEADLINE_SECONDS} s`,
      },
    ];
    return items;
  },

  async ensure(ctx) {
    const { pubsub } = ctx.clients;
    const { topic, subscription, project } = ctx.config;
    await createOrKeep(ctx.log, `topic ${topic}`, () => pubsub.createTopic(topic));
    const change = await createOrKeep(ctx.log, `subscription ${subscription}`, () =>
      pubsub
        .topic(topic)
        .createSubscription(subscription, { ackDeadlineSeconds: ACK_DEADLINE_SECONDS }),
    );
    if (change === 'kept') {
      const [metadata] = await pubsub.subscription(subscription).getMetadata();
      if (metadata.ackDeadlineSeconds !== ACK_DEADLINE_SECONDS) {
        await pubsub
          .subscription(subscription)
          .setMetadata({ ackDeadlineSeconds: ACK_DEADLINE_SECONDS });
        ctx.log.info(`set the ack deadline of ${subscription} to ${ACK_DEADLINE_SECONDS} s`);
      }
    }
    return {
      topic: `projects/${project}/topics/${topic}`,
      subscription: `projects/${project}/subscriptions/${subscription}`,
    };
  },

  async verify(ctx) {
    const { pubsub } = ctx.clients;
    const { topic, subscription, project } = ctx.config;
    return [
      await check(`topic ${topic}`, async () => {
        const [found] = await pubsub.topic(topic).exists();
        expectThat(found, 'not found');
        return 'exists';
      }),
      await check(`subscription ${subscription}`, async () => {
        const [metadata] = await pubsub.subscription(subscription).getMetadata();
        const expected = `projects/${project}/topics/${topic}`;
        expectThat(
          metadata.topic === expected,
          `reads ${metadata.topic ?? 'no topic'}, not ${expected}`,
        );
        expectThat(
          metadata.ackDeadlineSeconds === ACK_DEADLINE_SECONDS,
          `ack deadline is ${metadata.ackDeadlineSeconds ?? '?'} s, not ${ACK_DEADLINE_SECONDS} s`,
        );
        return `reads ${topic}, ack deadline ${ACK_DEADLINE_SECONDS} s`;
      }),
    ];
  },

  async teardown(ctx) {
    const { pubsub } = ctx.clients;
    const { topic, subscription } = ctx.config;
    await deleteIfPresent(ctx.log, `subscription ${subscription}`, () =>
      pubsub.subscription(subscription).delete(),
    );
    await deleteIfPresent(ctx.log, `topic ${topic}`, () => pubsub.topic(topic).delete());
  },
};
