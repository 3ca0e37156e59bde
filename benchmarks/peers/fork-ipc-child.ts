/**
 * The bare baseline: a forked Node process answering over the IPC channel, nothing else loaded.
 * `{ id, a, b }` is a call answered with `{ id, r }`; `{ expect }` starts counting one-way
 * `{ n }` messages and `{ done }` goes back when that many arrived.
 */
type Msg = { id: number; a: number; b: number } | { expect: number } | { n: number };

let count = 0;
let expect = -1;
process.on('message', (m: Msg) => {
  if ('id' in m) {
    process.send!({ id: m.id, r: m.a + m.b });
  } else if ('expect' in m) {
    count = 0;
    expect = m.expect;
  } else if (++count === expect) {
    expect = -1;
    process.send!({ done: count });
  }
});
process.on('disconnect', () => process.exit(0));
