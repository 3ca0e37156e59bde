import { expect } from 'chai';
import { expandReferences } from '../../src/testing/kube/env.js';
import { ImageTable, normalizeImageName, parseImageArgument } from '../../src/testing/kube/images.js';
import { jsonMergePatch, jsonPatch, strategicMergePatch } from '../../src/testing/kube/patch.js';
import { parseFieldSelector, parseLabelSelector } from '../../src/testing/kube/selectors.js';
import { ObjectStore } from '../../src/testing/kube/store.js';
import { humanDuration } from '../../src/testing/kube/table.js';

describe('Emulated cluster building blocks', function () {
  describe('label selectors', function () {
    it('understand equality, set and existence requirements', function () {
      const match = parseLabelSelector('app=flame,tier!=web,env in (dev, test),!legacy,owner');
      expect(match({ app: 'flame', env: 'dev', owner: 'me' })).to.equal(true);
      expect(match({ app: 'flame', env: 'prod', owner: 'me' })).to.equal(false);
      expect(match({ app: 'flame', env: 'dev', owner: 'me', legacy: 'y' })).to.equal(false);
      expect(match({ app: 'flame', env: 'dev', owner: 'me', tier: 'web' })).to.equal(false);
      expect(parseLabelSelector('x notin (a)')({})).to.equal(true);
    });

    it('refuse what does not parse with 400', function () {
      expect(() => parseLabelSelector('a in (b')).to.throw(/unable to parse requirement/);
    });
  });

  describe('field selectors', function () {
    it('match only the fields a resource supports', function () {
      const match = parseFieldSelector('metadata.name=x,status.phase!=Failed', ['metadata.name', 'status.phase']);
      expect(match({ 'metadata.name': 'x', 'status.phase': 'Running' })).to.equal(true);
      expect(match({ 'metadata.name': 'x', 'status.phase': 'Failed' })).to.equal(false);
      expect(() => parseFieldSelector('spec.foo=1', ['metadata.name'])).to.throw('field label not supported: spec.foo');
    });
  });

  describe('patches', function () {
    it('JSON merge patch replaces lists and deletes keys set to null', function () {
      expect(jsonMergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { b: { c: null, e: 4 }, l: [3] })).to.deep.equal({ a: 1, b: { d: 3, e: 4 }, l: [3] });
    });

    it('strategic merge patch merges keyed lists and honours $patch: delete', function () {
      const pod = { spec: { containers: [{ name: 'a', image: 'x:1', command: ['run'] }, { name: 'b', image: 'y:1' }] } };
      const patched = strategicMergePatch(pod, {
        spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'a', image: 'x:2' }, { name: 'b', $patch: 'delete' }] },
      });
      expect(patched).to.deep.equal({ spec: { containers: [{ name: 'a', image: 'x:2', command: ['run'] }] } });
    });

    it('JSON patch applies add, replace, remove and test', function () {
      const doc = { metadata: { labels: { a: '1' } }, list: [1, 2] };
      const patched = jsonPatch(doc, [
        { op: 'add', path: '/metadata/labels/b', value: '2' },
        { op: 'replace', path: '/metadata/labels/a', value: 'one' },
        { op: 'remove', path: '/list/0' },
        { op: 'add', path: '/list/-', value: 3 },
        { op: 'test', path: '/list/0', value: 2 },
      ]);
      expect(patched).to.deep.equal({ metadata: { labels: { a: 'one', b: '2' } }, list: [2, 3] });
      expect(() => jsonPatch(doc, [{ op: 'test', path: '/list/0', value: 9 }])).to.throw(/testing value/);
    });
  });

  describe('$(VAR) expansion', function () {
    it('expands known variables, keeps unknown ones and unescapes $$', function () {
      const vars = new Map([['POD_IP', '127.1.0.5']]);
      expect(expandReferences('my_app@$(POD_IP)', vars)).to.equal('my_app@127.1.0.5');
      expect(expandReferences('$(NOPE)/$$(POD_IP)/$', vars)).to.equal('$(NOPE)/$(POD_IP)/$');
      expect(expandReferences('$(unclosed', vars)).to.equal('$(unclosed');
    });
  });

  describe('image table', function () {
    it('normalizes names like a registry and matches any tag of a bare repository registered so', function () {
      expect(normalizeImageName('docker.io/library/node')).to.equal('node:latest');
      expect(normalizeImageName('localhost:5000/app')).to.equal('localhost:5000/app:latest');
      const table = new ImageTable();
      table.register('app', { command: ['any'] }, { anyTag: true });
      table.register('app:2', { command: ['two'] });
      expect(table.resolve('app:1')?.command).to.deep.equal(['any']);
      expect(table.resolve('docker.io/library/app:2')?.command).to.deep.equal(['two']);
      expect(table.resolve('other:1')).to.equal(undefined);
      expect(() => table.register('bad', { command: [] })).to.throw(/non-empty array/);
      expect(parseImageArgument('runner:1=node dist/src/runner/main.js', '/work')).to.deep.equal({
        name: 'runner:1',
        definition: { command: ['node', 'dist/src/runner/main.js'], workingDir: '/work' },
      });
    });
  });

  describe('object store', function () {
    it('gives every change a higher revision and forgets changes beyond its window', function () {
      const store = new ObjectStore(2);
      const a = store.insert('secrets', 'ns', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a' } });
      store.insert('secrets', 'ns', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'b' } });
      store.remove('secrets', 'ns', 'a');
      expect(store.resourceVersion).to.equal(3);
      expect(store.changesSince(1).map((c) => c.type)).to.deep.equal(['ADDED', 'DELETED']);
      expect(() => store.changesSince(0)).to.throw('too old resource version: 0 (1)');
      expect(Object.isFrozen(a.metadata)).to.equal(true);
    });
  });

  it('prints ages as kubectl does', function () {
    expect([5_000, 125_000, 11 * 60_000, 5 * 3600_000 + 60_000, 3 * 86400_000].map(humanDuration)).to.deep.equal(['5s', '2m5s', '11m', '5h1m', '3d']);
  });
});
