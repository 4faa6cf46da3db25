import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { MetricsV1Beta3Client } from '@google-cloud/dataflow';
import { PassThroughClient } from 'google-auth-library';

import { Logger } from '../src/log.js';
import { generateEvents } from '../src/sampledata/events.js';
import type { LoadRequest, LoadResult } from './lib/http-load.js';
import { closedLoop, openLoop, quantile } from './lib/http-load.js';
import type { LocalPipeline } from './lib/local-pipeline.js';
import { NAMES, startLocalPipeline } from './lib/local-pipeline.js';
import { loadAverage, sampleProcess } from './lib/proc.js';

/**
 * Part 1's speed on this machine, end to end: ingest app -> Pub/Sub emulator -> local Dataflow
 * job -> BigQuery on DuckDB, each a process of its own, as `cymbal-lab` runs them.
 *
 *     node dist/bench/ingest.js [--seconds 60] [--latency-seconds 20] [--batch-seconds 20]
 *         [--ceiling-seconds 10] [--concurrency 128] [--batch-size 500] [--batch-concurrency 4]
 *         [--state-dir DIR] [--keep] [--profile-dir DIR] [--phases a,b,c,d]
 *         [--latency-rate N] [--priority=NICE]
 *
 * (a) the ingest app's HTTP ceiling on `GET /`; (b) single-event `POST /json` for `--seconds`:
 * answered 2xx per second, and rows that became visible in the table meanwhile; (c) at half the
 * rate of (b), the time from sending an event to its row being readable; (d) `POST /json/batch`
 * rows per second into the table; (e) peak memory of each process. At-least-once is checked at
 * the end: the table holds exactly one row per 2xx answer, no fewer, no more.
 *
 * Every event carries a tag in `client_id` (`S17.`, `L000000017.`, `B17.` before the generated
 * id), which makes rows countable per phase and duplicates visible. The CPU time of each process
 * per phase is printed too, per 1000 events: unlike rates, it hardly depends on what else the
 * machine runs, and it says which process a faster pipeline has to start with.
 *
 * On a machine shared with other work, `--priority=-10` raises the CPU share of the sessions of
 * the bench and of the pipeline's processes (as root). `--profile-dir` profiles every Node
 * process of the pipeline (daemon, job, ingest app) and leaves `.cpuprofile` files there.
 */

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'ceiling-seconds': { type: 'string', default: '10' },
    'latency-seconds': { type: 'string', default: '20' },
    'batch-seconds': { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '128' },
    'batch-size': { type: 'string', default: '500' },
    'batch-concurrency': { type: 'string', default: '4' },
    'state-dir': { type: 'string' },
    keep: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    phases: { type: 'string', default: 'a,b,c,d' },
    'latency-rate': { type: 'string' },
    priority: { type: 'string' },
  },
  strict: true,
});

const number = (name: keyof typeof args): number => {
  const value = Number(args[name]);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`--${name} must be a positive number.`);
  return value;
};

const TARGETS = { sustained: 8000, p99Ms: 500, batch: 50_000 };
const DRAIN_TIMEOUT_MS = 180_000;

const log = new Logger({ level: 'info', tag: 'bench' });

/** Generated events, split around their `client_id` value so that a tag goes in cheaply. */
class TaggedEvents {
  private readonly parts: [string, string][] = [];

  constructor(count: number, seed: number) {
    const marker = '"client_id":"';
    for (const { body } of generateEvents({ count, seed })) {
      const at = body.indexOf(marker) + marker.length;
      this.parts.push([body.slice(0, at), body.slice(at)]);
    }
  }

  body(index: number, tag: string): string {
    const [head, tail] = this.parts[index % this.parts.length] as [string, string];
    return `${head}${tag}${tail}`;
  }
}

/** CPU time of each process of the pipeline, to tell which one bounds a phase. */
class CpuMeter {
  private before: Record<string, number> = {};
  private began = 0;

  constructor(private readonly pids: LocalPipeline['pids']) {}

  start(): void {
    this.before = this.read();
    this.began = performance.now();
  }

