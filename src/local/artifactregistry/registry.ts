import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

import { notFound } from '../http.js';

/**
 * The images the local cloud can run, and the names they are pushed under. Cloud Build adds an
 * image when a build succeeds, Artifact Registry lists them, and Cloud Run resolves the image of
 * a revision here.
 *
 * An image is either a Node image (a folder with the app and its production dependencies, run
 * with `npm start`), kept under `images/<digest>/`, or a Docker image that lives in the Docker
 * engine. Its digest is the sha256 of its content, so a rebuild of the same source gets the same
 * digest, and a build whose source was built before reuses the folder.
 */

export type ImageKind = 'node' | 'docker';

export interface ImageRecord {
  /** `sha256:<hex>`. */
  digest: string;
  kind: ImageKind;
  /** The Node image's folder; absent for Docker images. */
  folder?: string;
  /** The Docker engine's image id; absent for Node images. */
  dockerId?: string;
  /** sha256 of the build's source tree, to reuse an image built from the same source. */
  sourceHash: string;
  sizeBytes: number;
  createTime: string;
}

interface RegistryFile {
  images: Record<string, ImageRecord>;
  /** `name:tag` to digest. */
  tags: Record<string, string>;
}

export class ImageRegistry {
  private readonly file: string;
  private readonly imagesDir: string;
  private data: RegistryFile = { images: {}, tags: {} };

  constructor(readonly root: string) {
    this.file = join(root, 'images.json');
    this.imagesDir = join(root, 'images');
  }

  open(): void {
    mkdirSync(this.imagesDir, { recursive: true });
    if (existsSync(this.file)) {
      this.data = JSON.parse(readFileSync(this.file, 'utf8')) as RegistryFile;
    }
  }

  /** An image built earlier from the same source, if it is still there. */
  bySource(sourceHash: string, kind: ImageKind): ImageRecord | undefined {
    return Object.values(this.data.images).find(
      (image) =>
        image.sourceHash === sourceHash &&
        image.kind === kind &&
        (image.folder === undefined || existsSync(image.folder)),
    );
  }

  /**
   * Moves a finished Node image folder into the registry (or drops it when the same content is
   * there already) and returns its record. Like a Docker image's, the digest is made of its
   * layers' digests: the source tree's and the installed dependencies' (`node_modules`).
   */
  async addNodeImage(
    folder: string,
    source: FolderDigest,
    dependencies: FolderDigest,
  ): Promise<ImageRecord> {
    const sourceHash = source.digest;
    const digest = `sha256:${createHash('sha256').update(`${source.digest}\n${dependencies.digest}`).digest('hex')}`;
    const sizeBytes = source.sizeBytes + dependencies.sizeBytes;
    const existing = this.data.images[digest];
    if (existing?.folder && existsSync(existing.folder)) {
      await rm(folder, { recursive: true, force: true });
      return existing;
    }
    const target = join(this.imagesDir, digest.replace(':', '-'));
    await rm(target, { recursive: true, force: true });
    await rename(folder, target);
    const record: ImageRecord = {
      digest,
      kind: 'node',
      folder: target,
      sourceHash,
      sizeBytes,
      createTime: new Date().toISOString(),
    };
    return this.keep(record);
  }

  async addDockerImage(
    dockerId: string,
    sourceHash: string,
    sizeBytes: number,
  ): Promise<ImageRecord> {
    const digest = dockerId.startsWith('sha256:') ? dockerId : `sha256:${dockerId}`;
    const record: ImageRecord = {
      digest,
      kind: 'docker',
      dockerId,
      sourceHash,
      sizeBytes,
      createTime: new Date().toISOString(),
    };
    return this.keep(record);
  }

  private async keep(record: ImageRecord): Promise<ImageRecord> {
    this.data.images[record.digest] = record;
    await this.save();
    return record;
  }

  /** Points `name:tag` (`:latest` when no tag is given) at an image. */
  async tag(reference: string, digest: string): Promise<string> {
    const ref = normalizeReference(reference);
    this.data.tags[ref] = digest;
    await this.save();
    return ref;
  }

  /** The image a reference names: `name`, `name:tag` or `name@sha256:...`. */
  resolve(reference: string): ImageRecord {
    const at = reference.indexOf('@sha256:');
    const digest =
      at >= 0 ? reference.slice(at + 1) : this.data.tags[normalizeReference(reference)];
    const image = digest ? this.data.images[digest] : undefined;
    if (!image) {
      throw notFound(
        `Image ${reference} was not found in the local registry; build it with Cloud Build first.`,
      );
    }
    return image;
  }

  /** Tags whose name starts with `prefix`, with their images. */
  tagged(prefix: string): Array<{ reference: string; image: ImageRecord }> {
    return Object.entries(this.data.tags)
      .filter(([ref]) => ref.startsWith(prefix))
      .flatMap(([reference, digest]) => {
        const image = this.data.images[digest];
        return image ? [{ reference, image }] : [];
      });
  }

  /** Removes the tags under `prefix` (a deleted repository), keeping images others still tag. */
  async untagAll(prefix: string): Promise<void> {
    for (const ref of Object.keys(this.data.tags)) {
      if (ref.startsWith(prefix)) delete this.data.tags[ref];
    }
    await this.save();
  }

  private async save(): Promise<void> {
    const temporary = `${this.file}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(this.data, null, 1));
    await rename(temporary, this.file);
  }
}

/** `name` or `name:tag` or `name@digest`; a name without tag or digest means `:latest`. */
export function normalizeReference(reference: string): string {
  if (reference.includes('@')) return reference;
  const lastSlash = reference.lastIndexOf('/');
  return reference.indexOf(':', lastSlash + 1) >= 0 ? reference : `${reference}:latest`;
}

/**
 * The sha256 of a folder's content: every file's relative path and bytes (and every symbolic
 * link's target), in sorted order, so the same tree always gives the same digest.
 */
export interface FolderDigest {
  digest: string;
  sizeBytes: number;
}

export async function digestOfFolder(folder: string): Promise<FolderDigest> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const rel = relative(folder, path);
      if (entry.isDirectory()) {
        hash.update(`d ${rel}\0`);
        await walk(path);
      } else if (entry.isSymbolicLink()) {
        hash.update(`l ${rel}\0${await readlink(path)}\0`);
      } else if (entry.isFile()) {
        const bytes = await readFile(path);
        sizeBytes += bytes.length;
        hash.update(`f ${rel}\0${bytes.length}\0`);
        hash.update(bytes);
      }
    }
  };
  await walk(folder);
  return { digest: `sha256:${hash.digest('hex')}`, sizeBytes };
}
