import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { LabError } from '../errors.js';

/**
 * The detector's weights: COCO-SSD with a lite MobileNet v2 backbone, as converted for
 * TensorFlow.js, kept in the repository under assets/model/coco-ssd (see the README there for
 * where the files come from and their licence). Every file is pinned by SHA-256 and checked
 * before the model is used, so a damaged or swapped file fails loudly instead of detecting
 * nonsense.
 */

export const MODEL_NAME = 'coco-ssd-lite_mobilenet_v2';

export const MODEL_FILES: Readonly<Record<string, string>> = {
  'model.json': '3770b2528339b1e3340cb74360e1e40401816b009779aeb8d0cce3a4353ea3a9',
  'group1-shard1of5': '0e7af0f713e98521252321f7f84892c31cefccccec3ac64c84e5065b75ed5646',
  'group1-shard2of5': '74cc6cfc2c4510c9cd81b8ad4cebf6f6a8f305119bb365ce0eb96276da38519a',
  'group1-shard3of5': '50383033f893eae136392a403e8f70ade5efd90867df5695c4ca5ac640e14f38',
  'group1-shard4of5': 'd856dc534c780068bbf6c666ce1516df2c8433d87578aa31fcdf197de7058cc2',
  'group1-shard5of5': '3d356f1fb6dfca6af78c56db34d9326706d0196e303f9de6b04f236ca79ed309',
};

const RELATIVE_DIR = join('assets', 'model', 'coco-ssd');

/** The model folder shipped with cymbal-lab, found by walking up from this module. */
export function defaultModelDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, RELATIVE_DIR);
    if (existsSync(join(candidate, 'model.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return resolve(RELATIVE_DIR);
    dir = parent;
  }
}

/** Checks every file against its pinned hash; throws a LabError that says how to recover. */
export function verifyModel(dir: string): void {
  for (const [name, expected] of Object.entries(MODEL_FILES)) {
    const file = join(dir, name);
    if (!existsSync(file)) {
      throw new LabError(`The object detection model is missing: ${file} does not exist.`, {
        hint:
          'The model ships in the cymbal-lab repository under assets/model/coco-ssd; restore it ' +
          'with `git checkout -- assets/model` or clone the repository again.',
      });
    }
    const actual = createHash('sha256').update(readFileSync(file)).digest('hex');
    if (actual !== expected) {
      throw new LabError(
        `The object detection model file ${file} is damaged (SHA-256 ${actual}).`,
        {
          hint:
            'Restore it with `git checkout -- assets/model` (expected SHA-256 ' + expected + ').',
        },
      );
    }
  }
}

/** The model's topology and weights, as TensorFlow.js's loader expects them. */
export interface ModelArtifacts {
  modelTopology: object;
  weightSpecs: object[];
  weightData: ArrayBuffer;
}

interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: object[] }[];
}

export function readModel(dir: string): ModelArtifacts {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelJson;
  const shards = json.weightsManifest.flatMap((group) =>
    group.paths.map((path) => readFileSync(join(dir, path))),
  );
  const weights = Buffer.concat(shards);
  return {
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
  };
}
