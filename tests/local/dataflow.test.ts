import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { GrpcCode } from '../../src/errors.js';

import type { Cloud } from './dataflow-fixture.js';
import {
  FLEX,
  PROJECT,
  REGION,
  eventTable,
  jobState,
  launchClassic,
  openCloud,
  rowsOf,
  subscription,
  waitFor,
  waitForState,
} from './dataflow-fixture.js';

describe('local Dataflow: Pub/Sub Subscription to BigQuery', () => {
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await openCloud();
  });

  afterAll(async () => {
    await cloud?.close();
  });

  it('launches the classic template, writes good rows and dead-letters the bad ones', async () => {
    const { clients } = cloud;
    const events = await eventTable(clients, 'retail', 'events');
    const { topic, name } = await subscription(clients, 'flow');
    const jobId = await launchClassic(clients, 'ecommerce-events-ps-to-bq-stream', {
      inputSubscription: name,
      outputTableSpec: `${PROJECT}:retail.events`,
    });
    expect(jobId).toMatch(/^\d{4}-\d{2}-\d{2}_\d{2}_\d{2}_\d{2}-\d+$/);
    await waitForState(clients, jobId, 'JOB_STATE_RUNNING');

    const attributes = { origin: 'gtm-cloud-run', username: 'gcp-demo' };
    const good = [
      { event: 'view_item', user_id: 'u1', seq: 1, event_datetime: '2020-11-16 22:59:59' },
      {
        event: 'purchase',
        user_id: 'u2',
        seq: 2,
        ecommerce: { items: [{ item_id: '7', price: 1.5 }], purchase: { value: 35.43 } },
      },
    ];
    for (const event of good) await topic.publishMessage({ json: event, attributes });
    const bad = ['{"event": "view_item", ', '[1, 2, 3]'];
    for (const text of bad) await topic.publishMessage({ data: Buffer.from(text), attributes });
    const rejected = [
      { event: 'view_item', user_id: 'u3', colour: 'blue' },
      { event: 'view_item', user_id: 'u4', seq: 'not a number' },
      { event: 'view_item' },
    ];
    for (const event of rejected) await topic.publishMessage({ json: event, attributes });

    const rows = await waitFor('2 rows', async () => {
      const found = await rowsOf(events);
      return found.length >= 2 ? found : undefined;
    });
    expect(rows.map((r) => r.user_id).sort()).toEqual(['u1', 'u2']);
    const purchase = rows.find((r) => r.event === 'purchase') as {
      ecommerce: { items: { item_id: number }[]; purchase: { value: number } };
    };
    expect(purchase.ecommerce.purchase.value).toBeCloseTo(35.43);
    expect(Number(purchase.ecommerce.items[0]?.item_id)).toBe(7);

    const deadLetters = clients.bigquery.dataset('retail').table('events_error_records');
    const dead = await waitFor('5 dead letters', async () => {
      const found = await rowsOf(deadLetters);
      return found.length >= 5 ? found : undefined;
    });
    expect(dead).toHaveLength(5);
    const byPayload = new Map(dead.map((r) => [r.payloadString as string, r]));
    expect(byPayload.get(bad[0] ?? '')?.errorMessage).toMatch(/^Payload is not valid JSON/);
    expect(byPayload.get(bad[1] ?? '')?.errorMessage).toMatch(/not a JSON object/);
    const unknownField = dead.find((r) => String(r.payloadString).includes('colour'));
    expect(String(unknownField?.errorMessage)).toMatch(/"reason":"invalid"/);
    expect(String(unknownField?.errorMessage)).toMatch(/colour/);
    const wrongType = dead.find((r) => String(r.payloadString).includes('not a number'));
    expect(String(wrongType?.errorMessage)).toMatch(/"reason":"invalid"/);
    const missing = dead.find((r) => r.payloadString === JSON.stringify(rejected[2]));
    expect(String(missing?.errorMessage)).toMatch(/user_id/);
    const first = byPayload.get(bad[0] ?? '');
    // The client decodes BYTES (sent as base64) to a Buffer.
    expect((first?.payloadBytes as Buffer).toString('utf8')).toBe(bad[0]);
    expect(first?.attributes).toEqual(
      expect.arrayContaining([{ key: 'origin', value: 'gtm-cloud-run' }]),
    );

    // The job reports what it did.
    const [job] = await clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId });
    expect(job.type).toBe('JOB_TYPE_STREAMING');
    expect(job.jobMetadata?.pubsubDetails?.[0]?.subscription).toBe(name);
    const display = await waitFor('metrics to count the rows', async () => {
      const [latest] = await clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId });
      const props = latest.jobMetadata?.userDisplayProperties ?? {};
      return props.elementsWritten === '2' && props.deadLettered === '5' ? props : undefined;
    });
    expect(display.throughput).toMatch(/rows\/s$/);
    const status = await cloud.host.status();
    const line = status.find((s) => s.name === 'dataflow')?.resources[0];
    expect(line?.name).toBe('ecommerce-events-ps-to-bq-stream');
    expect(line?.detail).toMatch(/^RUNNING, \d+ rows\/s, 2 written, 5 dead-lettered/);

    // A second job with the same name is refused while the first runs.
    await expect(
      launchClassic(clients, 'ecommerce-events-ps-to-bq-stream', {
        inputSubscription: name,
        outputTableSpec: `${PROJECT}:retail.events`,
      }),
    ).rejects.toMatchObject({ code: GrpcCode.ALREADY_EXISTS });

    // Drain: the job stops reading, finishes and ends DRAINED.
    const [draining] = await clients.jobs.updateJob({
      projectId: PROJECT,
      location: REGION,
      jobId,
      job: { requestedState: 'JOB_STATE_DRAINED' },
    });
    expect(draining.currentState).toBe('JOB_STATE_DRAINING');
    await waitForState(clients, jobId, 'JOB_STATE_DRAINED');
  });

  it('launches the Flex variant, lists jobs by filter and cancels', async () => {
    const { clients } = cloud;
    await eventTable(clients, 'flexds', 'events');
    const { name } = await subscription(clients, 'flex');
    const [response] = await clients.flexTemplates.launchFlexTemplate({
      projectId: PROJECT,
      location: REGION,
      launchParameter: {
        jobName: 'flex-job',
        containerSpecGcsPath: FLEX,
        parameters: { inputSubscription: name, outputTableSpec: `${PROJECT}:flexds.events` },
      },
    });
    const jobId = response.job?.id ?? '';
    await waitForState(clients, jobId, 'JOB_STATE_RUNNING');

    const names = async (filter: 'ACTIVE' | 'TERMINATED' | 'ALL') => {
      const [jobs] = await clients.jobs.listJobs(
        { projectId: PROJECT, location: REGION, filter },
        { autoPaginate: false },
      );
      return jobs.map((j) => j.name).sort();
    };
    expect(await names('ACTIVE')).toEqual(['flex-job']);
    expect(await names('TERMINATED')).toEqual(['ecommerce-events-ps-to-bq-stream']);

    const pid = cloud.dataflow.engine.pidOf(jobId);
    expect(pid).toBeGreaterThan(0);
    const [cancelled] = await clients.jobs.updateJob({
      projectId: PROJECT,
      location: REGION,
      jobId,
      job: { requestedState: 'JOB_STATE_CANCELLED' },
    });
    expect(cancelled.currentState).toBe('JOB_STATE_CANCELLED');
    expect(cloud.dataflow.engine.pidOf(jobId)).toBeUndefined();
    expect(await names('ACTIVE')).toEqual([]);
    expect(await names('ALL')).toEqual(['ecommerce-events-ps-to-bq-stream', 'flex-job']);
    await expect(
      clients.jobs.updateJob({
        projectId: PROJECT,
        location: REGION,
        jobId,
        job: { requestedState: 'JOB_STATE_DRAINED' },
      }),
    ).rejects.toMatchObject({ code: GrpcCode.FAILED_PRECONDITION });
  });

  it('refuses an unknown template, naming the ones it runs', async () => {
    const launch = launchClassic(
      cloud.clients,
      'mystery',
      { inputFile: 'gs://b/f' },
      `gs://dataflow-templates-${REGION}/latest/GCS_Text_to_BigQuery`,
    );
    await expect(launch).rejects.toMatchObject({ code: GrpcCode.INVALID_ARGUMENT });
    await expect(launch).rejects.toThrow(/PubSub_Subscription_to_BigQuery/);
    const flexAsClassic = launchClassic(cloud.clients, 'wrong-kind', {}, FLEX);
    await expect(flexAsClassic).rejects.toThrow(/is a Flex template: launch it with flexTemplates/);
  });

  it('refuses parameters the template would refuse', async () => {
    const launch = launchClassic(cloud.clients, 'bad-params', {
      inputSubscription: 'ecommerce-events-pull',
      outputTableSpec: `${PROJECT}:retail.events`,
    });
    await expect(launch).rejects.toThrow(/projects\/PROJECT\/subscriptions\/NAME/);
  });

  it('fails a job whose output table does not exist, and says why', async () => {
    const { clients } = cloud;
    const { name } = await subscription(clients, 'missing');
    const jobId = await launchClassic(clients, 'missing-table', {
      inputSubscription: name,
      outputTableSpec: `${PROJECT}:retail.no_such_table`,
    });
    await waitForState(clients, jobId, 'JOB_STATE_FAILED');
    expect(await jobState(clients, jobId)).toBe('JOB_STATE_FAILED');
    expect(cloud.dataflow.engine.pidOf(jobId)).toBeUndefined();
    const record = cloud.dataflow.engine.get(PROJECT, REGION, jobId);
    const errors = record.messages.filter((m) => m.messageImportance === 'JOB_MESSAGE_ERROR');
    expect(errors.map((m) => m.messageText).join('\n')).toMatch(
      /output table dataflow-test:retail.no_such_table does not exist. The template never creates it/,
    );
    const [tables] = await clients.bigquery.dataset('retail').getTables();
    expect(tables.map((t) => t.id)).not.toContain('no_such_table');
  });

  it('answers NOT_FOUND for a job that does not exist', async () => {
    await expect(
      cloud.clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId: 'nope' }),
    ).rejects.toMatchObject({ code: GrpcCode.NOT_FOUND });
  });
});
