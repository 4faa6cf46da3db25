import { mkdirSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';

import { extract } from 'tar';

import { ApiError } from '../http.js';
import type { StorageService } from '../storage/service.js';

/**
 * Fetches a build's source archive from the local Cloud Storage (through its in-process API)
 * and unpacks it: a gzipped tarball, as `gcloud builds submit` uploads, or a plain tarball.
 */
export async function fetchSource(
  storage: StorageService,
  source: { bucket: string; object: string },
  into: string,
): Promise<void> {
  const { stream } = await storage.openObject(source.bucket, source.object).catch((error) => {
    throw new ApiError(
      'NOT_FOUND',
      `The source archive gs://${source.bucket}/${source.object} could not be read: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  });
  mkdirSync(into, { recursive: true });
  try {
    // Paths that would leave the folder (absolute, or through `..`) are refused by tar itself.
    await pipeline(stream, extract({ cwd: into, strict: true }));
  } catch (error) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `gs://${source.bucket}/${source.object} is not a tar archive that can be unpacked: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}
