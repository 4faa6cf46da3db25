import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PubSub } from '@google-cloud/pubsub';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { renderStatus } from '../../src/cli/local-commands.js';
import type { LocalEndpoints } from '../../src/cloud/target.js';
import { LabError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { DaemonInfo } from '../../src/local/daemon-info.js';
import { daemonPaths } from '../../src/local/daemon-info.js';
import {
  ensureLocalCloud,
  localCloudStatus,
  localEnv,
  runningDaemon,
  stopLocalCloud,
} from '../../src/local/lifecycle.js';
import { freePort } from '../../src/local/pubsub/emulator.js';
import { isProcessAlive } from '../../src/local/supervisor.js';

const projectId = 'cymbal-lab-local';
const stateDirs: string[] = [];
let stateDir: string;
let port: number;
let pubsubPort: number;
let endpoints: LocalEndpoints;
let blocker: Server | undefined;

function newStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cymbal-lifecycle-'));
  stateDirs.push(dir);
  return dir;
}

function start(dir = stateDir): Promise<LocalEndpoints> {
  return ensureLocalCloud({ stateDir: dir, port, pubsubPort, projectId, log: silentLogger });
}

function pubsub(): PubSub {
  return new PubSub({ projectId, emulatorMode: true, apiEndpoint: endpoints.pubsub });
}

/** Local addresses (hex, as the kernel writes them) listening on a TCP port. */
function listeners(tcpPort: number): string[] {
  const hexPort = tcpPort.toString(16).toUpperCase().padStart(4, '0');
  const found: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [address, portHex] = (fields[1] ?? '').split(':');
      if (portHex === hexPort && fields[3] === '0A' && address) found.push(address);
    }
  }
  return found;
}

function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  stateDir = newStateDir();
  port = await freePort();
  pubsubPort = await freePort();
  endpoints = await start();
});

afterAll(async () => {
  for (const dir of stateDirs) await stopLocalCloud(dir, 10_000);
  blocker?.close();
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
});

