import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from '@jest/globals';

import { silentLogger } from '../../src/log.js';
import { UdfSandbox } from '../../src/pipelines/udf/sandbox.js';
import { JavaScriptUdf } from '../../src/pipelines/udf/udf.js';

const sampleUdf = readFileSync(
  fileURLToPath(new URL('../../../assets/udf/transform.js', import.meta.url)),
  'utf8',
);

const sandbox = (source: string, timeoutMs = 200): UdfSandbox =>
  new UdfSandbox(source, { filename: 'gs://b/udf.js', functionName: 'process', timeoutMs });

describe('UDF sandbox', () => {
  it('calls the function once per input and reads null, undefined and empty as a drop', () => {
    const udf = sandbox(`
      function process(inJson) {
        const e = JSON.parse(inJson);
        if (e.drop === 'null') return null;
        if (e.drop === 'undefined') return undefined;
        if (e.drop === 'empty') return '';
        e.seen = true;
        return JSON.stringify(e);
      }`);
    const outcomes = udf.run([
      '{"a":1}',
      '{"drop":"null"}',
      '{"drop":"undefined"}',
      '{"drop":"empty"}',
    ]);
    expect(outcomes).toEqual([
      { kind: 'output', json: '{"a":1,"seen":true}' },
      { kind: 'dropped' },
      { kind: 'dropped' },
      { kind: 'dropped' },
    ]);
  });

  it('reports a throw as a failure of that call only, with the message and stack', () => {
    const udf = sandbox(
      `function process(s) { if (s === 'bad') throw new TypeError('no way'); return s; }`,
    );
    const [first, second, third] = udf.run(['"a"', 'bad', '"c"']);
    expect(first).toEqual({ kind: 'output', json: '"a"' });
    expect(second).toMatchObject({ kind: 'failed', message: 'TypeError: no way' });
    expect(second?.kind === 'failed' && second.stacktrace).toContain('gs://b/udf.js');
    expect(third).toEqual({ kind: 'output', json: '"c"' });
  });

  it('interrupts a call that loops and carries on with the next ones', () => {
    const udf = sandbox(`function process(s) { if (s === 'loop') for (;;) {} return s; }`, 100);
    const started = Date.now();
    const outcomes = udf.run(['"a"', 'loop', '"b"', 'loop', '"c"']);
    expect(outcomes.map((o) => o.kind)).toEqual(['output', 'failed', 'output', 'failed', 'output']);
    expect(outcomes[1]).toMatchObject({ message: 'UDF call exceeded the time limit of 100 ms.' });
    // Two interrupted calls of 100 ms each; generous for a busy machine.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('gives the UDF no modules, no process, no timers and no code generation', () => {
    const udf = new UdfSandbox(
      `
      function probe() {
        const probes = {
          require: typeof require, process: typeof globalThis.process, setTimeout: typeof setTimeout,
          fetch: typeof fetch, Buffer: typeof Buffer,
        };
        try { probes.fn = (function () {}).constructor('return 1')(); } catch (e) { probes.fn = 'blocked'; }
        try { probes.escape = typeof this.constructor.constructor('return process')(); } catch (e) { probes.escape = 'blocked'; }
        return JSON.stringify(probes);
      }`,
      { filename: 'probe.js', functionName: 'probe', timeoutMs: 200 },
    );
    const [outcome] = udf.run(['{}']);
    expect(outcome?.kind).toBe('output');
    const probes = JSON.parse(outcome?.kind === 'output' ? outcome.json : '{}') as unknown;
    expect(probes).toEqual({
      require: 'undefined',
      process: 'undefined',
      setTimeout: 'undefined',
      fetch: 'undefined',
      Buffer: 'undefined',
      fn: 'blocked',
      escape: 'blocked',
    });
  });

  it('fails to load a file without the named function, saying so', () => {
    expect(() => sandbox('function transform(s) { return s; }')).toThrow(
      /defines no function named "process"/,
    );
    expect(() => sandbox('function process( {')).toThrow(
      'gs://b/udf.js does not run: SyntaxError: Unexpected end of input',
    );
  });

  it('runs the sample UDF shipped in assets/udf', () => {
    const udf = sandbox(sampleUdf);
    const outcomes = udf.run([
      JSON.stringify({
        event: 'Add To Cart',
        user_id: 'u1',
        event_datetime: '2020-11-16 22:59:59',
      }),
      JSON.stringify({ event: 'view_item', user_id: 'test-42' }),
      JSON.stringify({ user_id: 'u2' }),
    ]);
    expect(outcomes[0]).toEqual({
      kind: 'output',
      json: JSON.stringify({
        event: 'add_to_cart',
        user_id: 'u1',
        event_datetime: '2020-11-16 22:59:59',
      }),
    });
    expect(outcomes[1]).toEqual({ kind: 'dropped' });
    expect(outcomes[2]).toMatchObject({
      kind: 'failed',
      message: 'Error: the event has no "event" name',
    });
  });
});

describe('UDF in a worker thread', () => {
  const started: JavaScriptUdf[] = [];
  afterAll(async () => {
    await Promise.all(started.map((u) => u.close()));
  });

  const start = async (read: () => Promise<string>, timeoutMs = 200): Promise<JavaScriptUdf> => {
    const udf = await JavaScriptUdf.start({
      filename: 'gs://b/udf.js',
      functionName: 'process',
      reloadIntervalMinutes: 0,
      read,
      log: silentLogger,
      timeoutMs,
      memoryMb: 32,
    });
    started.push(udf);
    return udf;
  };

  it('keeps the event loop free while a call loops', async () => {
    const udf = await start(
      () => Promise.resolve(`function process(s) { if (s === 'loop') for (;;) {} return s; }`),
      300,
    );
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const outcomes = await udf.transform(['loop', '"ok"']);
    clearInterval(timer);
    expect(outcomes.map((o) => o.kind)).toEqual(['failed', 'output']);
    // The interval kept firing while the worker was stuck for at least 300 ms.
    expect(ticks).toBeGreaterThan(3);
  });

  it('fails only the call that exhausts the memory limit, then carries on in a new worker', async () => {
    const udf = await start(
      () =>
        Promise.resolve(`function process(s) {
        if (s === 'hog') { const keep = []; for (;;) keep.push(new Array(100000).fill(s)); }
        return s;
      }`),
      5000,
    );
    const outcomes = await udf.transform(['"a"', 'hog', '"b"']);
    expect(outcomes.map((o) => o.kind)).toEqual(['output', 'failed', 'output']);
    expect(await udf.transform(['"c"'])).toEqual([{ kind: 'output', json: '"c"' }]);
  });

  it('reloads a changed source and keeps the old one when the new one does not compile', async () => {
    let source = `function process(s) { return '"v1"'; }`;
    const udf = await start(() => Promise.resolve(source));
    expect(await udf.transform(['{}'])).toEqual([{ kind: 'output', json: '"v1"' }]);
    source = `function process(s) { return '"v2"'; }`;
    expect(await udf.reload()).toBe(true);
    expect(await udf.transform(['{}'])).toEqual([{ kind: 'output', json: '"v2"' }]);
    source = 'function process( {';
    expect(await udf.reload()).toBe(false);
    expect(await udf.transform(['{}'])).toEqual([{ kind: 'output', json: '"v2"' }]);
  });

  it('refuses to start when the source cannot be read', async () => {
    await expect(
      start(() => Promise.reject(new Error('No such object: b/udf.js'))),
    ).rejects.toThrow(/Could not read the UDF gs:\/\/b\/udf.js: No such object/);
  });
});
