/**
 * Faults on demand, so that tests can see how a client copes with what real clusters do to it:
 * pods that never get scheduled, images that cannot be pulled, containers that crash at start,
 * nodes that die under a pod, watch connections that drop, and an API that answers 429 or 500.
 *
 * Pod faults are armed ahead of time with a {@link PodMatch} (pods often get generated names) and
 * apply to the next `times` matching pods; each returns a handle to disarm it.
 */
import { parseLabelSelector } from './selectors.js';
import type { Pod } from './types.js';

/** Which pods a fault applies to; every given field must match. */
export interface PodMatch {
  namespace?: string;
  name?: string;
  /** Matches `metadata.name` by prefix, handy with `generateName`. */
  namePrefix?: string;
  /** A label selector in the usual grammar (`app=runner,tier!=web`). */
  labelSelector?: string;
}

export interface FaultHandle {
  /** How many more pods (or requests) the fault will still hit. */
  readonly remaining: number;
  /** Disarms the fault; pods held Pending by it get scheduled. */
  clear(): void;
}

export type PodFaultKind = 'unschedulable' | 'imagePullFailure' | 'crashOnStart';

export interface PodFaultOptions {
  /** How many matching pods the fault hits (default 1; `Infinity` for all until cleared). */
  times?: number;
}

export interface CrashOnStartOptions extends PodFaultOptions {
  /** The crashing container's exit code (default 1). */
  exitCode?: number;
}

export interface RequestFaultOptions {
  /** 429 Too Many Requests or 500 Internal Server Error. */
  code: 429 | 500;
  /** How many requests get the fault (default 1). */
  count?: number;
  /** Retry-After for 429 (default 1 second). */
  retryAfterSeconds?: number;
  /** Only requests with this verb (`get`, `list`, `watch`, `create`, `delete`, `patch`...). */
  verb?: string;
  /** Only requests for this resource (`pods`, `secrets`...). */
  resource?: string;
}

export interface NodeFailureOptions {
  /**
   * What the control plane then does with the pod object: `'fail'` (default) marks it Failed with
   * reason `NodeLost`, like the node lifecycle controller; `'delete'` also removes it, as the
   * taint-based eviction does; `'keep'` leaves its status as it was, as during a network partition.
   */
  afterwards?: 'fail' | 'delete' | 'keep';
}

/** The cluster's means to act on faults that strike right away. */
export interface FaultActions {
  dropWatches(cleanly: boolean): number;
  killNodeOf(namespace: string, name: string, options: NodeFailureOptions): Promise<void>;
  rescheduleWaitingPods(): void;
}

interface ArmedPodFault {
  kind: PodFaultKind;
  match: PodMatch;
  matches: (pod: Pod) => boolean;
  remaining: number;
  exitCode: number;
}

interface ArmedRequestFault {
  options: RequestFaultOptions;
  remaining: number;
}

export interface RequestFault {
  code: 429 | 500;
  retryAfterSeconds: number;
}

export interface PodFault {
  kind: PodFaultKind;
  exitCode: number;
}

function compileMatch(match: PodMatch): (pod: Pod) => boolean {
  const labels = parseLabelSelector(match.labelSelector);
  return (pod) => {
    const meta = pod.metadata ?? {};
    if (match.namespace !== undefined && meta.namespace !== match.namespace) return false;
    if (match.name !== undefined && meta.name !== match.name) return false;
    if (match.namePrefix !== undefined && !(meta.name ?? '').startsWith(match.namePrefix)) return false;
    return labels(meta.labels);
  };
}

function checkCount(value: number | undefined, what: string): number {
  const count = value ?? 1;
  if (!(count === Infinity || (Number.isInteger(count) && count > 0))) {
    throw new RangeError(`${what} must be a positive integer or Infinity, got ${String(value)}`);
  }
  return count;
}

export class FaultInjector {
  private readonly podFaults: ArmedPodFault[] = [];
  private readonly requestFaults: ArmedRequestFault[] = [];
  /** Pods a fault has hit stay hit (a crashing container crashes at every restart). */
  private readonly struck = new Map<string, { armed: ArmedPodFault }>();

  constructor(private readonly actions: FaultActions) {}

  /** The next matching pods stay Pending with `PodScheduled=False`, reason `Unschedulable`. */
  keepPending(match: PodMatch = {}, options: PodFaultOptions = {}): FaultHandle {
    return this.armPodFault('unschedulable', match, options, 0);
  }

