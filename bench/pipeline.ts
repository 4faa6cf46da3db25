/**
 * How fast the local "Pub/Sub Subscription to BigQuery" job moves events from the Pub/Sub
 * emulator into a BigQuery table, and how long an event takes from publish to visible.
 *
 *     node dist/bench/pipeline.js [bulk=100000] [rate=4000] [seconds=15] [shape=nested]
 *
 * It starts a real local cloud daemon in a temporary state directory (as `cymbal-lab local start`
 * does), so the daemon (BigQuery on DuckDB, Dataflow), the job's own process, the emulator's JVM
 * and this process (publisher and observer) share the machine as they would in the lab.
 *
 * - bulk: `bulk` events (about 500 bytes each, lab-style purchase events) wait in the
 *   subscription before the job is launched; the figure is events per second from the job
 *   reporting RUNNING until the last row is visible in the table.
 * - rate: the job runs; events are published at `rate` per second for `seconds`. Latency is the
 *   job's own measure, from each message's publish time to BigQuery answering its insert (the
 *   row is then visible to queries), as p50 and p99 over 10-s windows.
 *   `rate=0` skips this part; several rates can be given as `4000,8000`.
 * - shape: `nested` events carry the lab's `ecommerce.purchase` record with two repeated items;
 *   `flat` events (same size) have top-level columns only, which shows how much of the cost is
 *   the local BigQuery's handling of RECORD and REPEATED columns.
 */
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Table } from '@google-cloud/bigquery';
import type { Topic } from '@google-cloud/pubsub';

import type { Clients } from '../src/cloud/clients.js';
import { createClients } from '../src/cloud/clients.js';
import { silentLogger } from '../src/log.js';
import { ensureLocalCloud, stopLocalCloud } from '../src/local/lifecycle.js';
import { freePort } from '../src/local/pubsub/emulator.js';
import { percentile } from '../src/pipelines/pubsub-to-bigquery/metrics.js';

const PROJECT = 'cymbal-bench';
const REGION = 'us-central1';
const TEMPLATE = `gs://dataflow-templates-${REGION}/latest/PubSub_Subscription_to_BigQuery`;

const SCHEMA = {
  fields: [
    { name: 'event_datetime', type: 'TIMESTAMP', mode: 'NULLABLE' },
    { name: 'event', type: 'STRING', mode: 'REQUIRED' },
    { name: 'user_id', type: 'STRING', mode: 'REQUIRED' },
    { name: 'client_id', type: 'STRING', mode: 'NULLABLE' },
    { name: 'page', type: 'STRING', mode: 'NULLABLE' },
    { name: 'seq', type: 'INTEGER', mode: 'NULLABLE' },
    {
      name: 'ecommerce',
      type: 'RECORD',
      mode: 'NULLABLE',
      fields: [
        {
          name: 'purchase',
          type: 'RECORD',
          mode: 'NULLABLE',
          fields: [
            { name: 'transaction_id', type: 'STRING', mode: 'NULLABLE' },
            { name: 'currency', type: 'STRING', mode: 'NULLABLE' },
            { name: 'value', type: 'FLOAT', mode: 'NULLABLE' },
            {
              name: 'items',
              type: 'RECORD',
              mode: 'REPEATED',
              fields: [
                { name: 'item_name', type: 'STRING', mode: 'NULLABLE' },
                { name: 'item_id', type: 'INTEGER', mode: 'NULLABLE' },
                { name: 'item_price', type: 'FLOAT', mode: 'NULLABLE' },
                { name: 'quantity', type: 'INTEGER', mode: 'NULLABLE' },
              ],
            },
          ],
        },
      ],
    },
  ],
};

let shape: 'nested' | 'flat' = 'nested';

function event(seq: number): Buffer {
  if (shape === 'flat') {
    return Buffer.from(
      JSON.stringify({
        event_datetime: '2020-11-16 22:59:59',
        event: 'purchase',
        user_id: `UID${seq % 5000}`,
        client_id: `CID${seq % 7919}`,
        page: `https://cymbal-direct.example/checkout/${'x'.repeat(300)}`,
        seq,
      }),
    );
  }
  return Buffer.from(
    JSON.stringify({
      event_datetime: '2020-11-16 22:59:59',
      event: 'purchase',
      user_id: `UID${seq % 5000}`,
      client_id: `CID${seq % 7919}`,
      page: 'https://cymbal-direct.example/checkout',
      seq,
      ecommerce: {
        purchase: {
          transaction_id: `T${seq}`,
          currency: 'EUR',
          value: 35.43,
          items: [
            {
              item_name: 'Donut Friday Scented T-Shirt',
              item_id: 67890,
              item_price: 33.75,
              quantity: 1,
            },
            { item_name: 'Android Baby Tee', item_id: 12345, item_price: 1.68, quantity: 1 },
          ],
        },
      },
    }),
  );
}

