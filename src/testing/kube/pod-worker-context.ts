/** What the kubelet hands each pod worker: the API, the image table, faults, and the node's settings. */
import type { EventRecorder } from './events.js';
import type { FaultInjector } from './faults.js';
import type { ImageTable } from './images.js';
import type { ProcessLauncher } from './process-launcher.js';
import type { Registry } from './registry.js';
import type { WorkQueue } from './work-queue.js';

export interface PodWorkerContext {
  registry: Registry;
  images: ImageTable;
  faults: FaultInjector;
  events: EventRecorder;
  launcher: ProcessLauncher;
  /** Where pod starts and status updates run, a slice per event-loop turn (shared with the API server's loop). */
  work: WorkQueue;
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
