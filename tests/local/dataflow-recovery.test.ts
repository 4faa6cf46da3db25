import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Clients } from '../../src/cloud/clients.js';
import type { Cloud } from './dataflow-fixture.js';
import {
  PROJECT,
  eventTable,
  jobState,
  launchClassic,
  openCloud,
  subscription,
  waitFor,
} from './dataflow-fixture.js';

async function counts(clients: Clients, table: string): Promise<{ n: number; distinct: number }> {
  const [rows] = await clients.bigquery.query(
    `SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d FROM \`${PROJECT}.recovery.${table}\``,
  );
  const row = rows[0] as { n: number | string; d: number | string };
  return { n: Number(row.n), distinct: Number(row.d) };
}

describe('local Dataflow: a job survives its process and the local cloud', () => {
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await openCloud();
  });

  afterAll(async () => {
    await cloud?.close();
  });

  it('restarts a killed job process without losing or duplicating a row', async () => {
    const { clients } = cloud;
    await eventTable(clients, 'recovery', 'events');
    const { topic, name } = await subscription(clients, 'recovery', 10);
    const jobId = await launchClassic(clients, 'recovery-job', {
      inputSubscription: name,
      outputTableSpec: `${PROJECT}:recovery.events`,
    });
    await waitFor('RUNNING', async () =>
      (await jobState(clients, jobId)) === 'JOB_STATE_RUNNING' ? true : undefined,
    );
    const firstPid = cloud.dataflow.engine.pidOf(jobId) ?? 0;
    expect(firstPid).toBeGreaterThan(0);

    // Publish in waves while the process is killed in the middle of the load.
    const total = 6000;
    const wave = 300;
    let killed = false;
    for (let seq = 0; seq < total; seq += wave) {
      await Promise.all(
        Array.from({ length: wave }, (_, i) =>
          topic.publishMessage({ json: { event: 'view_item', user_id: 'u', seq: seq + i } }),
        ),
      );
      if (!killed && seq >= total / 3) {
        const written = cloud.dataflow.engine.metrics(jobId)?.elementsWritten ?? 0;
        process.kill(firstPid, 'SIGKILL');
        killed = true;
        expect(written).toBeLessThan(total);
      }
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    expect(killed).toBe(true);
    const secondPid = await waitFor('a new process', () => {
      const pid = cloud.dataflow.engine.pidOf(jobId);
      return pid && pid !== firstPid ? pid : undefined;
    });
    expect(secondPid).not.toBe(firstPid);

    // Messages the killed process held come back after the 10 s ack deadline.
    const final = await waitFor(
      `${total} rows`,
      async () => {
        const c = await counts(clients, 'events');
        return c.n >= total ? c : undefined;
      },
      45_000,
      500,
    );
    expect(final).toEqual({ n: total, distinct: total });
    expect(await jobState(clients, jobId)).toBe('JOB_STATE_RUNNING');
    const record = cloud.dataflow.engine.get(PROJECT, 'us-central1', jobId);
    expect(record.messages.map((m) => m.messageText).join('\n')).toMatch(
      /exited unexpectedly \(signal SIGKILL\); it is restarted/,
    );

    // The local cloud restarts: the RUNNING job starts again and keeps writing.
    await cloud.reopen();
    expect(await jobState(cloud.clients, jobId)).toBe('JOB_STATE_RUNNING');
    const resumedPid = cloud.dataflow.engine.pidOf(jobId);
    expect(resumedPid).toBeGreaterThan(0);
    expect(resumedPid).not.toBe(secondPid);
    await cloud.clients.pubsub
      .topic(topic.name)
      .publishMessage({ json: { event: 'view_item', user_id: 'u', seq: total } });
    const after = await waitFor(
      'the row published after the restart',
      async () => {
        const c = await counts(cloud.clients, 'events');
        return c.n > total ? c : undefined;
      },
      20_000,
      200,
    );
    expect(after).toEqual({ n: total + 1, distinct: total + 1 });
  });
});
