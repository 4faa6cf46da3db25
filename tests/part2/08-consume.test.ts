import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Clients } from '../../src/cloud/clients.js';
import { createClients } from '../../src/cloud/clients.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import type { LabConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import type { RunningEmulator } from '../../src/local/pubsub/emulator.js';
import { startEmulator } from '../../src/local/pubsub/emulator.js';
import { reportErrors } from '../../src/part2/08-consume.js';
import type { StepContext } from '../../src/steps/types.js';
import { testContext } from '../fixtures/context.js';

/**
 * Verifying step 2.8 shows what the video pipeline sent to the error topic, in words, and leaves
 * it there: against the real Pub/Sub emulator.
 */

const PROJECT = 'consume-test';
const config: LabConfig = { ...DEFAULT_CONFIG, project: PROJECT };

let dir: string;
let emulator: RunningEmulator;
let clients: Clients;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cymbal-consume-'));
  emulator = await startEmulator({
    port: 0,
    dataDir: dir,
    log: silentLogger,
    projectIds: [PROJECT],
    saveIntervalMs: 0,
  });
  clients = createClients({
    kind: 'local',
    projectId: PROJECT,
    region: config.region,
    local: { api: 'http://127.0.0.1:1', pubsub: emulator.host },
  });
  const [topic] = await clients.pubsub.createTopic(config.errorTopic);
  await topic.createSubscription(config.errorSubscription);
}, 60_000);

afterAll(async () => {
  await clients?.close();
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function context(lines: string[]): StepContext {
  return testContext(dir, {}, new AbortController().signal, {
    config,
    target: { kind: 'local', projectId: PROJECT, region: config.region },
    clients,
    print: (line: string) => lines.push(line),
  });
}

describe('step 2.8 verify', () => {
  it('says nothing waits when the error subscription is empty', async () => {
    const lines: string[] = [];
    await reportErrors(context(lines));
    expect(lines).toEqual([`  nothing waits on ${config.errorSubscription}`]);
  }, 30_000);

  it('names the file and the status of each error, and hands the messages back', async () => {
    await clients.pubsub.topic(config.errorTopic).publishMessage({
      json: {
        file_name: 'gs://videos/broken.mp4',
        transaction_timestamp: '2026-12-03T17:00:00Z',
        error_code: 3,
        error_message: 'gs://videos/broken.mp4 is not a video',
      },
      attributes: { error_type: 'api_response' },
    });
    const first: string[] = [];
    await reportErrors(context(first));
    expect(first).toEqual([
      `  on ${config.errorSubscription}:`,
      '    gs://videos/broken.mp4',
      '      INVALID_ARGUMENT (3): gs://videos/broken.mp4 is not a video',
    ]);
    // Handed back, not taken: the next look sees it again.
    const again: string[] = [];
    await reportErrors(context(again));
    expect(again).toEqual(first);
  }, 30_000);
});
