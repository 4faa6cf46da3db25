import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { basename, join } from 'node:path';

/**
 * Loaded with `NODE_OPTIONS=--import=.../cpu-profile-preload.js` (Node refuses `--cpu-prof` in
 * NODE_OPTIONS), it profiles the whole process and writes a `.cpuprofile` into
 * CYMBAL_BENCH_PROFILE_DIR when the process exits, named after its script and pid. A process
 * killed outright writes nothing.
 */

const dir = process.env.CYMBAL_BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // An in-thread session answers synchronously, so this completes before the process ends.
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      mkdirSync(dir, { recursive: true });
      const name = `${basename(process.argv[1] ?? 'node', '.js')}-${process.pid}.cpuprofile`;
      writeFileSync(join(dir, name), JSON.stringify(result.profile));
    });
  });
}
