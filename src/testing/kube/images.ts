/**
 * The image table: what a container image "contains" here, since nothing is pulled. Each entry is
 * what a Dockerfile's ENTRYPOINT/CMD, WORKDIR and ENV would give: the command a container runs
 * when the pod names no `command`, where it runs, and the environment it starts with.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ImageDefinition {
  /** The entrypoint, e.g. `['node']` (ENTRYPOINT). */
  command: string[];
  /** Default arguments when the pod gives no `args` (CMD). */
  args?: string[];
  /** The working directory (WORKDIR); the emulator's own working directory when absent. */
  workingDir?: string;
  /** Environment variables baked into the image (ENV). */
  env?: Record<string, string>;
}

/**
 * `node` and `docker.io/library/node:latest` are the same image; a name without a tag means
 * `:latest`. Digests are kept as they are.
 */
export function normalizeImageName(image: string): string {
  let name = image.trim();
  if (name.startsWith('docker.io/')) name = name.slice('docker.io/'.length);
  if (name.startsWith('library/')) name = name.slice('library/'.length);
  const lastSegment = name.slice(name.lastIndexOf('/') + 1);
  if (!lastSegment.includes(':') && !name.includes('@')) name += ':latest';
  return name;
}

function repositoryOf(normalized: string): string {
  const at = normalized.indexOf('@');
  if (at >= 0) return normalized.slice(0, at);
  const slash = normalized.lastIndexOf('/');
  const colon = normalized.lastIndexOf(':');
  return colon > slash ? normalized.slice(0, colon) : normalized;
}

export class ImageTable {
  private readonly images = new Map<string, ImageDefinition>();

  /**
   * Registers an image. A name with a tag (`node:20`) matches that tag only; a bare repository
   * registered with `anyTag` (`node`) matches every tag that has no entry of its own.
   */
  register(name: string, definition: ImageDefinition, options: { anyTag?: boolean } = {}): void {
    if (typeof name !== 'string' || name.trim() === '') throw new TypeError('an image name must be a non-empty string');
    if (!Array.isArray(definition?.command) || definition.command.length === 0 || !definition.command.every((c) => typeof c === 'string')) {
      throw new TypeError(`image ${name}: command must be a non-empty array of strings`);
    }
    const key = options.anyTag ? `${repositoryOf(normalizeImageName(name))}:*` : normalizeImageName(name);
    this.images.set(key, structuredClone(definition));
  }

  unregister(name: string): void {
    this.images.delete(normalizeImageName(name));
    this.images.delete(`${repositoryOf(normalizeImageName(name))}:*`);
  }

  resolve(image: string): ImageDefinition | undefined {
    const normalized = normalizeImageName(image);
    const found = this.images.get(normalized) ?? this.images.get(`${repositoryOf(normalized)}:*`);
    return found ? structuredClone(found) : undefined;
  }

  names(): string[] {
    return [...this.images.keys()].sort();
  }
}

/**
 * Parses the command line's `NAME=COMMAND` (`node:20=node --enable-source-maps`): the command is
 * split on whitespace; quote nothing, or use the programmatic API for anything fancier.
 */
export function parseImageArgument(argument: string, workingDir?: string): { name: string; definition: ImageDefinition } {
  const eq = argument.indexOf('=');
  if (eq <= 0) throw new Error(`--image expects NAME=COMMAND, got ${JSON.stringify(argument)}`);
  const name = argument.slice(0, eq).trim();
  const command = argument.slice(eq + 1).trim().split(/\s+/).filter((p) => p.length > 0);
  if (command.length === 0) throw new Error(`--image ${name}: the command is empty`);
  const definition: ImageDefinition = { command };
  if (workingDir !== undefined) definition.workingDir = workingDir;
  return { name, definition };
}

/**
 * The deploy kit's image (deploy/Dockerfile builds it): here, the compiled example app of this
 * repository, so `kubectl apply -k deploy/kubernetes` runs on the emulated cluster as it is.
 */
export const EXAMPLE_IMAGE = 'flame-actors-example:dev';

export function exampleImageDefinition(): ImageDefinition {
  const root = fileURLToPath(new URL('../../../../', import.meta.url));
  return { command: [process.execPath, join(root, 'dist/examples/k8s-square-service.js')], workingDir: root };
}
