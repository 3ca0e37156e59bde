/**
 * flame-actors: FLAME for Node.js on nact actors. Run a function or place an actor on an
 * ephemeral runner (a local process, a Kubernetes pod) and get the result back as if local.
 */
import { setDefaultBackendFactory } from './flame/backend.js';
import { defaultBackend } from './backends/default.js';

setDefaultBackendFactory(() => defaultBackend());

/** Pools of runners: `Pool.start`, `pool.call`, `pool.cast`, `pool.placeChild`, `pool.status`, `pool.stop`. */
export { Pool, type PoolStatus, type PoolState, type PoolEvents, type CallInfo, type RunnerErrorInfo, type CallRest, type PlaceRest, type CallResult } from './flame/pool.js';
export type { PoolOptions, CallOptions, PlaceOptions, PoolSizeInfo } from './flame/options.js';
export type { RunnerStatus, RunnerState } from './flame/runner-handle.js';
/** Streams from generators on runners (`pool.stream`). */
export type { RemoteStream, StreamOptions, StreamItem, StreamRest } from './flame/stream.js';
/** Resources kept on a runner until released (`pool.track`, FLAME's track_resources). */
export type { Tracked, Trackable, TrackOptions, TrackRest, TrackedValue, TrackedState } from './flame/tracked.js';
/** Refer to an exported function of a module the runner imports itself. */
export { moduleRef, type ModuleRef, type FnArgs, type FactoryArgs, type FnResult, type AnyFunction } from './flame/fn-ref.js';
/** What a value becomes after crossing the wire (the type of a call's result). */
export type { Wire } from './flame/wire-types.js';
/** Is this process a runner, and who is its parent (skip the web server on runners). */
export { isRunner, parentInfo, type ParentInfo } from './flame/parent.js';
/** The Backend contract, for writing your own. */
export type { Backend, BackendContext, RunnerSpec, RunnerInstance } from './flame/backend.js';
/** Backends: runners as local processes (default), in this process, or picked by FLAME_BACKEND. */
export { ProcessBackend, type ProcessBackendOptions } from './backends/process/backend.js';
export { LocalBackend } from './backends/local/backend.js';
export { KubernetesBackend, type KubernetesBackendOptions, type InheritedSetting, type Leftovers } from './backends/kubernetes/backend.js';
export { defaultBackend } from './backends/default.js';
/** Stop pools on SIGTERM/SIGINT within the pod's grace period (opt-in). */
export { stopOnSignals, type StopOnSignalsOptions, type StopOutcome } from './backends/stop-on-signals.js';
/** Runner side: boot an app's own entry point as a runner; the current call's AbortSignal. */
export { startRunner, type Runner, type RunnerOptions } from './runner/runner.js';
export { callSignal } from './runner/call-context.js';
/** Runner side of restartable actors: nact persistence for actors a factory places. */
export { usePersistence } from './runner/persistence.js';
/** Actors that survive their runner (`placeChild` with `restart`). */
export type { RestartOptions, RestartInfo } from './flame/restartable.js';
/** The cluster layer: nodes named name@host, authenticated links, remote nact refs. */
export {
  startNode, ClusterNode, type NodeEvents, type NodeStats, type ModuleSpecifier, type RequestOptions, type RequestContext, type ServiceHandler, type ReplyReceiver,
} from './cluster/node.js';
export type { ModuleLoader, NodeOptions, TlsOptions } from './cluster/options.js';
export { DEFAULT_PORT } from './cluster/address.js';
/** Opt-in: nact actors take several queued messages per event-loop turn (order, supervision, query kept). */
export { enableBatchedDelivery, disableBatchedDelivery, batchedDeliveryEnabled, type BatchedDeliveryOptions } from './cluster/batched-delivery.js';
export type { LogLevel, LogSink, LogFields, StructuredLogger } from './log.js';
export {
  CHANNELS,
  type CallKind,
  type CallMessage,
  type BootMessage,
  type RunnerUpMessage,
  type RunnerDownMessage,
  type LinkUpMessage,
  type LinkDownMessage,
  type LinkTrafficMessage,
  type HandshakeRefusedMessage,
  type QueueOverloadMessage,
  type PoolStartMessage,
  type PoolStopMessage,
  type PoolSnapshot,
} from './observability/diagnostics.js';
export { serveStatus, statusReport, type StatusServer, type StatusServerOptions, type StatusReport, type PoolReport } from './observability/status.js';
export { enableMetrics, type Metrics, type MetricsOptions, type MeterProviderLike, type MeterLike } from './observability/metrics.js';
export * from './errors.js';
