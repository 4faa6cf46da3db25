import { parentPort } from 'node:worker_threads';

import type { UdfOutcome } from './sandbox.js';
import { UdfSandbox } from './sandbox.js';

/**
 * The worker thread that hosts the UDF sandbox, so that a UDF which is slow, loops or eats memory
 * holds up this thread and never the pipeline's event loop. Messages in: `load` (compile a
 * source) and `run` (call the UDF on a batch). Every answer carries the request's `id`.
 */

export type WorkerRequest =
  | {
      id: number;
      type: 'load';
      source: string;
      filename: string;
      functionName: string;
      timeoutMs: number;
    }
  | { id: number; type: 'run'; inputs: string[] };

export type WorkerReply =
  { id: number; ok: true; outcomes?: UdfOutcome[] } | { id: number; ok: false; error: string };

const port = parentPort;
if (!port) throw new Error('The UDF worker must run as a worker thread.');

let sandbox: UdfSandbox | undefined;

port.on('message', (request: WorkerRequest) => {
  port.postMessage(answer(request));
});

function answer(request: WorkerRequest): WorkerReply {
  try {
    if (request.type === 'load') {
      sandbox = new UdfSandbox(request.source, {
        filename: request.filename,
        functionName: request.functionName,
        timeoutMs: request.timeoutMs,
      });
      return { id: request.id, ok: true };
    }
    if (!sandbox) return { id: request.id, ok: false, error: 'No UDF is loaded.' };
    return { id: request.id, ok: true, outcomes: sandbox.run(request.inputs) };
  } catch (error) {
    return {
      id: request.id,
      ok: false,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}
