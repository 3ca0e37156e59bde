/**
 * Metrics through the OpenTelemetry metrics API, fed by the `flame-actors:*` diagnostics channels
 * (src/observability/diagnostics.ts): nothing is counted until `enableMetrics()` subscribes, and the library
 * never depends on OpenTelemetry. `@opentelemetry/api` is an optional peer dependency, imported
 * only when no meter provider is given (to reach the global one an SDK registered); any OTel
 * exporter (Prometheus, OTLP...) then sees the instruments below.
 */
import dc from 'node:diagnostics_channel';
import {
  CHANNELS,
  livePools,
  type BootMessage,
  type CallMessage,
  type HandshakeRefusedMessage,
  type LinkTrafficMessage,
  type QueueOverloadMessage,
} from './diagnostics.js';
import { InvalidOptionError, MissingDependencyError } from '../errors.js';

/** Attribute values as OpenTelemetry takes them. */
export type MetricAttributes = Record<string, string | number | boolean>;

/** The parts of an OpenTelemetry `Meter` used here (so this file needs no OTel types). */
export interface MeterLike {
  createCounter(name: string, options?: InstrumentOptions): { add(value: number, attributes?: MetricAttributes): void };
  createHistogram(name: string, options?: InstrumentOptions): { record(value: number, attributes?: MetricAttributes): void };
  createObservableGauge(name: string, options?: InstrumentOptions): ObservableLike;
}

export interface InstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}

export interface ObservableLike {
  addCallback(callback: (result: { observe(value: number, attributes?: MetricAttributes): void }) => void): void;
  removeCallback(callback: (result: { observe(value: number, attributes?: MetricAttributes): void }) => void): void;
}

/** The part of an OpenTelemetry `MeterProvider` used here. */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): MeterLike;
}

export interface MetricsOptions {
  /** Where instruments are created. Default: the global provider of `@opentelemetry/api` (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProviderLike;
}

export interface Metrics {
  /** Unsubscribes from the channels and stops observing pools; instruments keep their last values. */
  disable(): void;
}

/** Buckets in milliseconds: calls take microseconds to minutes. */
const CALL_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];
/** Boots take from ~100 ms (a process) to a minute (a pod pulling its image). */
const BOOT_BUCKETS_MS = [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000];
/** Runner states a gauge always reports (0 when none), so series do not appear and vanish. */
const RUNNER_STATES = ['booting', 'ready', 'draining'];

async function globalMeterProvider(): Promise<MeterProviderLike> {
  try {
    const api = (await import('@opentelemetry/api')) as { metrics: { getMeterProvider(): MeterProviderLike } };
    return api.metrics.getMeterProvider();
  } catch (error) {
    throw new MissingDependencyError(
      'enableMetrics() needs @opentelemetry/api (npm install @opentelemetry/api, plus an SDK such as @opentelemetry/sdk-metrics), or a meterProvider option',
      { cause: error, details: { dependency: '@opentelemetry/api' } },
    );
  }
}

/**
 * Starts recording pool and link metrics on an OpenTelemetry meter named `flame-actors`:
 *
 * | Instrument | Kind | Attributes |
 * |---|---|---|
 * | `flame_actors.calls` | counter | `pool`, `kind` (call, cast, place, track, stream), `outcome` (`ok` or the error code) |
 * | `flame_actors.call.wait_time` | histogram, ms | `pool`, `kind` |
 * | `flame_actors.call.run_time` | histogram, ms | `pool`, `kind`, `outcome` (a stream's: its whole life) |
 * | `flame_actors.boot.time` | histogram, ms | `pool`, `backend`, `outcome` |
 * | `flame_actors.runners` | gauge | `pool`, `state` (booting, ready, draining) |
 * | `flame_actors.queued_callers` | gauge | `pool` |
 * | `flame_actors.queue.overloads` | counter | `pool` |
 * | `flame_actors.link.bytes`, `flame_actors.link.messages` | counters | `node`, `peer`, `direction` (in, out) |
 * | `flame_actors.handshakes.refused` | counter | `node` |
 */
