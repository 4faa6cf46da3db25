import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { PubSub } from '@google-cloud/pubsub';

import { silentLogger } from '../src/log.js';
import { freePort, startEmulator } from '../src/local/pubsub/emulator.js';

/**
 * Throughput of the ingest app end to end: single-event POSTs over keep-alive connections, each
 * answered only after the Pub/Sub emulator accepted the message. Prints requests per second and
 * latency percentiles.
 *
 *     node dist/bench/ingest-app.js [seconds=10] [concurrency=128]
 */

const seconds = Number(process.argv[2] ?? 10);
const concurrency = Number(process.argv[3] ?? 128);
const project = 'bench';

const event = JSON.stringify({
  event_datetime: '2020-11-16 22:59:59',
  event: 'add_to_cart',
  user_id: 'UID00002',
  client_id: 'CID00002',
  page: '/product-67890',
  page_previous: '/category-tshirts',
  ecommerce: {
    items: [
      {
        item_name: 'Google Sweater',
        item_id: '456789',
        price: 20.18,
        item_brand: 'Google',
        item_category: 'Apparel',
        item_variant: 'Blue',
        quantity: 1,
      },
    ],
  },
});

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cymbal-bench-ingest-'));
  const emulator = await startEmulator({
    port: 0,
    dataDir: dir,
    log: silentLogger,
    saveIntervalMs: 0,
  });
  const pubsub = new PubSub({ projectId: project, emulatorMode: true, apiEndpoint: emulator.host });
  await pubsub.createTopic('ecommerce-events');
  const port = await freePort();
  // INGEST_APP_NODE_ARGS, such as `--cpu-prof --cpu-prof-dir=/tmp/prof`, profiles the app alone.
  const nodeArgs = (process.env.INGEST_APP_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const app = spawn(process.execPath, [...nodeArgs, 'assets/ingest-app/src/index.js'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBSUB_EMULATOR_HOST: emulator.host,
      GOOGLE_CLOUD_PROJECT: project,
      METADATA_SERVER_DETECTION: 'none',
    },
    stdio: 'inherit',
  });
  const exited = new Promise((resolve) => app.once('exit', resolve));
  try {
    await waitUntilAnswering(port);
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    await load(port, agent, 2, concurrency); // warm-up
    const pids = { app: app.pid ?? 0, emulator: emulator.supervisor.pid ?? 0 };
    const before = {
      app: cpuMs(pids.app),
      emulator: cpuMs(pids.emulator),
      self: process.cpuUsage(),
    };
    const result = await load(port, agent, seconds, concurrency);
    const self = process.cpuUsage(before.self);
    const perThousand = (ms: number): string => ((ms / result.ok) * 1000).toFixed(0);
    const sorted = result.latencies.sort((a, b) => a - b);
    const at = (q: number): string => (sorted[Math.floor(q * (sorted.length - 1))] ?? 0).toFixed(1);
    console.log(
      `ingest app: ${(result.ok / seconds).toFixed(0)} events/s over ${seconds} s, ` +
        `concurrency ${concurrency}, ${result.failed} failed; latency ms p50 ${at(0.5)} p99 ${at(0.99)}`,
    );
    const appMs = cpuMs(pids.app) - before.app;
    const emulatorMs = cpuMs(pids.emulator) - before.emulator;
    console.log(
      `CPU ms per 1000 events: app ${perThousand(appMs)}, emulator ${perThousand(emulatorMs)}, ` +
        `load generator ${perThousand((self.user + self.system) / 1000)}`,
    );
    // On a shared machine the rate above says more about the neighbours than about the app; the
    // CPU it spent per event bounds what two idle cores would sustain.
    const perEvent = (appMs + emulatorMs) / result.ok;
    console.log(
      `bound on 2 idle cores (app + emulator, no load generator): ${(2000 / perEvent).toFixed(0)} events/s; ` +
        `the app alone on 1 core: ${((1000 * result.ok) / appMs).toFixed(0)} events/s; load average ${loadavg()[0]?.toFixed(1)}`,
    );
    agent.destroy();
  } finally {
    app.kill('SIGTERM');
    await exited;
    await pubsub.close();
    await emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function load(port: number, agent: Agent, secs: number, workers: number) {
  const end = Date.now() + secs * 1000;
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      const started = performance.now();
      const status = await postOnce(port, agent);
      latencies.push(performance.now() - started);
      if (status === 200) ok += 1;
      else failed += 1;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return { ok, failed, latencies };
}

function postOnce(port: number, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/json',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(event) },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.once('error', () => resolve(0));
    req.end(event);
  });
}

/** User plus system CPU time of a process (and its waited-for children), in milliseconds. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = [11, 12].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  return (ticks * 1000) / 100;
}

async function waitUntilAnswering(port: number): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the ingest app did not answer');
}

await main();
