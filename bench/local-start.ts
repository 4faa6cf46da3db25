/**
 * How fast the local cloud starts and how much memory it holds when idle.
 *
 *     node dist/bench/local-start.js [runs=3] [idleSeconds=5]
 *
 * Each run starts a daemon in a fresh temporary state directory on free ports, exactly as
 * `cymbal-lab local start` does (minus the CLI's own start-up), and times it until it answers.
 * The first run uses an empty cache directory, so it shows a machine's very first start, before
 * the emulator's class-data archive exists; the archive is then built as the first daemon would
 * build it in the background, and the later runs use it. After the last start the daemon idles,
 * then its memory and the emulator JVM's memory are read apart.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { silentLogger } from '../src/log.js';
import type { LocalCloudStatus } from '../src/local/admin.js';
import { ensureLocalCloud, localCloudStatus, stopLocalCloud } from '../src/local/lifecycle.js';
import { buildClassDataArchive, classDataArchive } from '../src/local/pubsub/class-data.js';
import { freePort } from '../src/local/pubsub/emulator.js';
import { locateEmulator } from '../src/local/pubsub/locate.js';

const TARGET_SECONDS = 10;

interface Run {
  label: string;
  startSeconds: number;
  stopSeconds: number;
  /** From the daemon's log: the JVM until it answered, and the whole daemon until ready. */
  emulatorMs?: number;
  daemonMs?: number;
  status?: LocalCloudStatus;
}

function phases(stateDir: string): { emulatorMs?: number; daemonMs?: number } {
  const log = readFileSync(join(stateDir, 'local', 'daemon.log'), 'utf8');
  const emulator = /emulator answering on \S+ after (\d+) ms/.exec(log)?.[1];
  const daemon = /ready in (\d+) ms/.exec(log)?.[1];
  return {
    ...(emulator ? { emulatorMs: Number(emulator) } : {}),
    ...(daemon ? { daemonMs: Number(daemon) } : {}),
  };
}

async function oneRun(label: string, idleSeconds: number, cacheDir?: string): Promise<Run> {
  const stateDir = mkdtempSync(join(tmpdir(), 'cymbal-bench-'));
  const previousCache = process.env.CYMBAL_LAB_CACHE_DIR;
  if (cacheDir) process.env.CYMBAL_LAB_CACHE_DIR = cacheDir;
  try {
    const [port, pubsubPort] = [await freePort(), await freePort()];
    const began = performance.now();
    await ensureLocalCloud({ stateDir, port, pubsubPort, log: silentLogger });
    const startSeconds = (performance.now() - began) / 1000;
    let status: LocalCloudStatus | undefined;
    if (idleSeconds > 0) {
      await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
      status = await localCloudStatus(stateDir);
    }
    const stopping = performance.now();
    await stopLocalCloud(stateDir);
    const stopSeconds = (performance.now() - stopping) / 1000;
    return { label, startSeconds, stopSeconds, ...phases(stateDir), ...(status ? { status } : {}) };
  } finally {
    if (cacheDir) {
      if (previousCache === undefined) delete process.env.CYMBAL_LAB_CACHE_DIR;
      else process.env.CYMBAL_LAB_CACHE_DIR = previousCache;
    }
    rmSync(stateDir, { recursive: true, force: true });
  }
}

function mb(bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${(bytes / (1024 * 1024)).toFixed(0)} MB`;
}

async function main(): Promise<void> {
  const runs = Math.max(2, Number(process.argv[2] ?? 3));
  const idleSeconds = Number(process.argv[3] ?? 5);
  const out = (line = ''): boolean => process.stdout.write(`${line}\n`);
  const coldCache = mkdtempSync(join(tmpdir(), 'cymbal-bench-cache-'));
  const results: Run[] = [];
  let archiveSeconds: number | undefined;
  try {
    results.push(await oneRun('first ever (no class-data archive)', 0, coldCache));
    // What the first daemon does in the background a few seconds after it is ready.
    const env = { ...process.env, CYMBAL_LAB_CACHE_DIR: coldCache };
    const command = locateEmulator(env);
    const archive = classDataArchive(command, env);
    if (archive && !archive.exists) {
      const began = performance.now();
      await buildClassDataArchive(command, archive, coldCache, silentLogger).done;
      archiveSeconds = (performance.now() - began) / 1000;
    }
    for (let i = 1; i < runs; i += 1) {
      results.push(await oneRun(`cold start ${i}`, i === runs - 1 ? idleSeconds : 0, coldCache));
    }
  } finally {
    rmSync(coldCache, { recursive: true, force: true });
  }

  out(`Local cloud start to ready (fresh state directory each run, target ${TARGET_SECONDS} s)`);
  out(`  machine: ${cpus().length} cores, load average ${loadavg()[0]?.toFixed(1)} at the end`);
  for (const run of results) {
    out(
      `  ${run.label.padEnd(36)} start ${run.startSeconds.toFixed(2)} s` +
        ` (JVM answering ${seconds(run.emulatorMs)}, daemon ready ${seconds(run.daemonMs)})` +
        `   stop ${run.stopSeconds.toFixed(2)} s`,
    );
  }
  if (archiveSeconds !== undefined) {
    out(
      `  class-data archive, built once per machine in the background: ${archiveSeconds.toFixed(2)} s`,
    );
  }
  const warm = results.slice(1).map((r) => r.startSeconds);
  const worst = Math.max(...results.map((r) => r.startSeconds));
  out(
    `  median of the cold starts: ${median(warm).toFixed(2)} s; slowest of all: ${worst.toFixed(2)} s` +
      ` (${worst <= TARGET_SECONDS ? 'within' : 'OVER'} the ${TARGET_SECONDS} s target)`,
  );

  const status = results.at(-1)?.status;
  if (status) {
    out();
    out(`Idle memory after ${idleSeconds} s (resident set)`);
    out(`  daemon (Node.js, every service)  ${mb(status.daemon.rssBytes)}`);
    out(`    of which JS heap in use        ${mb(status.daemon.heapUsedBytes)}`);
    out(`  Pub/Sub emulator JVM             ${mb(status.emulator.rssBytes)}`);
    const others = status.services
      .filter((s) => s.name !== 'pubsub')
      .reduce((sum, s) => sum + (s.childMemoryBytes ?? 0), 0);
    out(`  other children                   ${mb(others)}`);
    out(`  services: ${status.services.map((s) => s.name).join(', ')}`);
  }
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