export async function enableMetrics(options: MetricsOptions = {}): Promise<Metrics> {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('enableMetrics: options must be an object', { option: 'options', expected: 'an object' });
  const unknown = Object.keys(options).filter((k) => k !== 'meterProvider');
  if (unknown.length > 0) throw new InvalidOptionError(`enableMetrics: unknown option ${unknown.join(', ')} (allowed: meterProvider)`, { option: unknown[0], expected: 'meterProvider' });
  const provider = options.meterProvider ?? (await globalMeterProvider());
  const meter = provider.getMeter('flame-actors');

  const calls = meter.createCounter('flame_actors.calls', { description: 'Calls, casts, placements, tracked calls and streams that settled, by outcome (ok or the error code)' });
  const waitTime = meter.createHistogram('flame_actors.call.wait_time', {
    description: 'Time a call waited for a runner slot', unit: 'ms', advice: { explicitBucketBoundaries: CALL_BUCKETS_MS },
  });
  const runTime = meter.createHistogram('flame_actors.call.run_time', {
    description: 'Time from placing a call on a runner to its answer', unit: 'ms', advice: { explicitBucketBoundaries: CALL_BUCKETS_MS },
  });
  const bootTime = meter.createHistogram('flame_actors.boot.time', {
    description: 'Runner boots, provisioning to ready', unit: 'ms', advice: { explicitBucketBoundaries: BOOT_BUCKETS_MS },
  });
  const overloads = meter.createCounter('flame_actors.queue.overloads', { description: 'Calls refused because the pool queue was full (maxQueue)' });
  const linkBytes = meter.createCounter('flame_actors.link.bytes', { description: 'Bytes of frames on cluster links', unit: 'By' });
  const linkMessages = meter.createCounter('flame_actors.link.messages', { description: 'Messages carried by frames on cluster links' });
  const refused = meter.createCounter('flame_actors.handshakes.refused', { description: 'Inbound connections refused at the handshake' });
  const runners = meter.createObservableGauge('flame_actors.runners', { description: 'Runners of each pool, by state' });
  const queued = meter.createObservableGauge('flame_actors.queued_callers', { description: 'Callers waiting for a runner slot' });

  const onCall = (message: unknown) => {
    const m = message as CallMessage;
    const outcome = m.code ?? 'ok';
    calls.add(1, { pool: m.pool, kind: m.kind, outcome });
    waitTime.record(m.waitMs ?? 0, { pool: m.pool, kind: m.kind });
    if (m.runner !== undefined) runTime.record(m.runMs ?? 0, { pool: m.pool, kind: m.kind, outcome });
  };
  const onBoot = (message: unknown) => {
    const m = message as BootMessage;
    bootTime.record(m.bootMs ?? 0, { pool: m.pool, backend: m.backend, outcome: m.code ?? 'ok' });
  };
  const onOverload = (message: unknown) => overloads.add(1, { pool: (message as QueueOverloadMessage).pool });
  const onTraffic = (message: unknown) => {
    const m = message as LinkTrafficMessage;
    const attributes = { node: m.node, peer: m.peer, direction: m.direction };
    linkBytes.add(m.bytes, attributes);
    linkMessages.add(m.messages, attributes);
  };
  const onRefused = (message: unknown) => refused.add(1, { node: (message as HandshakeRefusedMessage).node });
  const observeRunners: Parameters<ObservableLike['addCallback']>[0] = (result) => {
    for (const pool of livePools()) {
      const counts = new Map(RUNNER_STATES.map((s) => [s, 0]));
      for (const r of pool.snapshot().runners) if (r.state !== 'stopped') counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
      for (const [state, n] of counts) result.observe(n, { pool: pool.pool, state });
    }
  };
  const observeQueued: Parameters<ObservableLike['addCallback']>[0] = (result) => {
    for (const pool of livePools()) result.observe(pool.snapshot().queued, { pool: pool.pool });
  };

  // asyncEnd on the traced channels: the call's or boot's fields are all set by then, error or not.
  const plain: [string, (message: unknown) => void][] = [
    [`tracing:${CHANNELS.call}:asyncEnd`, onCall],
    [`tracing:${CHANNELS.boot}:asyncEnd`, onBoot],
    [CHANNELS.queueOverload, onOverload],
    [CHANNELS.linkTraffic, onTraffic],
    [CHANNELS.handshakeRefused, onRefused],
  ];
  const observed: [ObservableLike, Parameters<ObservableLike['addCallback']>[0]][] = [[runners, observeRunners], [queued, observeQueued]];
  for (const [name, handler] of plain) dc.subscribe(name, handler);
  for (const [gauge, callback] of observed) gauge.addCallback(callback);
  let enabled = true;
  return {
    disable() {
      if (!enabled) return;
      enabled = false;
      for (const [name, handler] of plain) dc.unsubscribe(name, handler);
      for (const [gauge, callback] of observed) gauge.removeCallback(callback);
    },
  };
}
