/**
 * The examples really run: each compiled example is started as its own process (as a person
 * would, `node dist/examples/X.js`), must exit 0 within its deadline, print its key lines, and
 * leave no runner process behind (they carry a marker in their environment, inherited from the
 * example, which is looked for in /proc).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const DEADLINE_MS = 40_000;
const MARKER = 'FLAME_EXAMPLE_RUN';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(example: string, mark: string): Promise<Run> {
  const file = fileURLToPath(new URL(`../../examples/${example}.js`, import.meta.url));
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [file], {
      env: { ...process.env, [MARKER]: mark, NO_COLOR: '1' },
      timeout: DEADLINE_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 16 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      const failure = error as (Error & { code?: unknown; signal?: NodeJS.Signals | null }) | null;
      resolve({
        code: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0,
        signal: failure?.signal ?? null,
        stdout,
        stderr,
        ms: performance.now() - started,
      });
    });
  });
}

/** Processes whose environment carries `MARKER=mark` (runners of one example run). */
function marked(mark: string): number[] {
  if (process.platform !== 'linux') return [];
  const needle = `${MARKER}=${mark}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(needle)) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

async function noLeftovers(mark: string): Promise<void> {
  const deadline = performance.now() + 2000;
  let left = marked(mark);
  while (left.length > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    left = marked(mark);
  }
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  expect(left, 'processes left behind by the example').to.deep.equal([]);
}

const EXAMPLES: { name: string; expect: RegExp[] }[] = [
  {
    name: 'call-closure-and-module',
    expect: [
      /closure ran on runner pid \d+/,
      /captured variable refused: FLAME_ERR_CLOSURE/,
      /moduleRef render -> cat\.png digest [0-9a-f]{12}/,
      /remote error: RemoteError named InvoiceError, code E_INVOICE_LOCKED/,
      /remote RangeError is a RangeError here: true/,
      /deadline: CallTimeoutError \(FLAME_ERR_CALL_TIMEOUT\)/,
      /stopped longReport cooperatively after \d+ of 50 steps \(signal reason: (CallTimeoutError|AbortError)\)/,
      /^pool stopped$/m,
    ],
  },
  {
    name: 'remote-actors',
    expect: [/after inc and inc by 5: count 16, answered by pid \d+ on 127\.2\./, /still answers: count 16/, /its slot is free again: actors-1 ready load 0/, /^pool stopped$/m],
  },
  {
    name: 'persistent-counter',
    expect: [
      /count 5 on runner pid \d+/,
      /placed again on counters-2@127\.2\./,
      /same ref, new runner pid \d+: count 5 \(recovered from the journal\)/,
      /one more: count 6/,
      /^pool stopped$/m,
    ],
  },
  {
    name: 'pool-sizing',
    expect: [/onGrowStart {2}sizing-1/, /onGrowEnd {4}sizing-3 ready/, /queued [1-9]/, /onShrink {5}sizing-\d \(idle/, /back to min: 1 runner\(s\)/, /pool stopped$/m],
  },
  {
    name: 'cluster-nodes',
    expect: [/nodes up: a@127\.0\.0\.2:\d+ and b@127\.0\.0\.3:\d+/, /a queried it across the link: count 120/, /a's monitor fired: b is down/, /^nodes stopped$/m],
  },
  {
    name: 'kubernetes-on-a-laptop',
    expect: [
      /call ran in pod shop-7d9f-thumbs-\w+ \(127\.1\.\d+\.\d+\), inheriting SHOP_CURRENCY=EUR/,
      /runner pod shop-7d9f-thumbs-\w+: Running, restartPolicy Never, owned by Pod shop-7d9f/,
      /after pool\.stop\(\): 0 runner pods/,
      /^cluster stopped$/m,
    ],
  },
  {
    name: 'app-as-runner',
    expect: [/GET \/invoice -> total 42\.5, computed by runner invoices-1 \(pid \d+\), app pid \d+/, /^app stopped$/m],
  },
  {
    name: 'demo',
    expect: [
      /\+ demo-1 up in \d+ ms/,
      /burst done: 60 ok, 0 failed/,
      /- demo-\d down: idle/,
      /query 3: count 111/,
      /calls run +60 \(60 ok, 0 failed\)/,
      /runners booted +[2-9] \(boots \d+-\d+ ms, mean \d+\)/,
      /actor +placed, queried 3 times/,
      /first result, cold pool \d+ ms/,
      /total time +\d+\.\d+s/,
    ],
  },
];

describe('examples (each run as `node dist/examples/X.js`)', function () {
  this.timeout(DEADLINE_MS + 10_000);

  for (const example of EXAMPLES) {
    it(`${example.name} exits 0, prints what it shows and leaves no process`, async function () {
      const mark = randomBytes(8).toString('hex');
      const result = await run(example.name, mark);
      const output = `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
      expect(result.signal, `killed (deadline ${DEADLINE_MS} ms?)\n${output}`).to.equal(null);
      expect(result.code, `exit code\n${output}`).to.equal(0);
      for (const line of example.expect) expect(result.stdout, output).to.match(line);
      expect(result.stderr, 'nothing on stderr').to.equal('');
      await noLeftovers(mark);
    });
  }
});