const out = (line = ''): boolean => process.stdout.write(`${line}\n`);

let stateDir = '';

/**
 * CPU time (user + system, milliseconds) of the local cloud's processes: the daemon (BigQuery and
 * Dataflow), the job processes it started, and the emulator's JVM. CPU per event does not depend
 * on what else runs on the machine, unlike events per second.
 */
function cpuByRole(): Map<number, { role: 'daemon' | 'jobs' | 'emulator'; ms: number }> {
  const found = new Map<number, { role: 'daemon' | 'jobs' | 'emulator'; ms: number }>();
  const stats = new Map<number, { ppid: number; ms: number; cmd: string; cwd: string }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      stats.set(Number(entry), {
        ppid: Number(fields[1]),
        ms: ticks * 10,
        cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8'),
        cwd: readlinkSync(`/proc/${entry}/cwd`),
      });
    } catch {
      // The process ended while being read.
    }
  }
  const daemon = [...stats.entries()].find(
    ([, p]) => p.cmd.includes('daemon.js') && p.cmd.includes(stateDir),
  );
  for (const [pid, p] of stats) {
    if (daemon && pid === daemon[0]) found.set(pid, { role: 'daemon', ms: p.ms });
    else if (p.cwd.startsWith(stateDir) && p.cmd.includes('java')) {
      found.set(pid, { role: 'emulator', ms: p.ms });
    } else if (daemon && p.ppid === daemon[0] && p.cmd.includes('pipelines')) {
      found.set(pid, { role: 'jobs', ms: p.ms });
    }
  }
  return found;
}

/** CPU per event by role between two readings; a process that ended in between is left out. */
function cpuReport(before: ReturnType<typeof cpuByRole>, events: number): string {
  const spent = { daemon: 0, jobs: 0, emulator: 0 };
  for (const [pid, now] of cpuByRole()) spent[now.role] += now.ms - (before.get(pid)?.ms ?? 0);
  const us = (role: keyof typeof spent) => (spent[role] * 1000) / events;
  const total = us('daemon') + us('jobs') + us('emulator');
  return (
    `CPU per event: job ${us('jobs').toFixed(0)} us, daemon (BigQuery, Dataflow) ` +
    `${us('daemon').toFixed(0)} us, emulator ${us('emulator').toFixed(0)} us; ` +
    `total ${total.toFixed(0)} us, a ceiling of ~${Math.round(2e6 / total)} events/s on 2 idle cores`
  );
}

async function setUp(
  clients: Clients,
  name: string,
): Promise<{ topic: Topic; sub: string; table: Table }> {
  const [topic] = await clients.pubsub.createTopic(`${name}-topic`, {});
  const [sub] = await topic.createSubscription(`${name}-sub`, { ackDeadlineSeconds: 20 });
  const dataset = clients.bigquery.dataset('bench');
  const [exists] = await dataset.exists();
  if (!exists) await dataset.create();
  const [table] = await dataset.createTable(name.replace(/-/g, '_'), { schema: SCHEMA });
  return { topic, sub: sub.name, table };
}

async function launch(clients: Clients, name: string, sub: string, table: Table): Promise<string> {
  const [response] = await clients.templates.launchTemplate({
    projectId: PROJECT,
    location: REGION,
    gcsPath: TEMPLATE,
    launchParameters: {
      jobName: name,
      parameters: { inputSubscription: sub, outputTableSpec: `${PROJECT}:bench.${table.id}` },
    },
  });
  const id = response.job?.id ?? '';
  for (;;) {
    const [job] = await clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId: id });
    if (job.currentState === 'JOB_STATE_RUNNING') return id;
    if (job.currentState === 'JOB_STATE_FAILED') throw new Error(`job ${name} failed`);
    await sleep(50);
  }
}

async function drain(clients: Clients, jobId: string): Promise<void> {
  await clients.jobs.updateJob({
    projectId: PROJECT,
    location: REGION,
    jobId,
    job: { requestedState: 'JOB_STATE_DRAINED' },
  });
}

async function count(clients: Clients, table: Table): Promise<number> {
  const [rows] = await clients.bigquery.query(`SELECT COUNT(*) AS n FROM bench.${table.id}`);
  return Number((rows[0] as { n: number }).n);
}

async function writtenByJob(clients: Clients, jobId: string): Promise<number> {
  const [job] = await clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId });
  return Number(job.jobMetadata?.userDisplayProperties?.elementsWritten ?? 0);
}

async function publishAll(topic: Topic, total: number): Promise<number> {
  const publisher = topic.pubsub.topic(topic.name, {
    batching: { maxMessages: 1000, maxMilliseconds: 20 },
  });
  const began = performance.now();
  const chunk = 5000;
  for (let start = 0; start < total; start += chunk) {
    const sends: Promise<string>[] = [];
    for (let seq = start; seq < Math.min(total, start + chunk); seq++) {
      sends.push(publisher.publishMessage({ data: event(seq) }));
    }
    await Promise.all(sends);
  }
  return total / ((performance.now() - began) / 1000);
}

