import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Clients } from '../../src/cloud/clients.js';
import { createClients } from '../../src/cloud/clients.js';
import { silentLogger } from '../../src/log.js';
import type { RunningEmulator } from '../../src/local/pubsub/emulator.js';
import { freePort, startEmulator } from '../../src/local/pubsub/emulator.js';

/**
 * The ingest app (assets/ingest-app) as a real process against a real Pub/Sub emulator: what
 * it accepts arrives in the topic with its attributes, what it rejects never does, and SIGTERM
 * lets the requests in flight finish.
 */

const PROJECT = 'ingest-test';
const TOPIC = 'ecommerce-events';
const SUBSCRIPTION = 'ecommerce-events-pull';
const APP = join(process.cwd(), 'assets/ingest-app/src/index.js');

const purchase = {
  event_datetime: '2020-11-16 22:59:59',
  event: 'purchase',
  user_id: 'UID00003',
  client_id: 'CID00003',
  page: '/product-67890',
  page_previous: '/order-confirmation',
  ecommerce: {
    purchase: {
      transaction_id: 'T12345',
      affiliation: 'Online Store',
      value: 35.43,
      tax: 4.9,
      shipping: 5.99,
      currency: 'EUR',
      coupon: 'SUMMER_SALE',
      items: [
        {
          item_name: 'Triblend Android T-Shirt',
          item_id: '345678',
          item_price: 15.25,
          quantity: 1,
        },
        { item_name: 'Google Sweater', item_id: '456789', item_price: 20.18, quantity: 1 },
      ],
    },
  },
};

