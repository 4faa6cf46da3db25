import { GrpcCode } from '../errors.js';
import { check, expectThat } from '../steps/kit.js';
import { subscriptionPath } from '../steps/pubsub.js';
import type { StepContext, StepDefinition } from '../steps/types.js';

interface Detection {
  file_name?: unknown;
  entity?: unknown;
  frame_data?: Array<{ confidence?: unknown }>;
}

/** How long a pull waits on an empty subscription before the step calls it drained. */
const PULL_TIMEOUT_MS = 2_000;

/**
 * Pulls once; prints and acks each readable detection; reports and leaves unacked any message
 * that cannot be read, so it is delivered again rather than lost.
 */
async function pullOnce(ctx: StepContext): Promise<{ read: number; unreadable: number }> {
  const subscription = subscriptionPath(ctx, ctx.config.detectionSubscription);
  const [response] = await ctx.clients.subscriber.pull(
    { subscription, maxMessages: 100 },
    { timeout: PULL_TIMEOUT_MS },
  );
  const ackIds: string[] = [];
  let unreadable = 0;
  for (const received of response.receivedMessages ?? []) {
    const data = Buffer.from(received.message?.data ?? '').toString('utf8');
    let detection: Detection | undefined;
    try {
      detection = JSON.parse(data) as Detection;
    } catch {
      detection = undefined;
    }
    if (
      !detection ||
      typeof detection.entity !== 'string' ||
      typeof detection.file_name !== 'string'
    ) {
      unreadable += 1;
      ctx.print(
        `  cannot read message ${received.message?.messageId ?? '?'}: ${data.slice(0, 80)} (left unacked)`,
      );
      continue;
    }
    const best = Math.max(...(detection.frame_data ?? []).map((f) => Number(f.confidence ?? 0)), 0);
    ctx.print(
      `  ${detection.entity.padEnd(12)} ${detection.file_name}  (confidence up to ${best.toFixed(2)})`,
    );
    if (received.ackId) ackIds.push(received.ackId);
  }
  if (ackIds.length > 0) await ctx.clients.subscriber.acknowledge({ subscription, ackIds });
  return { read: ackIds.length, unreadable };
}

/**
 * Shows what the pipeline sent to the error topic, without taking it: the messages are pulled
 * and handed straight back for redelivery.
 */
export async function reportErrors(ctx: StepContext): Promise<void> {
  const subscription = subscriptionPath(ctx, ctx.config.errorSubscription);
  let received;
  try {
    [{ receivedMessages: received }] = await ctx.clients.subscriber.pull(
      { subscription, maxMessages: 20 },
      { timeout: PULL_TIMEOUT_MS },
    );
  } catch (error) {
    if (isTimeout(error)) return;
    throw error;
  }
  if (!received || received.length === 0) {
    ctx.print(`  nothing waits on ${ctx.config.errorSubscription}`);
    return;
  }
  ctx.print(`  on ${ctx.config.errorSubscription}:`);
  for (const message of received) {
    const text = Buffer.from(message.message?.data ?? '').toString('utf8');
    try {
      const error = JSON.parse(text) as Record<string, unknown>;
      const code = Number(error.error_code);
      const name = Object.entries(GrpcCode).find(([, value]) => value === code)?.[0] ?? 'error';
      ctx.print(`    ${String(error.file_name)}`);
      ctx.print(`      ${name} (${code}): ${String(error.error_message)}`);
    } catch {
      ctx.print(`    ${text.slice(0, 120)}`);
    }
  }
  const ackIds = received.map((m) => m.ackId ?? '').filter(Boolean);
  await ctx.clients.subscriber.modifyAckDeadline({ subscription, ackIds, ackDeadlineSeconds: 0 });
}

function isTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === GrpcCode.DEADLINE_EXCEEDED || code === 'DEADLINE_EXCEEDED';
}

export const consumeResults: StepDefinition = {
  part: 2,
  number: 8,
  title: 'Consume the filtered results',
  explain:
    'An application subscribes to the results topic and reacts to each detection. This step ' +
    'plays that application: it prints the entity and file of each message and acknowledges ' +
    'it, and reports any message it cannot read without acknowledging it. --follow keeps ' +
    'listening until Ctrl-C.',
  commands: (c) => [
    `gcloud pubsub subscriptions pull ${c.detectionSubscription} --auto-ack --limit 100`,
  ],
  needs: ['videosUploaded'],
  outputs: ['resultsConsumed'],

  async plan(ctx) {
    return [
      {
        action: 'run',
        resource: `pull ${ctx.config.detectionSubscription}`,
        detail: ctx.options.follow ? 'until Ctrl-C' : 'until it is empty',
      },
    ];
  },

  async ensure(ctx) {
    let read = 0;
    let unreadable = 0;
    let emptyPulls = 0;
    ctx.print(`Results from ${ctx.config.detectionSubscription}:`);
    // Without --follow, two empty pulls in a row mean the subscription is drained.
    while (ctx.options.follow || emptyPulls < 2) {
      if (ctx.signal.aborted) break;
      try {
        const batch = await pullOnce(ctx);
        read += batch.read;
        unreadable += batch.unreadable;
        emptyPulls = batch.read + batch.unreadable === 0 ? emptyPulls + 1 : 0;
      } catch (error) {
        if (!isTimeout(error)) throw error;
        emptyPulls += 1;
      }
    }
    ctx.print(
      `  ${read} results read and acknowledged${unreadable ? `, ${unreadable} unreadable left unacked` : ''}`,
    );
    const previous = Number(ctx.outputs.resultsConsumed ?? 0);
    return { resultsConsumed: String(previous + read) };
  },

  async verify(ctx) {
    const c = ctx.config;
    await reportErrors(ctx);
    const entities = c.entities
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    return [
      await check('annotations that qualify for the results topic', async () => {
        const [rows] = await ctx.clients.bigquery.query({
          query:
            `SELECT COUNT(DISTINCT CONCAT(file_name, "/", entity)) AS n FROM \`${c.project}.${c.videoDataset}.${c.videoTable}\`, ` +
            'UNNEST(frame_data) AS frame WHERE entity IN UNNEST(@entities) AND frame.confidence >= @threshold',
          params: { entities, threshold: c.confidenceThreshold },
        });
        const n = Number((rows[0] as { n: number }).n);
        expectThat(
          n > 0,
          `no ${entities.join(' or ')} seen at confidence ${c.confidenceThreshold} or more`,
        );
        return `${n} file and entity pairs for ${entities.join(', ')} at ${c.confidenceThreshold} or more`;
      }),
      await check('results were consumed', async () => {
        const consumed = Number(ctx.outputs.resultsConsumed ?? 0);
        expectThat(consumed > 0, 'no result message was read yet; run the step again');
        return `${consumed} messages read`;
      }),
    ];
  },

  // Consuming creates nothing.
  async teardown() {},
};
