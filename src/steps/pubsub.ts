import { check, createOrKeep, deleteIfPresent, expectThat } from './kit.js';
import type { Check, PlanItem, StepContext } from './types.js';

/** A topic with one pull subscription on it, the shape every Pub/Sub resource of the lab has. */
export interface TopicPair {
  topic: string;
  subscription: string;
  /** Seconds; Pub/Sub's default of 10 when unset. */
  ackDeadlineSeconds?: number;
}

export async function planPair(ctx: StepContext, pair: TopicPair): Promise<PlanItem[]> {
  const { pubsub } = ctx.clients;
  const [topicExists] = await pubsub.topic(pair.topic).exists();
  const [subscriptionExists] = await pubsub.subscription(pair.subscription).exists();
  const deadline = pair.ackDeadlineSeconds;
  return [
    { action: topicExists ? 'keep' : 'create', resource: `topic ${pair.topic}` },
    {
      action: subscriptionExists ? 'keep' : 'create',
      resource: `subscription ${pair.subscription}`,
      ...(deadline ? { detail: `ack deadline ${deadline} s` } : {}),
    },
  ];
}

/** Creates what is missing and converges the ack deadline of a subscription that exists. */
export async function ensurePair(ctx: StepContext, pair: TopicPair): Promise<void> {
  const { pubsub } = ctx.clients;
  const deadline = pair.ackDeadlineSeconds;
  await createOrKeep(ctx.log, `topic ${pair.topic}`, () => pubsub.createTopic(pair.topic));
  const change = await createOrKeep(ctx.log, `subscription ${pair.subscription}`, () =>
    pubsub
      .topic(pair.topic)
      .createSubscription(pair.subscription, deadline ? { ackDeadlineSeconds: deadline } : {}),
  );
  if (change === 'kept' && deadline) {
    const subscription = pubsub.subscription(pair.subscription);
    const [metadata] = await subscription.getMetadata();
    if (metadata.ackDeadlineSeconds !== deadline) {
      await subscription.setMetadata({ ackDeadlineSeconds: deadline });
      ctx.log.info(`set the ack deadline of ${pair.subscription} to ${deadline} s`);
    }
  }
}

export async function checkPair(ctx: StepContext, pair: TopicPair): Promise<Check> {
  return check(`subscription ${pair.subscription}`, async () => {
    const [metadata] = await ctx.clients.pubsub.subscription(pair.subscription).getMetadata();
    const expected = `projects/${ctx.config.project}/topics/${pair.topic}`;
    expectThat(
      metadata.topic === expected,
      `reads ${metadata.topic ?? 'no topic'}, not ${expected}`,
    );
    const deadline = pair.ackDeadlineSeconds;
    if (deadline) {
      expectThat(
        metadata.ackDeadlineSeconds === deadline,
        `ack deadline is ${metadata.ackDeadlineSeconds ?? '?'} s, not ${deadline} s`,
      );
      return `reads ${pair.topic}, ack deadline ${deadline} s`;
    }
    return `reads ${pair.topic}`;
  });
}

export async function deletePair(ctx: StepContext, pair: TopicPair): Promise<void> {
  const { pubsub } = ctx.clients;
  await deleteIfPresent(ctx.log, `subscription ${pair.subscription}`, () =>
    pubsub.subscription(pair.subscription).delete(),
  );
  await deleteIfPresent(ctx.log, `topic ${pair.topic}`, () => pubsub.topic(pair.topic).delete());
}

export const subscriptionPath = (ctx: StepContext, name: string): string =>
  `projects/${ctx.config.project}/subscriptions/${name}`;
