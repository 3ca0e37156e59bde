import { expect } from 'chai';
import { dispatch, query, type Ref } from 'nact';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesBackend } from '../../src/backends/kubernetes/backend.js';
import { moduleRef } from '../../src/flame/fn-ref.js';
import type { Pool } from '../../src/flame/pool.js';
import type { PoolOptions } from '../../src/flame/options.js';
import { BootError, BootTimeoutError, KubernetesError, MissingEnvError, RunnerDownError } from '../../src/errors.js';
import { startPool } from '../helpers/pools.js';
import { nextEvent, settlesWithin, waitFor } from '../helpers/wait.js';
import { waitForPodGone } from '../kube/helpers.js';
import type * as Jobs from '../fixtures/pool-jobs.js';
import { NAMESPACE, podNameOf, RUNNER_IMAGE, runnerPods, SERVICE_ACCOUNT, startTestBed, type TestBed } from './helpers.js';

const JOBS = new URL('../fixtures/pool-jobs.js', import.meta.url);
const markedCounter = moduleRef(JOBS, 'markedCounter');

describe('KubernetesBackend', function () {
  this.timeout(30_000);
  let bed: TestBed;
  let parents = 0;
  let dir: string;

  before(async function () {
    bed = await startTestBed();
    dir = mkdtempSync(join(tmpdir(), 'flame-k8s-'));
  });

  after(async function () {
    await bed?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    bed?.cluster.faults.clear();
  });

  /** A fresh parent pod per test, so cascades and leftovers never cross tests. */
  async function parentPod(): Promise<string> {
    const name = `shop-web-${++parents}`;
    await bed.createParentPod(name);
    return name;
  }

  async function pool(name: string, extra: Partial<PoolOptions> = {}, backendOptions = {}): Promise<Pool> {
    const podName = await parentPod();
    return startPool({
      name,
      backend: new KubernetesBackend(bed.options(podName, backendOptions)),
      node: bed.node,
      max: 1,
      shutdownTimeout: 1000,
      failsafeTimeout: 3000,
      log: false,
      ...extra,
    });
  }

  describe('running work on runner pods', function () {
    it('runs a call on a runner pod and returns its result', async function () {
      const p = await pool('sum');
      const up = nextEvent<[unknown, number]>(p, 'runnerUp', 20_000);
      expect(await p.call((a: number, b: number) => a + b, [1, 2])).to.equal(3);
      const [, bootMs] = await up;
      const [runner] = p.status().runners;
      expect(runner!.description).to.match(/^pod shop-web-\d+-sum-\w+ \(127\.1\.\d+\.\d+\)$/);
      console.log(`      (runner pod booted and connected in ${Math.round(bootMs)} ms)`);
    });

    it('places an actor on a runner pod', async function () {
      const p = await pool('place');
      const counter = await p.placeChild<Jobs.CounterMsg>(markedCounter, [join(dir, 'counter-stopped'), 40]);
      dispatch(counter, { type: 'inc' });
      dispatch(counter, { type: 'inc' });
      expect(await query(counter, (sender: Ref<number>) => ({ type: 'get' as const, sender }), 5000)).to.equal(42);
    });
  });
});

void [BootError, BootTimeoutError, KubernetesError, MissingEnvError, RunnerDownError, settlesWithin, waitFor, waitForPodGone, NAMESPACE, podNameOf, RUNNER_IMAGE, runnerPods, SERVICE_ACCOUNT];
