/** What the kubelet hands each pod worker: the API, the image table, faults, and the node's settings. */
import type { EventRecorder } from './events.js';
import type { FaultInjector } from './faults.js';
import type { ImageTable } from './images.js';
import type { ProcessLauncher } from './process-launcher.js';
import type { Registry } from './registry.js';

export interface PodWorkerContext {
  registry: Registry;
  images: ImageTable;
  faults: FaultInjector;
  events: EventRecorder;
  launcher: ProcessLauncher;
  nodeName: string;
  hostIP: string;
  apiHost: string;
  apiPort: number;
  caPem: string;
  serviceAccountToken(namespace: string, name: string): string;
  baseEnv: Record<string, string>;
  defaultWorkingDir: string;
  logLimitBytes: number;
  restartBackoffMs: { initial: number; max: number };
  imagePullBackoffMs: number;
}
