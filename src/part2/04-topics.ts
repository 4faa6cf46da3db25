import { checkPair, deletePair, ensurePair, planPair, subscriptionPath } from '../steps/pubsub.js';
import type { TopicPair } from '../steps/pubsub.js';
import type { StepContext, StepDefinition } from '../steps/types.js';

const pairs = (ctx: StepContext): TopicPair[] => [
  { topic: ctx.config.detectionTopic, subscription: ctx.config.detectionSubscription },
  { topic: ctx.config.errorTopic, subscription: ctx.config.errorSubscription },
];

export const resultTopics: StepDefinition = {
  part: 2,
  number: 4,
  title: 'Create the topics for filtered results and errors',
  explain:
    'Every annotation goes to BigQuery, but the entities you care about, seen with high ' +
    'confidence, are also published to a topic for applications that react in real time. ' +
    'Failures go to an error topic so that nothing fails silently.',
  commands: (c) => [
    `gcloud pubsub topics create ${c.detectionTopic}`,
    `gcloud pubsub subscriptions create ${c.detectionSubscription} --topic ${c.detectionTopic}`,
    `gcloud pubsub topics create ${c.errorTopic}`,
    `gcloud pubsub subscriptions create ${c.errorSubscription} --topic ${c.errorTopic}`,
  ],
  needs: ['project'],
  outputs: ['detectionSubscription', 'errorSubscription'],
  plan: async (ctx) => (await Promise.all(pairs(ctx).map((p) => planPair(ctx, p)))).flat(),
  async ensure(ctx) {
    for (const pair of pairs(ctx)) await ensurePair(ctx, pair);
    return {
      detectionSubscription: subscriptionPath(ctx, ctx.config.detectionSubscription),
      errorSubscription: subscriptionPath(ctx, ctx.config.errorSubscription),
    };
  },
  verify: (ctx) => Promise.all(pairs(ctx).map((p) => checkPair(ctx, p))),
  async teardown(ctx) {
    for (const pair of pairs(ctx)) await deletePair(ctx, pair);
  },
};