  /** The next matching pods' images fail to pull: waiting reason `ErrImagePull`, then `ImagePullBackOff`. */
  failImagePull(match: PodMatch = {}, options: PodFaultOptions = {}): FaultHandle {
    return this.armPodFault('imagePullFailure', match, options, 0);
  }

  /** The next matching pods' containers exit as soon as they start (and at every restart). */
  crashOnStart(match: PodMatch = {}, options: CrashOnStartOptions = {}): FaultHandle {
    const exitCode = options.exitCode ?? 1;
    if (!Number.isInteger(exitCode) || exitCode < 1 || exitCode > 255) {
      throw new RangeError(`exitCode must be an integer from 1 to 255, got ${String(options.exitCode)}`);
    }
    return this.armPodFault('crashOnStart', match, options, exitCode);
  }

  /**
   * Kills the pod's process at once with SIGKILL, as if its node had died, and then treats the pod
   * object as `options.afterwards` says. Resolves once the process is gone.
   */
  killNode(namespace: string, name: string, options: NodeFailureOptions = {}): Promise<void> {
    return this.actions.killNodeOf(namespace, name, options);
  }

  /**
   * Cuts every open watch connection mid-stream (no final chunk), as a broken network does; with
   * `cleanly`, ends them properly instead, as the real server does when a watch times out. Returns
   * how many watches were open.
   */
  dropWatches(options: { cleanly?: boolean } = {}): number {
    return this.actions.dropWatches(options.cleanly ?? false);
  }

  /** The next `count` API requests (optionally of one verb/resource) get a 429 or 500 `Status`. */
  failRequests(options: RequestFaultOptions): FaultHandle {
    if (options.code !== 429 && options.code !== 500) throw new RangeError(`code must be 429 or 500, got ${String(options.code)}`);
    const armed: ArmedRequestFault = { options: { ...options }, remaining: checkCount(options.count, 'count') };
    this.requestFaults.push(armed);
    return {
      get remaining() {
        return armed.remaining;
      },
      clear: () => {
        armed.remaining = 0;
      },
    };
  }

  /** Disarms every fault. */
  clear(): void {
    this.podFaults.length = 0;
    this.requestFaults.length = 0;
    this.actions.rescheduleWaitingPods();
  }

  /** Called for every API request: the fault to answer with, if one is armed for it. */
  takeRequestFault(verb: string, resource: string | undefined): RequestFault | undefined {
    const armed = this.requestFaults.find(
      (f) =>
        f.remaining > 0 &&
        (f.options.verb === undefined || f.options.verb === verb) &&
        (f.options.resource === undefined || f.options.resource === resource),
    );
    if (!armed) return undefined;
    armed.remaining--;
    return { code: armed.options.code, retryAfterSeconds: armed.options.retryAfterSeconds ?? 1 };
  }

  /**
   * Called by the kubelet at each stage of a pod: the fault that strikes it there, if any. A pod
   * once struck stays struck while its fault is armed (a crashing container crashes at every
   * restart; an unschedulable pod waits until the fault is cleared).
   */
  podFault(pod: Pod, kind: PodFaultKind): PodFault | undefined {
    const key = `${pod.metadata?.uid ?? ''}/${kind}`;
    const already = this.struck.get(key);
    if (already && (kind !== 'unschedulable' || this.podFaults.includes(already.armed))) {
      return { kind, exitCode: already.armed.exitCode };
    }
    const armed = this.podFaults.find((f) => f.kind === kind && f.remaining > 0 && f.matches(pod));
    if (!armed) return undefined;
    armed.remaining--;
    this.struck.set(key, { armed });
    return { kind, exitCode: armed.exitCode };
  }

  forget(uid: string): void {
    for (const key of [...this.struck.keys()]) if (key.startsWith(`${uid}/`)) this.struck.delete(key);
  }

  private armPodFault(kind: PodFaultKind, match: PodMatch, options: PodFaultOptions, exitCode: number): FaultHandle {
    const armed: ArmedPodFault = { kind, match: { ...match }, matches: compileMatch(match), remaining: checkCount(options.times, 'times'), exitCode };
    this.podFaults.push(armed);
    return {
      get remaining() {
        return Math.max(0, armed.remaining);
      },
      clear: () => {
        const index = this.podFaults.indexOf(armed);
        if (index >= 0) this.podFaults.splice(index, 1);
        if (kind === 'unschedulable') this.actions.rescheduleWaitingPods();
      },
    };
  }
}
