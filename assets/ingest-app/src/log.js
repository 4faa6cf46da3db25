/**
 * One JSON line per problem on stdout, in the shape Cloud Logging reads (`severity`, `message`).
 * Requests that succeed are not logged. When a flood of problems arrives (a client sending bad
 * events in a loop) at most `perSecond` lines are written each second, and the next line written
 * says how many were left out.
 */
export function createLog({ perSecond = 20, write = (line) => process.stdout.write(line) } = {}) {
  let windowStart = 0;
  let written = 0;
  let suppressed = 0;

  return function log(severity, message, fields = {}) {
    const now = Date.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      written = 0;
    }
    if (written >= perSecond && severity !== 'CRITICAL') {
      suppressed += 1;
      return;
    }
    written += 1;
    const entry = { severity, message, ...fields, time: new Date(now).toISOString() };
    if (suppressed > 0) {
      entry.suppressedLines = suppressed;
      suppressed = 0;
    }
    write(`${JSON.stringify(entry)}\n`);
  };
}