  /** CPU ms used by each process since `start()`, for `units` requests or events. */
  stop(units: number): PhaseCpu {
    const after = this.read();
    const seconds = (performance.now() - this.began) / 1000;
    const ms: Record<string, number> = {};
    for (const [name, total] of Object.entries(after)) ms[name] = total - (this.before[name] ?? 0);
    return { ms, seconds, units };
  }

  private read(): Record<string, number> {
    const cpu: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) cpu[name] = sampleProcess(pid)?.cpuMs ?? 0;
    const self = process.cpuUsage();
    cpu.bench = (self.user + self.system) / 1000;
    return cpu;
  }
}

class Table {
  constructor(private readonly pipeline: LocalPipeline) {}

  async count(): Promise<number> {
    const [rows] = await this.pipeline.clients.bigquery.query({
      query: `SELECT COUNT(*) AS n FROM \`${this.pipeline.tableName}\``,
    });
    return Number((rows[0] as { n: number }).n);
  }

  /** Total rows and distinct tags, by tag letter. */
  async tally(): Promise<{ rows: number; distinct: number }> {
    const [rows] = await this.pipeline.clients.bigquery.query({
      query: `SELECT COUNT(*) AS n, COUNT(DISTINCT client_id) AS d FROM \`${this.pipeline.tableName}\``,
    });
    const row = rows[0] as { n: number; d: number };
    return { rows: Number(row.n), distinct: Number(row.d) };
  }

  async deadLettered(): Promise<number> {
    try {
      const [rows] = await this.pipeline.clients.bigquery.query({
        query: `SELECT COUNT(*) AS n FROM \`${this.pipeline.tableName}_error_records\``,
      });
      return Number((rows[0] as { n: number }).n);
    } catch {
      return 0; // The template creates the dead-letter table only when it first needs it.
    }
  }

  /** Waits until the table holds `rows` rows; returns the ms it took, or undefined on timeout. */
  async waitFor(rows: number, timeoutMs = DRAIN_TIMEOUT_MS): Promise<number | undefined> {
    const began = performance.now();
    for (;;) {
      const now = await this.count();
      if (now >= rows) return performance.now() - began;
      if (performance.now() - began > timeoutMs) {
        log.warn('the table holds %d rows, not %d, after %d s', now, rows, timeoutMs / 1000);
        return undefined;
      }
      await sleep(100);
    }
  }

  /**
   * Counts rows once a second while `work` runs, logging progress; returns the rows added while
   * it ran (counted right after it ends) next to its result.
   */
  async during<T>(label: string, work: Promise<T>, accepted: () => number) {
    const base = await this.count();
    let running = true;
    const done = work.finally(() => {
      running = false;
    });
    const timeline: { at: number; rows: number; accepted: number }[] = [];
    const began = performance.now();
    const watching = (async () => {
      while (running) {
        await sleep(1000);
        if (!running) break;
        const rows = (await this.count()) - base;
        const at = (performance.now() - began) / 1000;
        const previous = timeline[timeline.length - 1] ?? { at: 0, rows: 0, accepted: 0 };
        const now = { at, rows, accepted: accepted() };
        timeline.push(now);
        const span = at - previous.at;
        log.info(
          '%s %s s: %s accepted/s, %s rows/s, backlog %d',
          label,
          at.toFixed(0),
          ((now.accepted - previous.accepted) / span).toFixed(0),
          ((rows - previous.rows) / span).toFixed(0),
          now.accepted - rows,
        );
      }
    })();
    const result = await done;
    const visible = (await this.count()) - base;
    await watching;
    return { result, base, visible, timeline };
  }
}

interface PhaseCpu {
  ms: Record<string, number>;
  seconds: number;
  /** Requests (ceiling) or events (the others) the phase handled. */
  units: number;
}

interface Figures {
  ceiling: number;
  sustainedAccepted: number;
  sustainedVisible: number;
  sustainedDrainMs: number | undefined;
  latencyRate: number;
  latencyAchieved: number;
  latencyP50: number;
  latencyP99: number;
  latencyMax: number;
  answerP99: number;
  latencyMissing: number;
  pollMs: number;
  batchAccepted: number;
  batchVisible: number;
  batchIntoTable: number;
  accepted: number;
  rows: number;
  distinct: number;
  deadLettered: number;
  cpu: Record<string, PhaseCpu>;
  jobLatency: { p50: number; p99: number };
  worstBySecond: number[];
  peakRss: Record<string, number>;
  load: number[];
}

