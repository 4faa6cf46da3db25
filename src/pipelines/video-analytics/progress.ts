import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * What the job has finished for each uploaded object generation, kept in an append-only file
 * next to the job's metrics so that it survives a restart of the job's process. It plays the
 * part of Dataflow's checkpointed state: a notification redelivered after a crash skips the
 * steps already done, so its rows are not inserted a second time even when BigQuery's insertId
 * dedupe window (about a minute) has passed, and its messages are not published again.
 *
 * `written`: the rows are committed. `done`: the messages are published too (or the error was).
 */

export type Stage = 'written' | 'done';

interface Entry {
  key: string;
  stage: Stage;
}

/** Entries kept; older ones are forgotten when the file is compacted. */
const MAX_ENTRIES = 50_000;

export class ProgressLedger {
  private readonly stages = new Map<string, Stage>();
  private appended = 0;

  /** With no file, progress lives in memory only (tests, and runs without a job directory). */
  constructor(private readonly file?: string) {
    if (file && existsSync(file)) this.load(file);
  }

  static keyOf(video: { bucket: string; name: string; generation: string }): string {
    return `${video.bucket}/${video.name}#${video.generation}`;
  }

  stageOf(key: string): Stage | undefined {
    return this.stages.get(key);
  }

  get size(): number {
    return this.stages.size;
  }

  /** Records a stage; the line is on disk (appended synchronously) when this returns. */
  mark(key: string, stage: Stage): void {
    this.stages.delete(key);
    this.stages.set(key, stage);
    if (!this.file) return;
    appendFileSync(this.file, `${JSON.stringify({ key, stage } satisfies Entry)}\n`);
    if (++this.appended > MAX_ENTRIES) this.compact(this.file);
  }

  private load(file: string): void {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const entry = JSON.parse(line) as Partial<Entry>;
        if (
          typeof entry.key === 'string' &&
          (entry.stage === 'written' || entry.stage === 'done')
        ) {
          this.stages.delete(entry.key);
          this.stages.set(entry.key, entry.stage);
        }
      } catch {
        // A line cut short by a crash records a step that may not have finished: redo it.
      }
    }
  }

  /** Rewrites the file with the most recent entries only. */
  private compact(file: string): void {
    const kept = [...this.stages].slice(-MAX_ENTRIES / 2);
    this.stages.clear();
    for (const [key, stage] of kept) this.stages.set(key, stage);
    const text = kept.map(([key, stage]) => JSON.stringify({ key, stage })).join('\n');
    writeFileSync(`${file}.tmp`, text ? `${text}\n` : '');
    renameSync(`${file}.tmp`, file);
    this.appended = kept.length;
  }
}
