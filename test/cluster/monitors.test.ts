import { expect } from 'chai';
import { Monitors } from '../../src/cluster/monitors.js';
import { NodeDownError } from '../../src/errors.js';

describe('Monitors', () => {
  it('tells each watcher of a node that went down, once, and no watcher of another node', () => {
    const monitors = new Monitors();
    const heard: string[] = [];
    monitors.watch('a@127.0.0.1:1', true, (r) => heard.push(`first: ${r.message}`));
    monitors.watch('a@127.0.0.1:1', true, (r) => heard.push(`second: ${r.message}`));
    monitors.watch('b@127.0.0.1:1', true, (r) => heard.push(`b: ${r.message}`));
    monitors.nodeDown('a@127.0.0.1:1', new Error('gone'));
    monitors.nodeDown('a@127.0.0.1:1', new Error('gone again'));
    expect(heard).to.deep.equal(['first: gone', 'second: gone']);
  });

  it('tells nothing to a cancelled watcher, and cancelling twice is harmless', () => {
    const monitors = new Monitors();
    const heard: string[] = [];
    const cancel = monitors.watch('a@127.0.0.1:1', true, () => heard.push('cancelled one'));
    monitors.watch('a@127.0.0.1:1', true, () => heard.push('kept one'));
    cancel();
    cancel();
    monitors.nodeDown('a@127.0.0.1:1', new Error('gone'));
    expect(heard).to.deep.equal(['kept one']);
  });

  it('answers a monitor of a node that is not connected with NodeDownError, in a microtask', async () => {
    const monitors = new Monitors();
    const heard: Error[] = [];
    monitors.watch('a@127.0.0.1:1', false, (r) => heard.push(r));
    expect(heard).to.have.length(0);
    await Promise.resolve();
    expect(heard).to.have.length(1);
    expect(heard[0]).to.be.instanceOf(NodeDownError);
    expect(heard[0]!.message).to.include('a@127.0.0.1:1 is not connected');
  });

  it('lets a watcher cancel another and set a new monitor while it is told', () => {
    const monitors = new Monitors();
    const heard: string[] = [];
    let cancelSecond = (): void => {};
    monitors.watch('a@127.0.0.1:1', true, () => {
      heard.push('first');
      cancelSecond();
      monitors.watch('a@127.0.0.1:1', true, () => heard.push('set while told'));
    });
    cancelSecond = monitors.watch('a@127.0.0.1:1', true, () => heard.push('second'));
    monitors.nodeDown('a@127.0.0.1:1', new Error('gone'));
    expect(heard).to.deep.equal(['first']);
    monitors.nodeDown('a@127.0.0.1:1', new Error('gone again'));
    expect(heard).to.deep.equal(['first', 'set while told']);
  });
});
