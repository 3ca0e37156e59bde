import { expect } from 'chai';
import { DEFAULT_PORT, parseNodeName } from '../../src/cluster/address.js';
import { resolveNodeOptions } from '../../src/cluster/options.js';
import { acquireParentNode, releaseParentNode } from '../../src/flame/parent-node.js';
import { InvalidOptionError } from '../../src/errors.js';

describe('Node names in a pod', function () {
  it('an IPv6-only cluster\'s app@$(POD_IP) is a valid node name (bare IPv6, default port)', function () {
    expect(parseNodeName('app@fd00:10:244::1a')).to.deep.include({ name: 'app', host: 'fd00:10:244::1a', port: DEFAULT_PORT, node: 'app@[fd00:10:244::1a]' });
    expect(parseNodeName('app@[fd00::1]:9000')).to.deep.include({ host: 'fd00::1', port: 9000 });
    expect(() => parseNodeName('app@fd00:::zz')).to.throw(InvalidOptionError);
  });

  it('startNode reads FLAME_NODE_NAME=app@<IPv6> with FLAME_PORT', function () {
    const o = resolveNodeOptions({ cookie: 'c' }, { FLAME_NODE_NAME: 'app@fd00:10:244::1a', FLAME_PORT: '4400' });
    expect(o).to.include({ shortName: 'app', host: 'fd00:10:244::1a', port: 4400 });
  });

  it('the pool\'s parent node honours RELEASE_NODE like startNode', async function () {
    const saved = { ...process.env };
    process.env.RELEASE_NODE = 'shop@127.0.0.7';
    process.env.FLAME_PORT = '0';
    delete process.env.FLAME_NODE_NAME;
    const node = await acquireParentNode(false, undefined);
    try {
      expect(node.name).to.match(/^shop@127\.0\.0\.7:\d+$/);
    } finally {
      process.env = saved;
      await releaseParentNode(node);
    }
  });
});
