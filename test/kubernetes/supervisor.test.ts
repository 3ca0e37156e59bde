import { expect } from 'chai';
import { start as startSystem, stop as stopSystem } from 'nact';
import type { V1Pod } from '@kubernetes/client-node';
import { RunnerPodSupervisor, TRANSITIONS } from '../../src/backends/kubernetes/supervisor.js';
import { createLogger } from '../../src/log.js';
import { waitFor } from '../helpers/wait.js';

const running = (name: string, ip: string): V1Pod => ({
  metadata: { name },
  status: { phase: 'Running', podIP: ip, containerStatuses: [{ name: 'runner', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] },
});

describe('RunnerPodSupervisor', function () {
  let system: ReturnType<typeof startSystem>;
  let supervisor: RunnerPodSupervisor;
  const lines: string[] = [];
  const exited: [string, string][] = [];

  beforeEach(function () {
    system = startSystem();
    lines.length = 0;
    exited.length = 0;
    supervisor = new RunnerPodSupervisor({
      system, name: 'sup', waitWhenUnschedulable: true, imagePullTimeout: 30_000,
      logger: createLogger('debug', '', (_level, line) => lines.push(line)),
      runnerExited: (id, reason) => exited.push([id, reason]),
    });
  });

  afterEach(function () {
    supervisor.stop();
    stopSystem(system);
  });

  it('is one transition table: booting -> up -> ended, released from either, nothing out of ended', function () {
    expect(TRANSITIONS).to.deep.equal({
      booting: { started: 'up', cannotStart: 'ended', released: 'ended' },
      up: { gone: 'ended', released: 'ended' },
      ended: {},
    });
  });

  it('moves a pod along the table, logging each transition at debug, and reports a runner gone once', async function () {
    supervisor.observe('ADDED', { metadata: { name: 'p1' }, status: { phase: 'Pending' } });
    const outcome = supervisor.expect('r-1', 'p1');
    supervisor.observe('MODIFIED', running('p1', '10.0.0.7'));
    expect(await outcome).to.deep.equal({ ok: true, ip: '10.0.0.7' });
    supervisor.observe('MODIFIED', { ...running('p1', '10.0.0.7'), metadata: { name: 'p1', deletionTimestamp: new Date() } });
    supervisor.observe('DELETED', running('p1', '10.0.0.7'));
    await waitFor(() => lines.some((l) => l.includes('up -> ended')), 'the up -> ended transition');
    expect(exited).to.deep.equal([['r-1', 'pod p1 is being deleted']]);
    expect(lines.filter((l) => / -> /.test(l))).to.deep.equal([
      'runner r-1: pod p1 booting -> up (started: running on 10.0.0.7)',
      'runner r-1: pod p1 up -> ended (gone: pod p1 is being deleted)',
    ]);
  });

  it('tells a boot what its pod waits for, and fails it on what cannot heal', async function () {
    const outcome = supervisor.expect('r-2', 'p2');
    supervisor.observe('ADDED', { metadata: { name: 'p2' }, status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' }] } });
    await waitFor(() => supervisor.waitingFor('p2') !== undefined, 'the waiting reason');
    expect(supervisor.waitingFor('p2')).to.equal('the scheduler: Unschedulable (0/3 nodes are available)');
    supervisor.observe('MODIFIED', { metadata: { name: 'p2' }, status: { phase: 'Pending', containerStatuses: [{ name: 'runner', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'InvalidImageName', message: 'bad' } } }] } });
    expect(await outcome).to.deep.equal({ ok: false, reason: 'pod p2 cannot start: InvalidImageName (bad)' });
  });
});
