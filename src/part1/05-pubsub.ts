import { checkPair, deletePair, ensurePair, planPair, subscriptionPath } from '../steps/pubsub.js';
import type { TopicPair } from '../steps/pubsub.js';
import type { StepContext, StepDefinition } from '../steps/types.js';

/** The lab's ack deadline: how long the pipeline has to write a message before redelivery. */
export const ACK_DEADLINE_SECONDS = 20;

const pair = (ctx: StepContext): TopicPair => ({
  topic: ctx.config.topic,
  subscription: ctx.config.subscription,
  ackDeadlineSeconds: ACK_DEADLINE_SECONDS,
});

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
  plan: (ctx) => planPair(ctx, pair(ctx)),
  async ensure(ctx) {
    await ensurePair(ctx, pair(ctx));
    return {
      topic: `projects/${ctx.config.project}/topics/${ctx.config.topic}`,
      subscription: subscriptionPath(ctx, ctx.config.subscription),
    };
  },
  verify: async (ctx) => [await checkPair(ctx, pair(ctx))],
  teardown: (ctx) => deletePair(ctx, pair(ctx)),
};
