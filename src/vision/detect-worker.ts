import { parentPort, workerData } from 'node:worker_threads';

import type { Detection } from './box.js';
import { Detector } from './detector.js';

/**
 * One detector per worker thread. It loads the model once, then answers frames one at a time;
 * the pool never sends a second frame before the first is answered.
 */

export interface WorkerInit {
  modelDir: string;
}

export interface FrameRequest {
  id: number;
  width: number;
  height: number;
  rgb: Uint8Array;
}

export type WorkerMessage =
  | { type: 'ready'; loadMs: number }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; detections: Detection[] }
  | { type: 'error'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('detect-worker.js runs only as a worker thread.');
const { modelDir } = workerData as WorkerInit;
const post = (message: WorkerMessage): void => port.postMessage(message);

const started = performance.now();
Detector.load(modelDir).then(
  (detector) => {
    post({ type: 'ready', loadMs: performance.now() - started });
    port.on('message', (request: FrameRequest) => {
      detector.detect(request.rgb, request.width, request.height).then(
        (detections) => post({ type: 'result', id: request.id, detections }),
        (error: unknown) =>
          post({
            type: 'error',
            id: request.id,
            message: (error as Error).message ?? String(error),
          }),
      );
    });
  },
  (error: unknown) => post({ type: 'failed', message: (error as Error).message ?? String(error) }),
);