interface App {
  url: string;
  child: ChildProcess;
  logLines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

async function startApp(env: Record<string, string>): Promise<App> {
  const port = await freePort();
  const child = spawn(process.execPath, [APP], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logLines: Array<Record<string, unknown>> = [];
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) logLines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true);
  return { url, child, logLines, exited };
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function post(url: string, body: string, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

describe('ingest app', () => {
  let dir: string;
  let emulator: RunningEmulator;
  let clients: Clients;
  let app: App;
  let env: Record<string, string>;

  interface Received {
    data: unknown;
    attributes: Record<string, string>;
  }

  /** Pulls until `count` messages arrived, then checks briefly that no more follow. */
  async function receive(count: number): Promise<Received[]> {
    const subscription = `projects/${PROJECT}/subscriptions/${SUBSCRIPTION}`;
    const got: Received[] = [];
    const pullOnce = async (): Promise<void> => {
      const [response] = await clients.subscriber
        .pull({ subscription, maxMessages: 1000 }, { timeout: 1_000 })
        .catch(() => [{ receivedMessages: [] }]);
      const messages = response.receivedMessages ?? [];
      if (messages.length === 0) return;
      for (const m of messages) {
        const data = Buffer.from(m.message?.data ?? '').toString('utf8');
        got.push({ data: JSON.parse(data), attributes: { ...(m.message?.attributes ?? {}) } });
      }
      await clients.subscriber.acknowledge({
        subscription,
        ackIds: messages.map((m) => m.ackId ?? ''),
      });
    };
    await until(async () => {
      await pullOnce();
      return got.length >= count;
    });
    await pullOnce();
    return got;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-ingest-'));
    emulator = await startEmulator({ port: 0, dataDir: dir, log: silentLogger, saveIntervalMs: 0 });
    clients = createClients({
      kind: 'local',
      projectId: PROJECT,
      region: 'us-central1',
      local: { api: 'http://127.0.0.1:1', pubsub: emulator.host },
    });
    const [topic] = await clients.pubsub.createTopic(TOPIC);
    await topic.createSubscription(SUBSCRIPTION, { ackDeadlineSeconds: 20 });
    env = {
      PUBSUB_EMULATOR_HOST: emulator.host,
      GOOGLE_CLOUD_PROJECT: PROJECT,
      MAX_BODY_BYTES: '4096',
      // No metadata server here: skip the client's probe for one.
      METADATA_SERVER_DETECTION: 'none',
    };
    app = await startApp(env);
  }, 60_000);

  afterAll(async () => {
    app?.child.kill('SIGKILL');
    await clients?.close();
    await emulator?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('greets and reports health', async () => {
    const greeting = await fetch(app.url);
    expect(greeting.status).toBe(200);
    expect(((await greeting.json()) as { message: string }).message).toMatch(/POST .* \/json/);
    const health = await fetch(`${app.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok', inFlight: 0 });
  });

  it('publishes a valid event with its attributes, answering once Pub/Sub accepted it', async () => {
    const response = await post(`${app.url}/json`, JSON.stringify(purchase));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { messageId: string };
    expect(body.messageId).toMatch(/\S/);
    const [message, ...more] = await receive(1);
    expect(more).toHaveLength(0);
    expect(message?.data).toEqual(purchase);
    expect(message?.attributes).toEqual({ origin: 'gtm-cloud-run', username: 'gcp-demo' });
  });

  it('rejects invalid events with the field and the reason, publishing none of them', async () => {
    const logged = app.logLines.length;
    const cases: Array<[unknown, string, RegExp]> = [
      [{ ...purchase, user_id: undefined }, 'user_id', /is required/],
      [
        { event: 'x', user_id: 'u', ecommerce: { items: [{ quantity: 'two' }] } },
        'ecommerce.items[0].quantity',
        /integer/,
      ],
      [
        { event: 'x', user_id: 'u', ecommerce: { purchase: { value: 'lots' } } },
        'ecommerce.purchase.value',
        /number/,
      ],
      [
        { event: 'x', user_id: 'u', event_datetime: '2020-13-01 00:00:00' },
        'event_datetime',
        /timestamp/,
      ],
      [{ event: 'x', user_id: 'u', colour: 'red' }, 'colour', /not a column/],
      [[purchase], '', /JSON object/],
    ];
    for (const [event, field, reason] of cases) {
      const response = await post(`${app.url}/json`, JSON.stringify(event));
      expect(response.status).toBe(400);
      const { error } = (await response.json()) as { error: { field: string; reason: string } };
      expect(error.field).toBe(field);
      expect(error.reason).toMatch(reason);
    }
    const malformed = await post(`${app.url}/json`, '{"event": "purchase",');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { message: string } }).error.message).toMatch(
      /not valid JSON/,
    );
    // One marker proves the topic works; it must be the only message that arrives.
    await post(`${app.url}/json`, JSON.stringify({ event: 'marker', user_id: 'u' }));
    const received = await receive(1);
    expect(received.map((m) => m.data)).toEqual([{ event: 'marker', user_id: 'u' }]);
    const problems = app.logLines.slice(logged);
    expect(problems).toHaveLength(cases.length + 1);
    expect(problems[0]).toMatchObject({ severity: 'WARNING', field: 'user_id' });
  });

  it('answers 413 to a body over the limit', async () => {
    const big = JSON.stringify({ event: 'x', user_id: 'u', page: 'p'.repeat(5000) });
    const response = await post(`${app.url}/json`, big);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /4096 bytes/,
    );
  });

  it('publishes a batch with a result per event, as an array or as NDJSON', async () => {
    const events = [1, 2, 3].map((n) => ({ event: 'view_item', user_id: `U${n}` }));
    const mixed = await post(`${app.url}/json/batch`, JSON.stringify([...events, { event: 'x' }]));
    expect(mixed.status).toBe(207);
    const answer = (await mixed.json()) as {
      published: number;
      rejected: number;
      results: Array<{ index: number; messageId?: string; error?: { field: string } }>;
    };
    expect(answer).toMatchObject({ published: 3, rejected: 1 });
    expect(answer.results[3]).toMatchObject({ index: 3, error: { field: 'user_id' } });
    expect(answer.results.slice(0, 3).every((r) => typeof r.messageId === 'string')).toBe(true);

    const ndjson = `${JSON.stringify({ event: 'a', user_id: 'n1' })}\n\n${JSON.stringify({ event: 'b', user_id: 'n2' })}\n`;
    const lines = await post(`${app.url}/json/batch`, ndjson, {
      'content-type': 'application/x-ndjson',
    });
    expect(lines.status).toBe(200);
    const received = await receive(5);
    expect(received.map((m) => (m.data as { user_id: string }).user_id).sort()).toEqual([
      'U1',
      'U2',
      'U3',
      'n1',
      'n2',
    ]);
  });

  it('on SIGTERM stops accepting, finishes the requests in flight and exits 0', async () => {
    // A long batch window holds the messages in the client until SIGTERM flushes them.
    const slow = await startApp({ ...env, PUBLISH_BATCH_MAX_MS: '20000' });
    const sent = Array.from({ length: 20 }, (_, i) =>
      post(`${slow.url}/json`, JSON.stringify({ event: 'drain', user_id: `D${i}` })),
    );
    await until(async () => {
      const health = (await (await fetch(`${slow.url}/healthz`)).json()) as { inFlight: number };
      return health.inFlight === 20;
    });
    const started = Date.now();
    slow.child.kill('SIGTERM');
    const statuses = await Promise.all(sent.map(async (r) => (await r).status));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(await slow.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(fetch(slow.url)).rejects.toThrow();
    const received = await receive(20);
    expect(received).toHaveLength(20);
  });
});
