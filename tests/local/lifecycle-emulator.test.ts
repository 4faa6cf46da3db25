import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PubSub } from '@google-cloud/pubsub';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LabError } from '../../src/errors.js';
import { Logger, silentLogger } from '../../src/log.js';
import type { RunningEmulator } from '../../src/local/pubsub/emulator.js';
import {
  defaultHeapMb,
  freePort,
  runningEmulator,
  startEmulator,
} from '../../src/local/pubsub/emulator.js';
import { locateEmulator } from '../../src/local/pubsub/locate.js';
import { publishViaRest } from '../../src/local/pubsub/rest.js';
import { pubsubService } from '../../src/local/pubsub/service.js';
import type { LocalCloud } from '../../src/local/service.js';
import { isProcessAlive } from '../../src/local/supervisor.js';

const project = 'cymbal-lab-local';
let dataDir: string;
let emulator: RunningEmulator | undefined;
let blocker: Server | undefined;

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'cymbal-emulator-'));
});

afterAll(async () => {
  await emulator?.stop();
  blocker?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function client(host: string): PubSub {
  return new PubSub({ projectId: project, emulatorMode: true, apiEndpoint: host });
}

describe('Pub/Sub emulator', () => {
  it('finds the emulator jar by reading its launcher', () => {
    const command = locateEmulator();
    expect(command.jar).toMatch(/cloud-pubsub-emulator.*\.jar$/);
    expect(command.programArgs).toContain(command.jar);
  });

  it('sizes its heap at a quarter of the memory, between 512 MiB and 4 GiB', () => {
    const gib = 1024 ** 3;
    expect(defaultHeapMb(24 * gib)).toBe(4096);
    expect(defaultHeapMb(8 * gib)).toBe(2048);
    expect(defaultHeapMb(1 * gib)).toBe(512);
  });

  it('names how to install it when it is missing', () => {
    const env = { ...process.env, CYMBAL_LAB_PUBSUB_EMULATOR: join(dataDir, 'nowhere') };
    expect(() => locateEmulator(env)).toThrow(/does not exist/);
    const missing = (() => {
      try {
        locateEmulator(env);
      } catch (error) {
        return error as LabError;
      }
    })();
    expect(missing?.hint).toContain('gcloud components install pubsub-emulator');
    const noJava = { CYMBAL_LAB_PUBSUB_EMULATOR: locateEmulator().jar, PATH: dataDir };
    expect(() => locateEmulator(noJava)).toThrow(LabError);
    expect(() => locateEmulator(noJava)).toThrow(/Java/);
  });

  it('starts on 127.0.0.1, keeps topics and subscriptions across a restart', async () => {
    const port = await freePort();
    emulator = await startEmulator({ port, dataDir, log: silentLogger, saveIntervalMs: 0 });
    expect(emulator.host).toBe(`127.0.0.1:${port}`);
    expect(runningEmulator(emulator.host)).toBe(emulator);
    const pid = emulator.supervisor.pid!;
    expect(emulator.supervisor.memoryBytes()).toBeGreaterThan(20 * 1024 * 1024);

    const pubsub = client(emulator.host);
    const [topic] = await pubsub.createTopic('orders');
    await pubsub.createTopic('orders-dead');
    await topic.createSubscription('orders-pull', {
      ackDeadlineSeconds: 20,
      deadLetterPolicy: {
        deadLetterTopic: `projects/${project}/topics/orders-dead`,
        maxDeliveryAttempts: 5,
      },
    });
    await pubsub.close();

    await emulator.stop();
    expect(isProcessAlive(pid)).toBe(false);
    const saved = JSON.parse(readFileSync(emulator.resourcesFile, 'utf8')) as {
      projects: Record<string, { topics: unknown[] }>;
    };
    expect(saved.projects[project]?.topics).toHaveLength(2);

    emulator = await startEmulator({ port, dataDir, log: silentLogger, saveIntervalMs: 0 });
    const again = client(emulator.host);
    const [topics] = await again.getTopics();
    expect(topics.map((t) => t.name).sort()).toEqual([
      `projects/${project}/topics/orders`,
      `projects/${project}/topics/orders-dead`,
    ]);
    const [metadata] = await again.subscription('orders-pull').getMetadata();
    expect(metadata.ackDeadlineSeconds).toBe(20);
    expect(metadata.deadLetterPolicy?.maxDeliveryAttempts).toBe(5);

    // And messages flow through the restored subscription.
    await again.topic('orders').publishMessage({ json: { id: 1 } });
    const [received] = await again.subscription('orders-pull').get();
    const message = await new Promise<string>((resolve) => {
      received.once('message', (m: { data: Buffer; ack(): void }) => {
        m.ack();
        resolve(m.data.toString());
      });
    });
    await received.close();
    expect(JSON.parse(message)).toEqual({ id: 1 });
    await again.close();
  });

  it('reports topics, subscriptions and the JVM memory as a service status', async () => {
    const cloud = {
      dataDir,
      endpoint: 'http://127.0.0.1:1',
      pubsubHost: emulator!.host,
      projectId: project,
      log: silentLogger,
    } as LocalCloud;
    const status = await pubsubService(cloud).status();
    expect(status.state).toBe('running');
    expect(status.childMemoryBytes).toBeGreaterThan(0);
    expect(status.detail).toContain(`heap ${emulator!.heapMb} MB, keeps every message`);
    expect(status.resources).toContainEqual({ kind: 'topic', name: 'orders' });
    const sub = status.resources.find((r) => r.name === 'orders-pull');
    expect(sub?.detail).toContain('ack 20s');
    expect(sub?.detail).toContain('dead letter orders-dead');
  });

  it('publishes over REST for in-process publishers', async () => {
    const host = emulator!.host;
    const ids = await publishViaRest(host, `projects/${project}/topics/orders`, [
      { data: JSON.stringify({ id: 2 }), attributes: { origin: 'rest' } },
    ]);
    expect(ids).toHaveLength(1);
    const pulling = client(host);
    const [received] = await pulling.subscription('orders-pull').get();
    const message = await new Promise<{ data: Buffer; attributes: Record<string, string> }>(
      (resolve) => {
        received.once(
          'message',
          (m: { data: Buffer; attributes: Record<string, string>; ack(): void }) => {
            m.ack();
            resolve(m);
          },
        );
      },
    );
    await received.close();
    await pulling.close();
    expect(JSON.parse(message.data.toString())).toEqual({ id: 2 });
    expect(message.attributes).toEqual({ origin: 'rest' });
  });

  it('restarts a JVM that dies and brings its resources back', async () => {
    const running = emulator!;
    await running.saveResources();
    const first = running.supervisor.pid!;
    process.kill(first, 'SIGKILL');
    const restarted = client(running.host);
    const deadline = Date.now() + 30_000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      const pid = running.supervisor.pid;
      if (pid && pid !== first) {
        names = await restarted
          .getTopics()
          .then(([topics]) => topics.map((t) => t.name))
          .catch(() => []);
        if (names.length === 2) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await restarted.close();
    expect(running.supervisor.restarts).toBe(1);
    expect(names).toContain(`projects/${project}/topics/orders`);
  });

  it('says so when the JVM runs out of heap, and comes back with its resources', async () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'error', write: (line) => lines.push(line) });
    const own = mkdtempSync(join(tmpdir(), 'cymbal-emulator-oom-'));
    const small = await startEmulator({
      port: 0,
      dataDir: own,
      log,
      heapMb: 64,
      saveIntervalMs: 0,
    });
    try {
      const pubsub = client(small.host);
      const [topic] = await pubsub.createTopic('flood');
      await topic.createSubscription('flood-pull');
      await small.saveResources();
      const first = small.supervisor.pid!;
      // The emulator keeps every message: 4 KB ones fill 64 MB after about ten thousand.
      const flood = pubsub.topic('flood', { batching: { maxMessages: 500, maxMilliseconds: 5 } });
      const data = Buffer.alloc(4096, 'x');
      for (let i = 0; i < 100 && small.supervisor.pid === first; i++) {
        await Promise.all(
          Array.from({ length: 500 }, () => flood.publishMessage({ data }).catch(() => '')),
        );
      }
      await pubsub.close();
      const deadline = Date.now() + 30_000;
      let names: string[] = [];
      while (Date.now() < deadline && names.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        if (small.supervisor.pid === first) continue;
        const again = client(small.host);
        names = await again
          .getTopics()
          .then(([topics]) => topics.map((t) => t.name))
          .catch(() => []);
        await again.close();
      }
      expect(small.supervisor.restarts).toBe(1);
      expect(lines.join('\n')).toContain('ran out of its 64 MB heap');
      expect(lines.join('\n')).toContain('CYMBAL_LAB_PUBSUB_HEAP_MB');
      expect(names).toEqual([`projects/${project}/topics/flood`]);
    } finally {
      await small.stop();
      rmSync(own, { recursive: true, force: true });
    }
  }, 90_000);

  it('refuses a port in use with a clear error', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const other = mkdtempSync(join(tmpdir(), 'cymbal-emulator-busy-'));
    try {
      const error = await startEmulator({ port, dataDir: other, log: silentLogger }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LabError);
      expect((error as LabError).message).toContain(`Port ${port}`);
      expect((error as LabError).hint).toContain('cymbal-lab config set pubsubPort');
      expect(existsSync(join(other, 'pubsub', 'emulator.pid'))).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