async function bulk(clients: Clients, total: number): Promise<void> {
  const { topic, sub, table } = await setUp(clients, 'bulk');
  const publishRate = await publishAll(topic, total);
  out(`bulk: ${total} events waiting (published at ${Math.round(publishRate)}/s)`);
  const cpuBefore = cpuByRole();
  const launched = performance.now();
  const jobId = await launch(clients, 'bench-bulk', sub, table);
  const running = performance.now();
  let seen = 0;
  // A COUNT query costs the daemon far more CPU than the rows themselves; follow the job's own
  // count of committed rows instead, then check the table once.
  while (seen < total) {
    await sleep(250);
    seen = await writtenByJob(clients, jobId);
  }
  seen = await count(clients, table);
  if (seen !== total) throw new Error(`the table has ${seen} rows, not ${total}`);
  const done = performance.now();
  const seconds = (done - running) / 1000;
  out(
    `bulk: ${total} rows in ${seconds.toFixed(2)} s after RUNNING ` +
      `(launch to RUNNING ${((running - launched) / 1000).toFixed(2)} s): ` +
      `${Math.round(total / seconds)} events/s`,
  );
  out(`bulk: ${cpuReport(cpuBefore, total)} (job start-up included)`);
  await drain(clients, jobId);
}

async function atRate(clients: Clients, rate: number, seconds: number): Promise<void> {
  const name = `rate-${rate}`;
  const { topic, sub, table } = await setUp(clients, name);
  const jobId = await launch(clients, `bench-${name}`, sub, table);
  const publisher = topic.pubsub.topic(topic.name, {
    batching: { maxMessages: 500, maxMilliseconds: 5 },
  });
  const total = rate * seconds;
  const cpuBefore = cpuByRole();
  let published = 0;
  const began = performance.now();
  const publishing = (async () => {
    const tickMs = 10;
    while (published < total) {
      const due = Math.min(total, Math.floor(((performance.now() - began) / 1000) * rate));
      for (; published < due; published++) {
        void publisher.publishMessage({ data: event(published) });
      }
      await sleep(tickMs);
    }
    await publisher.flush();
  })();

  // Querying the table often enough to time each row would cost the daemon more CPU than the
  // rows themselves. The job measures every message from its publish time to the moment
  // BigQuery answered the insert (the row is then visible to queries) and reports p50 and p99
  // over the last 10 s; the worst window of the run is kept.
  let written = 0;
  let worstP99 = 0;
  const p50s: number[] = [];
  const deadline = began + seconds * 1000 + 60_000;
  while (written < total && performance.now() < deadline) {
    await sleep(1000);
    const [job] = await clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId });
    const props = job.jobMetadata?.userDisplayProperties ?? {};
    written = Number(props.elementsWritten ?? 0);
    const latency = /p50 (\d+) ms, p99 (\d+) ms/.exec(props.latency ?? '');
    if (latency && written > 0) {
      p50s.push(Number(latency[1]));
      worstP99 = Math.max(worstP99, Number(latency[2]));
    }
  }
  await publishing;
  const elapsed = (performance.now() - began) / 1000;
  const visible = await count(clients, table);
  p50s.sort((a, b) => a - b);
  out(
    `rate ${rate}/s for ${seconds} s: ${visible}/${total} rows visible after ` +
      `${elapsed.toFixed(1)} s (${Math.round(visible / elapsed)} events/s end to end), ` +
      `publish-to-visible p50 ${percentile(p50s, 0.5)} ms, worst 10-s p99 ${worstP99} ms`,
  );
  out(`rate ${rate}/s: ${cpuReport(cpuBefore, total)} `);
  await drain(clients, jobId);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  const bulkCount = Number(process.argv[2] ?? 100_000);
  const rates = String(process.argv[3] ?? '4000')
    .split(',')
    .map(Number)
    .filter((r) => r > 0);
  const seconds = Number(process.argv[4] ?? 15);
  shape = process.argv[5] === 'flat' ? 'flat' : 'nested';
  out(`events: ${shape}, ${event(0).length} bytes`);
  stateDir = mkdtempSync(join(tmpdir(), 'cymbal-bench-pipeline-'));
  const [port, pubsubPort] = [await freePort(), await freePort()];
  const endpoints = await ensureLocalCloud({
    stateDir,
    port,
    pubsubPort,
    projectId: PROJECT,
    log: silentLogger,
  });
  const clients = createClients({
    kind: 'local',
    projectId: PROJECT,
    region: REGION,
    local: endpoints,
  });
  try {
    if (bulkCount > 0) await bulk(clients, bulkCount);
    for (const rate of rates) await atRate(clients, rate, seconds);
  } finally {
    await clients.close();
    await stopLocalCloud(stateDir);
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
