/**
 * A persistent counter actor and a small file-backed nact persistence engine, for
 * examples/persistent-counter.ts (runners import this module through moduleRef). The journal is
 * one JSON line per event in `<dir>/<key>.jsonl`: every runner on this machine sees the same
 * files, as every pod would see the same database.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispatch, spawn, spawnPersistent, type PersistedEvent, type PersistedSnapshot, type PersistenceEngine, type Ref } from 'nact';
import { usePersistence } from '../src/index.js';

/** nact's persistence engine on files: events appended, read back in order; no snapshots. */
export class FileJournal implements PersistenceEngine {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  #file(key: string): string {
    return join(this.dir, `${encodeURIComponent(key)}.jsonl`);
  }

  events(key: string, offset = 0): ReturnType<PersistenceEngine['events']> {
    const file = this.#file(key);
    const all = existsSync(file)
      ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as PersistedEvent)
      : [];
    const events = all.filter((e) => e.sequenceNumber > offset);
    // nact's EventStream: a promise of the events that also reduces over them (its typings call them `Event`).
    const reduce = <U>(fn: (acc: U, event: PersistedEvent, index: number) => U, initial: U) => Promise.resolve(events.reduce(fn, initial));
    return Object.assign(Promise.resolve(events), { reduce }) as unknown as ReturnType<PersistenceEngine['events']>;
  }

  async persist(event: PersistedEvent): Promise<void> {
    appendFileSync(this.#file(event.key), `${JSON.stringify(event)}\n`);
  }

  async latestSnapshot(): Promise<PersistedSnapshot> {
    return undefined as unknown as PersistedSnapshot; // none taken: recovery replays the events
  }

  async takeSnapshot(): Promise<void> {}
}

export type CounterMsg = { type: 'inc' } | { type: 'get'; sender: Ref<CounterReply> };
export interface CounterReply {
  count: number;
  pid: number;
}

/**
 * A counter whose increments are persisted in `dir` under `key`: placed again after its runner
 * died, it replays them and answers with the same count.
 */
export function persistentCounter(parent: Ref<never>, dir: string, key: string): Ref<CounterMsg> {
  usePersistence(parent, new FileJournal(dir));
  return spawnPersistent(parent, async (count: number | undefined, msg: CounterMsg, ctx) => {
    const state = count ?? 0;
    if (msg.type === 'inc') {
      // Persisted before it counts; replayed (with ctx.recovering) when the actor recovers.
      if (!(ctx as { recovering?: boolean }).recovering) await (ctx as unknown as { persist(m: CounterMsg): Promise<void> }).persist(msg);
      return state + 1;
    }
    dispatch(msg.sender, { count: state, pid: process.pid });
    return state;
  }, key, `counter-${key}`);
}

/** The same counter without persistence: placed again, it starts from `start`. */
export function plainCounter(parent: Ref<never>, start: number): Ref<CounterMsg> {
  return spawn(parent, (count: number, msg: CounterMsg) => {
    if (msg.type === 'inc') return count + 1;
    dispatch(msg.sender, { count, pid: process.pid });
    return count;
  }, `plain-counter-${Math.random().toString(36).slice(2, 8)}`, { initialState: start });
}