describe('local cloud lifecycle', () => {
  it('starts a daemon that answers on 127.0.0.1 only', () => {
    expect(endpoints).toEqual({
      api: `http://127.0.0.1:${port}`,
      pubsub: `127.0.0.1:${pubsubPort}`,
    });
    // 0100007F is 127.0.0.1 in /proc/net/tcp; nothing listens on 0.0.0.0 or another address.
    expect(listeners(port)).toEqual(['0100007F']);
    expect(listeners(pubsubPort)).toEqual(['0100007F']);
    const info = JSON.parse(readFileSync(daemonPaths(stateDir).info, 'utf8')) as DaemonInfo;
    expect(info.endpoint).toBe(endpoints.api);
    expect(info.projectId).toBe(projectId);
    expect(isProcessAlive(info.pid)).toBe(true);
  });

  it('reports every service, the daemon memory and the JVM memory apart', async () => {
    const status = await localCloudStatus(stateDir);
    expect(status).toBeDefined();
    const names = status!.services.map((s) => s.name);
    expect(names).toContain('pubsub');
    for (const service of status!.services) expect(service.state).toBe('running');
    expect(status!.daemon.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(status!.emulator.rssBytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(status!.emulator.pid).not.toBe(status!.daemon.pid);
  });

  it('keeps topics and subscriptions across stop and start', async () => {
    const client = pubsub();
    const [topic] = await client.createTopic('ecommerce-events');
    await topic.createSubscription('ecommerce-events-pull', { ackDeadlineSeconds: 20 });
    await client.close();
    const info = await runningDaemon(stateDir);

    expect(await stopLocalCloud(stateDir)).toBe(true);
    expect(isProcessAlive(info!.pid)).toBe(false);
    expect(existsSync(daemonPaths(stateDir).info)).toBe(false);
    expect(await localCloudStatus(stateDir)).toBeUndefined();

    endpoints = await start();
    const again = pubsub();
    const [subscriptions] = await again.getSubscriptions();
    await again.close();
    expect(subscriptions.map((s) => s.name)).toEqual([
      `projects/${projectId}/subscriptions/ecommerce-events-pull`,
    ]);
    const status = await localCloudStatus(stateDir);
    const pubsubStatus = status!.services.find((s) => s.name === 'pubsub');
    expect(pubsubStatus?.resources).toContainEqual({ kind: 'topic', name: 'ecommerce-events' });
  });

  it('renders the status as readable tables', async () => {
    const text = renderStatus((await localCloudStatus(stateDir))!);
    expect(text).toMatch(/^Local cloud {2}running · pid \d+/);
    expect(text).toMatch(/Pub\/Sub emulator JVM \d+ MB \(running\)/);
    expect(text).toMatch(/^pubsub +running +127\.0\.0\.1:\d+/m);
    expect(text).toMatch(
      /^pubsub +subscription +ecommerce-events-pull +topic ecommerce-events, ack 20s$/m,
    );
  });

  it('answers a second start with the running daemon', async () => {
    const before = await runningDaemon(stateDir);
    expect(await start()).toEqual(endpoints);
    expect((await runningDaemon(stateDir))?.pid).toBe(before?.pid);
  });

  it('refuses a request for another host name', async () => {
    expect(await getWithHost(`${endpoints.api}/_cymbal/health`, 'evil.example')).toBe(403);
    expect(await getWithHost(`${endpoints.api}/_cymbal/health`, `127.0.0.1:${port}`)).toBe(200);
  });

  it('prints the environment for a shell', () => {
    const lines = localEnv(endpoints, projectId).trim().split('\n');
    expect(lines).toContain(`export PUBSUB_EMULATOR_HOST=127.0.0.1:${pubsubPort}`);
    expect(lines).toContain(`export BIGQUERY_EMULATOR_HOST=http://127.0.0.1:${port}`);
    expect(lines).toContain(`export GOOGLE_CLOUD_PROJECT=${projectId}`);
  });

  it('names the setting to change when a port is in use', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
    const busy = (blocker.address() as { port: number }).port;
    const error = await ensureLocalCloud({
      stateDir: newStateDir(),
      port: busy,
      pubsubPort: 0,
      projectId,
      log: silentLogger,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LabError);
    expect((error as LabError).message).toContain(`Port ${busy}`);
    expect((error as LabError).hint).toContain('cymbal-lab config set localPort PORT');
  });

  it("passes on the daemon's own explanation when it cannot start", async () => {
    const dir = newStateDir();
    const previous = process.env.CYMBAL_LAB_PUBSUB_EMULATOR;
    process.env.CYMBAL_LAB_PUBSUB_EMULATOR = join(dir, 'no-emulator-here');
    try {
      const error = await ensureLocalCloud({
        stateDir: dir,
        port: 0,
        pubsubPort: 0,
        projectId,
        log: silentLogger,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LabError);
      expect((error as LabError).message).toContain('no-emulator-here');
      expect((error as LabError).hint).toContain('gcloud components install pubsub-emulator');
      expect(existsSync(daemonPaths(dir).info)).toBe(false);
      expect(existsSync(daemonPaths(dir).lock)).toBe(false);
    } finally {
      if (previous === undefined) delete process.env.CYMBAL_LAB_PUBSUB_EMULATOR;
      else process.env.CYMBAL_LAB_PUBSUB_EMULATOR = previous;
    }
  });

  it('is not fooled by a daemon.json left by a daemon that died', async () => {
    const dir = newStateDir();
    const paths = daemonPaths(dir);
    const stale: DaemonInfo = {
      pid: 2 ** 22 + 1,
      endpoint: endpoints.api,
      pubsubHost: endpoints.pubsub,
      projectId,
      startedAt: new Date().toISOString(),
      version: '0.0.0',
    };
    rmSync(paths.dir, { recursive: true, force: true });
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.info, JSON.stringify(stale));
    expect(await runningDaemon(dir)).toBeUndefined();
    expect(existsSync(paths.info)).toBe(false);
  });
});