async function main(): Promise<void> {
  const seconds = number('seconds');
  const stateDir = args['state-dir'] ?? mkdtempSync(join(tmpdir(), 'cymbal-bench-ingest-'));
  const profileDir = args['profile-dir'];
  if (profileDir) {
    // Inherited by the daemon, the job it starts and the ingest app; not by this process.
    const preload = new URL('./lib/cpu-profile-preload.js', import.meta.url);
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${preload.href}`;
    process.env.CYMBAL_BENCH_PROFILE_DIR = resolve(profileDir);
  }
  log.info('generating events');
  const events = new TaggedEvents(20_000, 2026);
  log.info('starting the local cloud and the pipeline in %s', stateDir);
  const started = performance.now();
  const pipeline = await startLocalPipeline({ stateDir, log });
  if (profileDir) delete process.env.NODE_OPTIONS;
  log.info('pipeline ready in %s s', ((performance.now() - started) / 1000).toFixed(1));
  // Linux shares the CPU between sessions (autogroups) first and between processes second, so
  // `nice` alone changes nothing against other sessions. The daemon, the emulator and the job
  // each run in a session of their own; the ingest app runs in this one, which is the caller's,
  // so its priority is put back at the end.
  const ownGroup = args.priority === undefined ? undefined : autogroupNice(process.pid);
  if (args.priority !== undefined) {
    for (const pid of [process.pid, ...Object.values(pipeline.pids)]) {
      writeFileSync(`/proc/${pid}/autogroup`, args.priority);
    }
    log.info('sessions of the bench and the pipeline set to nice %s', args.priority);
  }
  try {
    const figures = await measure(pipeline, events, seconds);
    report(figures, seconds);
  } finally {
    log.info('stopping the pipeline');
    if (ownGroup !== undefined) writeFileSync(`/proc/${process.pid}/autogroup`, ownGroup);
    await pipeline.stop();
    if (!args.keep && !args['state-dir']) rmSync(stateDir, { recursive: true, force: true });
    else log.info('state kept in %s', stateDir);
  }
}

async function measure(
  pipeline: LocalPipeline,
  events: TaggedEvents,
  seconds: number,
): Promise<Figures> {
  const port = pipeline.appPort;
  const phases = new Set(args.phases.split(','));
  const table = new Table(pipeline);
  const cpuMeter = new CpuMeter(pipeline.pids);
  const cpu: Figures['cpu'] = {};
  const load: number[] = [];
  let accepted = 0;
  const post =
    (tag: string) =>
    (i: number): LoadRequest => ({
      method: 'POST',
      path: '/json',
      body: events.body(i, `${tag}${i}.`),
    });

  log.info('warming up');
  const warm = await closedLoop({ port, seconds: 3, concurrency: 32, next: post('W') });
  accepted += warm.ok;
  await table.waitFor(accepted);
  // The daemon's first SQL queries leave it busy for a while on other threads (seen: about one
  // core for 10 to 15 s, likely V8 compiling the SQL translator's WebAssembly); wait until that
  // is over so that it does not eat into the first phase.
  await untilQuiet(pipeline.pids.daemon);

  const f = emptyFigures();
  f.cpu = cpu;
  f.load = load;
  if (phases.has('a')) {
    log.info('(a) GET / ceiling for %s s', args['ceiling-seconds']);
    cpuMeter.start();
    const ceiling = await closedLoop({
      port,
      seconds: number('ceiling-seconds'),
      concurrency: 64,
      next: () => ({ method: 'GET', path: '/' }),
    });
    cpu.ceiling = cpuMeter.stop(ceiling.ok);
    load.push(loadAverage());
    f.ceiling = ceiling.ok / ceiling.seconds;
  }

  if (phases.has('b')) {
    log.info('(b) single-event POST /json for %d s, %s connections', seconds, args.concurrency);
    let sustainedOk = 0;
    cpuMeter.start();
    const sustained = await table.during(
      '(b)',
      closedLoop({
        port,
        seconds,
        concurrency: number('concurrency'),
        next: post('S'),
        onAnswer: (_i, a) => {
          if (a.status < 300) sustainedOk += 1;
        },
      }),
      () => sustainedOk,
    );
    cpu.sustained = cpuMeter.stop(sustained.result.ok);
    load.push(loadAverage());
    accepted += sustained.result.ok;
    describeFailures('(b)', sustained.result);
    f.sustainedDrainMs = await table.waitFor(sustained.base + sustained.result.ok);
    f.sustainedAccepted = sustained.result.ok / sustained.result.seconds;
    f.sustainedVisible = sustained.visible / sustained.result.seconds;
  }

  if (phases.has('c')) {
    const rate = args['latency-rate']
      ? number('latency-rate')
      : Math.max(1, Math.round(f.sustainedAccepted / 2));
    if (!Number.isFinite(rate)) throw new Error('Phase c needs phase b or --latency-rate.');
    log.info('(c) latency at %d events/s for %s s', rate, args['latency-seconds']);
    cpuMeter.start();
    const latency = await measureLatency(pipeline, events, rate, number('latency-seconds'));
    cpu.latency = cpuMeter.stop(latency.result.ok);
    f.jobLatency = await jobLatencyMetrics(pipeline);
    load.push(loadAverage());
    accepted += latency.result.ok;
    f.latencyRate = rate;
    f.latencyAchieved = latency.result.ok / latency.result.seconds;
    f.latencyP50 = quantile(latency.visible, 0.5);
    f.latencyP99 = quantile(latency.visible, 0.99);
    f.latencyMax = quantile(latency.visible, 1);
    f.answerP99 = quantile(latency.result.latencies, 0.99);
    f.latencyMissing = latency.missing;
    f.pollMs = latency.pollMs;
    f.worstBySecond = latency.worstBySecond;
  }

  if (phases.has('d')) {
    const batchSize = number('batch-size');
    log.info('(d) POST /json/batch of %d events for %s s', batchSize, args['batch-seconds']);
    let batchOk = 0;
    cpuMeter.start();
    const batchStarted = performance.now();
    const batch = await table.during(
      '(d)',
      closedLoop({
        port,
        seconds: number('batch-seconds'),
        concurrency: number('batch-concurrency'),
        keepBodies: true,
        next: (i) => {
          const parts: string[] = [];
          for (let k = 0; k < batchSize; k += 1) {
            const n = i * batchSize + k;
            parts.push(events.body(n, `B${n}.`));
          }
          return { method: 'POST', path: '/json/batch', body: `[${parts.join(',')}]` };
        },
        onAnswer: (_i, a) => {
          if (a.status === 200) batchOk += batchSize;
          else if (a.status === 207) {
            batchOk += (JSON.parse(a.body.toString('utf8')) as { published: number }).published;
          }
        },
      }),
      () => batchOk,
    );
    cpu.batch = cpuMeter.stop(batchOk);
    load.push(loadAverage());
    describeFailures('(d)', batch.result);
    accepted += batchOk;
    const batchDrainMs = await table.waitFor(batch.base + batchOk);
    // From the first batch sent to the last row readable.
    f.batchIntoTable =
      batchDrainMs === undefined
        ? Number.NaN
        : batchOk / ((performance.now() - batchStarted) / 1000);
    f.batchAccepted = batchOk / batch.result.seconds;
    f.batchVisible = batch.visible / batch.result.seconds;
  }

  // At-least-once, end to end: every 2xx is one row, and no row arrived twice.
  const tally = await table.tally();
  const peakRss: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pipeline.pids)) {
    peakRss[name] = sampleProcess(pid)?.peakRssBytes ?? Number.NaN;
  }
  peakRss.bench = process.resourceUsage().maxRSS * 1024;

  f.accepted = accepted;
  f.rows = tally.rows;
  f.distinct = tally.distinct;
  f.deadLettered = await table.deadLettered();
  f.peakRss = peakRss;
  return f;
}

function emptyFigures(): Figures {
  return {
    ceiling: Number.NaN,
    sustainedAccepted: Number.NaN,
    sustainedVisible: Number.NaN,
    sustainedDrainMs: undefined,
    latencyRate: Number.NaN,
    latencyAchieved: Number.NaN,
    latencyP50: Number.NaN,
    latencyP99: Number.NaN,
    latencyMax: Number.NaN,
    answerP99: Number.NaN,
    latencyMissing: 0,
    pollMs: Number.NaN,
    batchAccepted: Number.NaN,
    batchVisible: Number.NaN,
    batchIntoTable: Number.NaN,
    accepted: 0,
    rows: 0,
    distinct: 0,
    deadLettered: 0,
    cpu: {},
    jobLatency: { p50: Number.NaN, p99: Number.NaN },
    worstBySecond: [],
    peakRss: {},
    load: [],
  };
}

/**
 * Sends `rate` events a second and asks the table, about every 50 ms, which of them it holds,
 * noting when each row is first seen. The latency of an event is that moment less the moment it
 * was due to be sent, so a request that queued in the load generator counts its wait too.
 *
 * Each event's `client_id` starts with `L` and its zero-padded number, and each poll asks only
 * for ids from the oldest event not yet seen onwards: a range that DuckDB answers from the
 * newest row groups alone, so that measuring costs the daemon little.
 */
async function measureLatency(
  pipeline: LocalPipeline,
  events: TaggedEvents,
  rate: number,
  seconds: number,
): Promise<{
  result: LoadResult;
  visible: Float64Array;
  missing: number;
  pollMs: number;
  worstBySecond: number[];
}> {
  const total = Math.floor(rate * seconds);
  const tag = (i: number): string => `L${String(i).padStart(9, '0')}`;
  const sentAt = new Float64Array(total).fill(Number.NaN);
  const seenAt = new Float64Array(total).fill(Number.NaN);
  let watermark = 0;
  let polling = true;
  let polls = 0;
  let pollTotalMs = 0;
  const poller = (async () => {
    while (polling) {
      const began = performance.now();
      const [rows] = await pipeline.clients.bigquery.query({
        query:
          `SELECT client_id FROM \`${pipeline.tableName}\` ` +
          'WHERE client_id >= @from AND client_id < @to',
        params: { from: tag(watermark), to: 'M' },
      });
      const now = performance.now();
      polls += 1;
      pollTotalMs += now - began;
      for (const { client_id: id } of rows as { client_id: string }[]) {
        const seq = Number(id.slice(1, id.indexOf('.')));
        if (seq < total && Number.isNaN(seenAt[seq])) seenAt[seq] = now;
      }
      while (watermark < total && !Number.isNaN(seenAt[watermark]!)) watermark += 1;
      await sleep(50);
    }
  })();
  const result = await openLoop({
    port: pipeline.appPort,
    rate,
    seconds,
    connections: 64,
    next: (i) => ({ method: 'POST', path: '/json', body: events.body(i, `${tag(i)}.`) }),
    onAnswer: (i, a) => {
      if (a.status < 300) sentAt[i] = a.sentAt;
    },
  });
  describeFailures('(c)', result);
  const unseen = (): number => {
    let n = 0;
    for (let i = 0; i < total; i += 1) {
      if (!Number.isNaN(sentAt[i]!) && Number.isNaN(seenAt[i]!)) n += 1;
    }
    return n;
  };
  const deadline = performance.now() + 60_000;
  while (unseen() > 0 && performance.now() < deadline) await sleep(100);
  polling = false;
  await poller;
  const visible: number[] = [];
  // The worst latency of the events due in each second: stalls show as spikes.
  const worstBySecond: number[] = [];
  const first = sentAt.find((x) => !Number.isNaN(x)) ?? 0;
  for (let i = 0; i < total; i += 1) {
    const latency = seenAt[i]! - sentAt[i]!;
    if (Number.isNaN(latency)) continue;
    visible.push(latency);
    const second = Math.floor((sentAt[i]! - first) / 1000);
    worstBySecond[second] = Math.max(worstBySecond[second] ?? 0, latency);
  }
  return {
    result,
    visible: Float64Array.from(visible),
    missing: unseen(),
    pollMs: polls > 0 ? pollTotalMs / polls : Number.NaN,
    worstBySecond: Array.from(worstBySecond, (x) => x ?? 0),
  };
}

