import { expect } from 'chai';
import { resolveNodeOptions } from '../../src/cluster/options.js';
import { parseNodeName, DEFAULT_PORT } from '../../src/cluster/address.js';
import { InvalidOptionError, MissingEnvError } from '../../src/errors.js';
import { startNode } from '../../src/cluster/node.js';

describe('Node options and names', function () {
  it('takes identity from the environment as pods get it: FLAME_NODE_NAME / POD_IP / FLAME_COOKIE', function () {
    const fromName = resolveNodeOptions({}, { FLAME_NODE_NAME: 'app@10.1.2.3', FLAME_COOKIE: 's' });
    expect(fromName).to.include({ shortName: 'app', host: '10.1.2.3', port: DEFAULT_PORT, cookie: 's' });
    const fromPodIp = resolveNodeOptions({ name: 'worker' }, { POD_IP: '10.9.8.7', RELEASE_COOKIE: 'r' });
    expect(fromPodIp).to.include({ shortName: 'worker', host: '10.9.8.7', cookie: 'r' });
    const release = resolveNodeOptions({}, { RELEASE_NODE: 'my_app@10.0.0.1', FLAME_COOKIE: 'x' });
    expect(release).to.include({ shortName: 'my_app', host: '10.0.0.1' });
  });

  it('fails fast without a cookie, saying which variable to set', function () {
    expect(() => resolveNodeOptions({ name: 'a' }, {})).to.throw(MissingEnvError, /FLAME_COOKIE/);
  });

  it('rejects unknown and invalid options naming the option and what is allowed', function () {
    const env = { FLAME_COOKIE: 'c' };
    expect(() => resolveNodeOptions({ prot: 1 } as never, env)).to.throw(InvalidOptionError, /unknown option "prot"; allowed options are: .*port/);
    expect(() => resolveNodeOptions({ port: 70000 }, env)).to.throw(InvalidOptionError, /"port" must be an integer from 0 to 65535/);
    expect(() => resolveNodeOptions({ name: 'bad name!' }, env)).to.throw(InvalidOptionError, /"name"/);
    expect(() => resolveNodeOptions({ heartbeatInterval: 1000, heartbeatTimeout: 500 }, env)).to.throw(InvalidOptionError, /"heartbeatTimeout" must be greater than heartbeatInterval/);
    expect(() => resolveNodeOptions({ log: 'verbose' as never }, env)).to.throw(InvalidOptionError, /"log" must be one of false, "error", "warn", "info", "debug"/);
    expect(() => resolveNodeOptions({ tls: {} as never }, env)).to.throw(InvalidOptionError, /"tls"/);
    expect(() => resolveNodeOptions({}, { ...env, FLAME_PORT: 'abc' })).to.throw(MissingEnvError, /FLAME_PORT/);
  });

  it('parses name@host[:port] and IPv6 hosts', function () {
    expect(parseNodeName('app@10.0.0.1')).to.deep.include({ name: 'app', host: '10.0.0.1', port: DEFAULT_PORT, node: 'app@10.0.0.1' });
    expect(parseNodeName('app@10.0.0.1:9000')).to.deep.include({ port: 9000, node: 'app@10.0.0.1:9000' });
    expect(parseNodeName('app@[::1]:9000')).to.deep.include({ host: '::1', port: 9000 });
    expect(() => parseNodeName('no-at-sign')).to.throw(InvalidOptionError, /expected "name@host"/);
    expect(() => parseNodeName('app@host:99999')).to.throw(InvalidOptionError, /port/);
  });

  it('reports a port already in use as a clear error', async function () {
    const first = await startNode({ name: 'p@127.0.0.12', port: 0, cookie: 'c', log: false });
    try {
      const error = await startNode({ name: 'q@127.0.0.12', port: first.address.port, cookie: 'c', log: false }).then(() => undefined, (e: unknown) => e);
      expect(String(error)).to.match(/cannot listen on 127\.0\.0\.12:\d+: .*EADDRINUSE/);
    } finally {
      await first.stop();
    }
  });
});
