import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Cloud } from './dataflow-fixture.js';
import {
  PROJECT,
  eventTable,
  launchClassic,
  openCloud,
  rowsOf,
  subscription,
  waitFor,
  waitForState,
} from './dataflow-fixture.js';

const UDF = `
function transform(inJson) {
  var e = JSON.parse(inJson);
  if (e.kind === 'throw') throw new Error('refusing event ' + e.seq);
  if (e.kind === 'loop') { for (;;) {} }
  if (e.kind === 'drop') return null;
  e.event = e.event.toUpperCase();
  delete e.kind;
  return JSON.stringify(e);
}`;

const sampleUdf = readFileSync(
  fileURLToPath(new URL('../../../assets/udf/transform.js', import.meta.url)),
  'utf8',
);

describe('local Dataflow: the JavaScript UDF', () => {
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await openCloud();
    const [bucket] = await cloud.clients.storage.createBucket(`${PROJECT}-udf`);
    await bucket.file('udf/test.js').save(UDF);
    await bucket.file('udf/transform.js').save(sampleUdf);
  });

  afterAll(async () => {
    await cloud?.close();
  });

  it('transforms, dead-letters throwing and looping calls, and drops on null', async () => {
    const { clients } = cloud;
    const events = await eventTable(clients, 'udf', 'events');
    const { topic, name } = await subscription(clients, 'udf');
    const jobId = await launchClassic(clients, 'udf-job', {
      inputSubscription: name,
      outputTableSpec: `${PROJECT}:udf.events`,
      outputDeadletterTable: `${PROJECT}:udf.dead_letters`,
      javascriptTextTransformGcsPath: `gs://${PROJECT}-udf/udf/test.js`,
      javascriptTextTransformFunctionName: 'transform',
    });
    await waitForState(clients, jobId, 'JOB_STATE_RUNNING');

    const kinds = ['keep', 'throw', 'keep', 'loop', 'drop', 'keep', 'drop'];
    for (const [seq, kind] of kinds.entries()) {
      await topic.publishMessage({ json: { event: 'view_item', user_id: `u${seq}`, seq, kind } });
    }

    const rows = await waitFor('3 rows', async () => {
      const found = await rowsOf(events);
      return found.length >= 3 ? found : undefined;
    });
    expect(rows.map((r) => [r.event, Number(r.seq)]).sort()).toEqual([
      ['VIEW_ITEM', 0],
      ['VIEW_ITEM', 2],
      ['VIEW_ITEM', 5],
    ]);
    const deadLetters = clients.bigquery.dataset('udf').table('dead_letters');
    const dead = await waitFor('2 dead letters', async () => {
      const found = await rowsOf(deadLetters);
      return found.length >= 2 ? found : undefined;
    });
    const reasons = dead.map((r) => String(r.errorMessage)).sort();
    expect(reasons[0]).toBe('Error: refusing event 1');
    expect(reasons[1]).toMatch(/^UDF call exceeded the time limit of \d+ ms\.$/);
    const thrown = dead.find((r) => r.errorMessage === 'Error: refusing event 1');
    expect(JSON.parse(String(thrown?.payloadString))).toMatchObject({ seq: 1, kind: 'throw' });
    expect(String(thrown?.stacktrace)).toContain('udf/test.js');

    const metrics = await waitFor('the drops to be counted', () => {
      const m = cloud.dataflow.engine.metrics(jobId);
      return m && m.dropped === 2 && m.elementsWritten === 3 ? m : undefined;
    });
    expect(metrics.deadLettered).toBe(2);
    expect(await rowsOf(events)).toHaveLength(3);
  });

  it('runs the sample UDF from assets/udf read from Cloud Storage', async () => {
    const { clients } = cloud;
    const events = await eventTable(clients, 'sample', 'events');
    const { topic, name } = await subscription(clients, 'sample');
    const jobId = await launchClassic(clients, 'sample-udf-job', {
      inputSubscription: name,
      outputTableSpec: `${PROJECT}:sample.events`,
      javascriptTextTransformGcsPath: `gs://${PROJECT}-udf/udf/transform.js`,
      javascriptTextTransformFunctionName: 'process',
      javascriptTextTransformReloadIntervalMinutes: '1',
    });
    await waitForState(clients, jobId, 'JOB_STATE_RUNNING');
    await topic.publishMessage({ json: { event: 'Add To Cart', user_id: 'u1' } });
    await topic.publishMessage({ json: { event: 'view_item', user_id: 'test-7' } });
    await topic.publishMessage({ json: { user_id: 'u2' } });
    const rows = await waitFor('the normalised row', async () => {
      const found = await rowsOf(events);
      return found.length >= 1 ? found : undefined;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]?.event).toBe('add_to_cart');
    expect(rows[0]?.event_datetime).toBeTruthy();
    const dead = await waitFor('the dead letter', async () => {
      const found = await rowsOf(clients.bigquery.dataset('sample').table('events_error_records'));
      return found.length >= 1 ? found : undefined;
    });
    expect(dead[0]?.errorMessage).toBe('Error: the event has no "event" name');
  });
});
