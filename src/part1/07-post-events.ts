import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { LabError } from '../errors.js';
import type { GeneratedEvent } from '../sampledata/events.js';
import { EventTally, generateEvents } from '../sampledata/events.js';
import { check, expectThat, waitUntil } from '../steps/kit.js';
import type { StepContext, StepDefinition } from '../steps/types.js';
import type { PostResult } from './post.js';
import { postAll, postWithRetry } from './post.js';
import { eventTotals } from './totals.js';

const SAMPLES = ['view_item', 'add_to_cart', 'purchase'];
const DEFAULT_EVENTS = 1_000;
const CONCURRENCY = 32;

async function sampleBodies(ctx: StepContext): Promise<string[]> {
  return Promise.all(
    SAMPLES.map((name) =>
      readFile(join(ctx.assetsRoot, 'sample-data/events', `${name}.json`), 'utf8'),
    ),
  );
}

/** A sample file as the generator describes its events, so one tally counts both. */
function describeSample(body: string): GeneratedEvent {
  const event = JSON.parse(body) as {
    event: string;
    ecommerce?: { purchase?: { transaction_id: string; value: number; currency: string } };
  };
  const purchase = event.ecommerce?.purchase;
  return {
    body,
    kind: 'valid',
    name: event.event,
    ...(event.event === 'purchase' && purchase
      ? {
          purchase: {
            transactionId: purchase.transaction_id,
            valueCents: Math.round(purchase.value * 100),
            currency: purchase.currency as 'EUR',
          },
        }
      : {}),
  };
}

export const postEvents: StepDefinition = {
  part: 1,
  number: 7,
  title: 'Post e-commerce events to the ingest app',
  explain:
    'The lab posts three events, a product view, an add to cart and a purchase, as a website ' +
    'would. This step posts those three and then a stream of generated shopping sessions ' +
    '(--events, --rate), and counts what the app accepted and what it rejected.',
  commands: () =>
    SAMPLES.map(
      (name) =>
        `curl -X POST "$SERVICE_URL/json" -H "Content-Type: application/json" -d @sample-data/events/${name}.json`,
    ),
  needs: ['serviceUrl', 'jobId'],
  outputs: ['eventsAccepted', 'eventsRejected', 'purchasesAccepted', 'revenueAccepted'],

  async plan(ctx) {
    const count = ctx.options.events ?? DEFAULT_EVENTS;
    const samplesPosted = ctx.outputs.samplesPosted === 'yes';
    return [
      ...(samplesPosted
        ? []
        : [{ action: 'run' as const, resource: 'POST /json', detail: 'the 3 sample events' }]),
      {
        action: 'run',
        resource: 'POST /json',
        detail: `${count} generated events${ctx.options.rate ? ` at ${ctx.options.rate}/s` : ''}`,
      },
    ];
  },

  async ensure(ctx) {
    const url = `${ctx.outputs.serviceUrl}/json`;
    const runs = Number(ctx.outputs.postRuns ?? 0) + 1;
    const count = ctx.options.events ?? DEFAULT_EVENTS;
    const seed = ctx.options.seed ?? runs;
    const accepted = new EventTally();
    const rejections = new Map<string, number>();
    let rejected = 0;
    const events = new Map<string, GeneratedEvent>();

    // The samples go once: posting the same purchase twice would count it twice.
    const samples =
      ctx.outputs.samplesPosted === 'yes' ? [] : (await sampleBodies(ctx)).map(describeSample);
    for (const sample of samples) {
      const result = await postWithRetry(url, sample.body, ctx.signal);
      if (!result.accepted) {
        throw new LabError(
          `The app rejected the lab's ${sample.name ?? ''} sample: ${result.reason ?? result.status}.`,
        );
      }
      accepted.add(sample);
      ctx.print(`  posted the ${sample.name ?? ''} sample: ${result.status}`);
    }

    const generated = generateEvents({ count, seed });
    const bodies = (function* () {
      for (const event of generated) {
        events.set(event.body, event);
        yield event.body;
      }
    })();
    const progress = ctx.progress('posting events', count);
    await postAll(
      bodies,
      {
        url,
        concurrency: CONCURRENCY,
        ...(ctx.options.rate ? { rate: ctx.options.rate } : {}),
        signal: ctx.signal,
      },
      (body: string, result: PostResult) => {
        progress.tick();
        const event = events.get(body);
        events.delete(body);
        if (result.accepted && event) accepted.add(event);
        else if (!result.accepted) {
          rejected += 1;
          const reason = `${result.status} ${result.reason ?? ''}`.trim();
          rejections.set(reason, (rejections.get(reason) ?? 0) + 1);
        }
      },
    );
    progress.done();

    const totals = accepted.totals();
    ctx.print(
      `  accepted ${totals.total} events (${totals.purchases} purchases), rejected ${rejected}`,
    );
    for (const [reason, times] of [...rejections].slice(0, 5))
      ctx.print(`    ${times} × ${reason}`);

    const previous = (key: string) => Number(ctx.outputs[key] ?? 0);
    const expected = previous('eventsAccepted') + totals.total;
    // The query step comes next: wait until the pipeline has written every accepted event.
    const started = Date.now();
    await waitUntil(
      `${expected} events in the table`,
      async () => ((await eventTotals(ctx)).rows >= expected ? true : undefined),
      { timeoutMs: ctx.target.kind === 'local' ? 120_000 : 600_000, signal: ctx.signal },
    );
    ctx.log.info(
      `all ${expected} events are in the table (${((Date.now() - started) / 1000).toFixed(1)} s after the last post)`,
    );
    return {
      eventsAccepted: String(expected),
      eventsRejected: String(previous('eventsRejected') + rejected),
      purchasesAccepted: String(previous('purchasesAccepted') + totals.purchases),
      revenueAccepted: (previous('revenueAccepted') + totals.revenue).toFixed(2),
      samplesPosted: 'yes',
      postRuns: String(runs),
    };
  },

  async verify(ctx) {
    const base = ctx.outputs.serviceUrl ?? '';
    return [
      await check('the ingest app answers', async () => {
        const response = await fetch(base, { signal: ctx.signal });
        expectThat(response.ok, `GET / answered ${response.status}`);
        return `GET / answered ${response.status}`;
      }),
      await check('the ingest app rejects a broken event', async () => {
        const result = await postWithRetry(`${base}/json`, '{"event": "view_item"}', ctx.signal, 1);
        expectThat(!result.accepted && result.status === 400, `answered ${result.status}, not 400`);
        return `400: ${result.reason ?? ''}`;
      }),
    ];
  },

  // Posted events live on in the table; tearing down the table (step 4) removes them.
  async teardown() {},
};