function describeFailures(phase: string, result: LoadResult): void {
  const statuses = Object.entries(result.statuses);
  if (statuses.length === 0 && result.lost === 0) return;
  log.warn(
    '%s: %d answers were not 2xx (%s), %d requests got no answer',
    phase,
    statuses.reduce((sum, [, n]) => sum + n, 0),
    statuses.map(([status, n]) => `${status}: ${n}`).join(', ') || 'none',
    result.lost,
  );
}

function report(f: Figures, seconds: number): void {
  const n = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en') : '-');
  const ms = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : '-');
  const mb = (x: number): string => (Number.isFinite(x) ? `${(x / 2 ** 20).toFixed(0)} MB` : '-');
  const verdict = (ok: boolean, measured = true): string =>
    !measured ? 'skipped' : ok ? 'met' : 'MISSED';
  const sustained = Math.min(f.sustainedAccepted, f.sustainedVisible);
  const lossless = f.rows === f.accepted && f.distinct === f.accepted;
  const rows: [string, string, string, string][] = [
    ['(a) GET / ceiling', `${n(f.ceiling)} req/s`, '', ''],
    [`(b) POST /json accepted (${seconds} s)`, `${n(f.sustainedAccepted)} events/s`, '', ''],
    ['(b) rows visible meanwhile', `${n(f.sustainedVisible)} rows/s`, '', ''],
    [
      '(b) sustained end to end',
      `${n(sustained)} events/s`,
      `>= ${n(TARGETS.sustained)}`,
      verdict(sustained >= TARGETS.sustained, Number.isFinite(sustained)),
    ],
    ['(b) ratio to (a)', `${((sustained / f.ceiling) * 100).toFixed(0)} %`, '', ''],
    ['(b) backlog drained after the end in', ms(f.sustainedDrainMs ?? Number.NaN), '', ''],
    ['(c) rate (half of b), achieved', `${n(f.latencyRate)} / ${n(f.latencyAchieved)} /s`, '', ''],
    ['(c) send to visible p50', ms(f.latencyP50), '', ''],
    [
      '(c) send to visible p99',
      ms(f.latencyP99),
      `<= ${TARGETS.p99Ms} ms`,
      verdict(f.latencyP99 <= TARGETS.p99Ms, Number.isFinite(f.latencyP99)),
    ],
    ['(c) send to visible max', ms(f.latencyMax), '', ''],
    ['(c) HTTP answer p99', ms(f.answerP99), '', ''],
    ['(c) table query time (+50 ms between)', ms(f.pollMs), '', ''],
    ['(d) POST /json/batch accepted', `${n(f.batchAccepted)} events/s`, '', ''],
    ['(d) rows visible meanwhile', `${n(f.batchVisible)} rows/s`, '', ''],
    [
      '(d) batch rows into the table',
      `${n(f.batchIntoTable)} rows/s`,
      `>= ${n(TARGETS.batch)}`,
      verdict(f.batchIntoTable >= TARGETS.batch, Number.isFinite(f.batchIntoTable)),
    ],
    [
      'at-least-once: 2xx / rows / distinct',
      `${n(f.accepted)} / ${n(f.rows)} / ${n(f.distinct)}`,
      'all equal',
      verdict(lossless),
    ],
    ['latency events never seen', n(f.latencyMissing), '0', verdict(f.latencyMissing === 0)],
    ['dead-lettered rows', n(f.deadLettered), '0', verdict(f.deadLettered === 0)],
    ...Object.entries(f.peakRss).map(([name, bytes]): [string, string, string, string] => [
      `(e) peak RSS ${name}`,
      mb(bytes),
      '',
      '',
    ]),
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string =>
    r.map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ');
  const out: string[] = ['', line(['figure', 'measured', 'target', '']), ...rows.map(line), ''];
  out.push(...cpuTable(f.cpu));
  out.push(
    `(c) the job's own publish-to-committed latency (last seconds of c): ` +
      `p50 ${ms(f.jobLatency.p50)}, p99 ${ms(f.jobLatency.p99)}`,
  );
  if (f.worstBySecond.length > 0) {
    out.push(
      `(c) worst send-to-visible latency per second sent, ms: ${f.worstBySecond.map((x) => x.toFixed(0)).join(' ')}`,
    );
  }
  out.push(`Load average (1 min) after each phase: ${f.load.map((x) => x.toFixed(1)).join(', ')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/**
 * CPU per phase: cores used by each process, and CPU ms per 1000 events. The second does not
 * depend on what else the machine runs, and bounds the rate on two idle cores: 2000 CPU ms a
 * second divided by what the pipeline's processes spend per event.
 */
function cpuTable(cpu: Record<string, PhaseCpu>): string[] {
  const names = Object.keys(Object.values(cpu)[0]?.ms ?? {});
  const head = (label: string): string =>
    `  ${label.padEnd(10)}${names.map((x) => x.padStart(10)).join('')}${'total'.padStart(10)}`;
  const out = ['', 'CPU, in cores used (2 on this machine):', head('phase')];
  const per = ['', 'CPU ms per 1000 events (requests for the ceiling):', head('phase')];
  const bound = ['', 'Rate the pipeline could reach on 2 idle cores, from its CPU per event:'];
  for (const [phase, { ms, seconds, units }] of Object.entries(cpu)) {
    const row = (value: (x: number) => number, digits: number): string => {
      const cells = names.map((x) => value(ms[x] ?? 0));
      const total = cells.reduce((a, b) => a + b, 0);
      return `  ${phase.padEnd(10)}${cells.map((c) => c.toFixed(digits).padStart(10)).join('')}${total.toFixed(digits).padStart(10)}`;
    };
    out.push(row((x) => x / 1000 / seconds, 2));
    per.push(row((x) => (x / units) * 1000, 0));
    const pipelineMs = names.filter((x) => x !== 'bench').reduce((a, x) => a + (ms[x] ?? 0), 0);
    bound.push(
      `  ${phase.padEnd(10)}${Math.round((2000 * units) / pipelineMs).toLocaleString('en')}/s`,
    );
  }
  return [...out, ...per, ...bound, ''];
}

/** The job's own latency figures, read through the official client's getJobMetrics. */
async function jobLatencyMetrics(pipeline: LocalPipeline): Promise<{ p50: number; p99: number }> {
  const { project, region } = NAMES;
  const [jobs] = await pipeline.clients.jobs.listJobs({ projectId: project, location: region });
  const job = jobs.find((j) => j.name === NAMES.job);
  if (!job?.id) return { p50: Number.NaN, p99: Number.NaN };
  const url = new URL(pipeline.apiEndpoint);
  const client = new MetricsV1Beta3Client({
    apiEndpoint: url.hostname,
    port: Number(url.port),
    protocol: 'http',
    fallback: true,
    authClient: new PassThroughClient() as never,
  });
  try {
    const [metrics] = await client.getJobMetrics({
      projectId: project,
      location: region,
      jobId: job.id,
    });
    const value = (name: string): number => {
      const found = metrics.metrics?.find((m) => m.name?.name === name);
      // A google.protobuf.Value: the REST client decodes a JSON number into `numberValue`.
      const scalar = found?.scalar as { numberValue?: number } | number | undefined;
      return Number(typeof scalar === 'object' ? scalar.numberValue : (scalar ?? Number.NaN));
    };
    return { p50: value('LatencyP50Millis'), p99: value('LatencyP99Millis') };
  } finally {
    await client.close();
  }
}

/** Waits (up to 30 s) until `pid` uses less than a tenth of a core over a second. */
async function untilQuiet(pid: number): Promise<void> {
  const deadline = performance.now() + 30_000;
  let before = sampleProcess(pid)?.cpuMs ?? 0;
  while (performance.now() < deadline) {
    await sleep(1000);
    const now = sampleProcess(pid)?.cpuMs ?? 0;
    if (now - before < 100) return;
    before = now;
  }
  log.warn('the daemon is still busy after 30 s; measuring anyway');
}

/** The nice value of a process's autogroup, from `/autogroup-N nice V`. */
function autogroupNice(pid: number): string {
  const text = readFileSync(`/proc/${pid}/autogroup`, 'utf8');
  return /nice (-?\d+)/.exec(text)?.[1] ?? '0';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

await main();
