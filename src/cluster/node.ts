/**
 * A cluster node: one process's nact actor system plus one WebSocket endpoint, named
 * `name@host[:port]` like an Erlang node. Nodes dial each other lazily on first send, prove the
 * shared cookie before any frame is decoded, and route nact's own `dispatch`, `query` and
 * `stop` for refs that live on other nodes.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import tls from 'node:tls';
import { start as startSystem, stop as stopActor, type Ref } from 'nact';
import {
  AbortError,
  ActorNotFoundError,
  NodeStoppedError,
  ConnectError,
  EncodeError,
  ModuleRefError,
  NodeDownError,
  PayloadTooLargeError,
  ProtocolError,
  QueryTimeoutError,
} from '../errors.js';
import { onAbort } from '../abort.js';
import { createLogger, type Logger } from '../log.js';
import { formatNodeName, parseNodeName, type NodeAddress } from './address.js';
import { registerLocalSystem, unregisterLocalSystem, type DecodeContext } from './codec.js';
import { ACCEPT_FRAME } from './handshake.js';
import { Deadlines, type Deadline } from './deadlines.js';
import { Acceptor } from './acceptor.js';
import { Listener } from './listener.js';
import { dialNode } from './dialer.js';
import {
  localActorRef,
  localSystemRef,
  localTempRef,
  references,
  systemMap,
  type ConcreteActor,
} from './nact-internals.js';
import { resolveNodeOptions, type NodeOptions, type ResolvedNodeOptions } from './options.js';
import { Peer, type Connection, type PeerHost } from './peer.js';
import { RemoteHandle, RemoteRef, remoteSystemName, type RefKind, type RemoteOps } from './remote-ref.js';
import { InboundRequest } from './inbound-request.js';
import { OP_CANCEL, OP_DISPATCH, OP_NO_ACTOR, OP_REPLY, OP_REQUEST, OP_STOP, describe } from './wire.js';
import { handshakeRefusedChannel, linkDownChannel, linkUpChannel, publish } from '../diagnostics.js';


/** A module export resolved on the peer: `{ module: 'file:///app/actors.js', export: 'counter' }`. */
export interface ModuleSpecifier {
  readonly module: string;
  readonly export: string;
}

export interface RequestOptions {
  /** Milliseconds before the request rejects with QueryTimeoutError (and is cancelled remotely). */
  timeout?: number;
  signal?: AbortSignal;
}

/** Context given to a service handler. */
export interface RequestContext {
  /** The node that sent the request. */
  readonly peer: string;
  /** Aborted when the requester cancels (timeout, AbortSignal). Created on first use. */
  readonly signal: AbortSignal;
  /** Calls `listener(reason)` when the requester cancels: cheaper than `signal` on a hot path. */
  onCancel(listener: (reason: Error) => void): void;
}

export type ServiceHandler = (payload: unknown, context: RequestContext) => unknown;

/** Counters of a node, for monitoring and tests. */
export interface NodeStats {
  /** Nodes this node keeps a link record for (up, connecting, or down and still referenced). */
  readonly peers: number;
  /** Inbound WebSocket connections open (authenticated or not). */
  readonly connections: number;
  /** Inbound connections that have not proven the cookie yet (capped). */
  readonly unproven: number;
  /** Replies to requests whose requester was gone (or overloaded) by the time they were ready: dropped. */
  readonly droppedReplies: number;
}

/** Events a node emits. */
export interface NodeEvents {
  nodeup: [node: string];
  nodedown: [node: string, reason: Error];
  /** A connection attempt was refused (bad handshake, wrong cookie, wrong node). */
  refused: [info: { address: string; node: string | undefined; reason: string }];
  /** A message could not be delivered: its target node is down, or its target actor does not exist. */
  undeliverable: [info: { target: string; reason: Error }];
}

interface PendingReply {
  resolve(value: unknown): void;
  reject(error: Error): void;
  peer: Peer;
  deadline: Deadline | undefined;
}

const REMOTE_HANDLE = Symbol('flame.remoteHandle');
const SILENT = createLogger(false);
/** How long a down peer is kept before it is forgotten (if nothing refers to it). */
const PRUNE_AFTER_MS = 1000;

type WithHandle = RemoteRef & { [REMOTE_HANDLE]?: ConcreteActor };


export class ClusterNode extends EventEmitter<NodeEvents> {
  /** This node's name, e.g. `app@127.0.0.3`. */
  readonly name: string;
  readonly address: NodeAddress;
  /** Random per process start; peers use it to tell a restarted node from a reconnect. */
  readonly incarnation = randomBytes(9).toString('base64url');
  /** The nact system of this node: the parent for top-level actors. */
  readonly system: Ref<never>;
  readonly logger: Logger;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly maxQueuedMessages: number;
  /** The cluster's shared secret: a pool hands it to the runners it starts (FLAME_COOKIE). */
  readonly cookie: string;

  readonly #options: ResolvedNodeOptions;
  readonly #server: http.Server;
  readonly #listener: Listener;
  readonly #acceptor: Acceptor;
  readonly #peers = new Map<string, Peer>();
  readonly #replies = new Map<number, PendingReply>();
  readonly #services = new Map<string, ServiceHandler>();
  readonly #waitingInbound = new Map<string, () => void>();
  readonly #remoteSystem: string;
  readonly #host: PeerHost;
  readonly #deadlines = new Deadlines();
  /** Local actors by path, for messages arriving from peers. */
  readonly #actors = new Map<string, ConcreteActor & { stopped?: boolean }>();
  #nextReplyId = 1;
  #droppedReplies = 0;
  #stopped = false;

  private constructor(options: ResolvedNodeOptions, server: http.Server, listener: Listener, port: number) {
    super();
    this.#options = options;
    this.name = formatNodeName(options.shortName, options.host, port);
    this.address = parseNodeName(this.name);
    this.logger = createLogger(options.log, `[${this.name}]`, options.logSink, options.logger && { logger: options.logger, fields: { node: this.name } });
    this.heartbeatInterval = options.heartbeatInterval;
    this.heartbeatTimeout = options.heartbeatTimeout;
    this.maxQueuedMessages = options.maxQueuedMessages;
    this.cookie = options.cookie;
    this.#server = server;
    this.#listener = listener;
    const node = this;
    this.#host = {
      get name() { return node.name; },
      get logger() { return node.logger; },
      get heartbeatInterval() { return node.heartbeatInterval; },
      get heartbeatTimeout() { return node.heartbeatTimeout; },
      get maxQueuedMessages() { return node.maxQueuedMessages; },
      decodeContext: (peer) => this.#decodeContext(peer),
      receive: (peer, message) => this.#receive(peer, message),
      dial: (peer) => this.#dial(peer),
      peerUp: (peer) => {
        this.#waitingInbound.get(peer.node)?.();
        this.logger.info(`connected to ${peer.node}`);
        this.emit('nodeup', peer.node);
        publish(linkUpChannel, () => ({ node: this.name, peer: peer.node }));
      },
      peerDown: (peer, reason, undelivered, wasUp) => this.#peerDown(peer, reason, undelivered, wasUp),
    };
    this.#acceptor = new Acceptor({
      get name() { return node.name; },
      get incarnation() { return node.incarnation; },
      get stopped() { return node.#stopped; },
      options,
      listener,
      authenticated: (conn) => this.#acceptInbound(conn),
    });
    server.on('upgrade', (req, socket, head) => this.#acceptor.handleUpgrade(req, socket, head));
    server.on('request', (req, res) => {
      // A plain GET answers liveness/readiness probes (e.g. a Kubernetes httpGet probe).
      const ok = req.url === '/healthz' && !this.#stopped;
      res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not found\n');
    });
    // The system's name is the node's name so refs print meaningfully; nact ignores a string arg (library-traps §1).
    this.system = (startSystem as unknown as (opts: { name: string }) => Ref<never>)({ name: this.name });
    registerLocalSystem(this.name, this.name);
    this.#remoteSystem = remoteSystemName(this.name);
    systemMap.add({ name: this.#remoteSystem, find: (ref) => this.#findRemote(ref) });
    this.handle('flame.spawn', (payload) => this.#spawnFromModule(payload));
  }

  /** Starts a node: its nact system and its ws server, bound to its host and port. */
  static async start(options?: NodeOptions): Promise<ClusterNode> {
    const resolved = resolveNodeOptions(options);
    const secureContext = resolved.tls ? tls.createSecureContext({ key: resolved.tls.key, cert: resolved.tls.cert }) : undefined;
    const server = http.createServer();
    // The listener exists before the node (the node's name holds the port it got).
    let node: ClusterNode | undefined;
    const listener = new Listener({
      get logger() { return node?.logger ?? SILENT; },
      handshakeTimeout: resolved.handshakeTimeout,
      get stopped() { return node === undefined || node.#stopped; },
      refused: (info) => {
        if (!node) return;
        node.emit('refused', info);
        publish(handshakeRefusedChannel, () => ({ node: node!.name, address: info.address, peer: info.node, reason: info.reason }));
      },
    }, server, secureContext);
    const port = await listener.listen(resolved.port, resolved.host);
    node = new ClusterNode(resolved, server, listener, port);
    node.logger.info(`node started on ${resolved.tls ? 'wss' : 'ws'}://${resolved.host}:${port}`);
    return node;
  }

  // ---------------------------------------------------------------- public API

  /** Opens (or reuses) an authenticated link to `node`. */
  async connect(node: string): Promise<void> {
    this.#assertRunning();
    await this.#peer(parseNodeName(node).node).connect();
  }

  /** Closes the link to `node`, if any. */
  disconnect(node: string): void {
    this.#peers.get(parseNodeName(node).node)?.close(1000, 'disconnected');
  }

  isConnected(node: string): boolean {
    return this.#peers.get(parseNodeName(node).node)?.state === 'up';
  }

  /** Nodes with a link up. */
  connectedNodes(): string[] {
    return [...this.#peers.values()].filter((p) => p.state === 'up').map((p) => p.node);
  }

  /**
   * Calls `onDown(reason)` once when `node` goes down (or soon, if it is not connected).
   * Returns a function that cancels the monitor.
   */
  monitor(node: string, onDown: (reason: Error) => void): () => void {
    const name = parseNodeName(node).node;
    let active = true;
    const watcher = (reason: Error) => {
      if (!active) return;
      cancel();
      onDown(reason);
    };
    const cancel = () => {
      active = false;
      const set = this.#monitors.get(name);
      set?.delete(watcher);
      if (set?.size === 0) this.#monitors.delete(name);
      if (this.#monitors.size === 0) this.off('nodedown', this.#notifyMonitors);
    };
    if (this.#peers.get(name)?.state !== 'up') {
      queueMicrotask(() => watcher(new NodeDownError(`node ${name} is not connected`, { details: { node: name } })));
    } else {
      // One 'nodedown' listener serves every monitor (a pool retiring many runners at once
      // would otherwise add one listener per runner and trip MaxListenersExceededWarning).
      if (this.#monitors.size === 0) this.off('nodedown', this.#notifyMonitors).on('nodedown', this.#notifyMonitors);
      const set = this.#monitors.get(name) ?? new Set();
      set.add(watcher);
      this.#monitors.set(name, set);
    }
    return cancel;
  }

  readonly #monitors = new Map<string, Set<(reason: Error) => void>>();
  readonly #notifyMonitors = (down: string, reason: Error): void => {
    const set = this.#monitors.get(down);
    if (set) for (const watcher of [...set]) watcher(reason);
  };

  /** A ref to the actor at `path` (names from the system down) on `node`, for nact's dispatch/query/stop. */
  remoteRef<Msg = unknown>(node: string, path: string[] | string): Ref<Msg> {
    const parts = typeof path === 'string' ? path.split('/').filter(Boolean) : path;
    const name = parseNodeName(node).node;
    return (name === this.name ? localActorRef(this.name, parts) : new RemoteRef(this.#remoteSystem, name, 'a', parts)) as Ref<Msg>;
  }

  /**
   * Spawns an actor on `node` from a module export `(parentRef, ...args) => ActorRef`, resolved
   * on that node, and returns its ref.
   */
  async spawnRemote<Msg = unknown>(node: string, spec: ModuleSpecifier, args: unknown[] = [], options: RequestOptions = {}): Promise<Ref<Msg>> {
    const ref = await this.request(node, 'flame.spawn', { module: spec.module, export: spec.export, args }, { timeout: 30_000, ...options });
    return ref as Ref<Msg>;
  }

  /** Registers the handler of a request service (the FLAME layer builds on this). */
  handle(service: string, handler: ServiceHandler): void {
    this.#services.set(service, handler);
  }

  /** Sends a request to a service on `node` and resolves to its result. */
  request(node: string, service: string, payload: unknown, options: RequestOptions = {}): Promise<unknown> {
    let peer: Peer;
    try {
      this.#assertRunning();
      peer = this.#peers.get(node) ?? this.#peer(parseNodeName(node).node);
    } catch (error) {
      return Promise.reject(error);
    }
    const { timeout, signal } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AbortError(`request "${service}" to ${peer.node} aborted before it was sent`));
        return;
      }
      const id = peer.nextRequestId++;
      let deadline: Deadline | undefined;
      const settle = (ok: boolean, value: unknown) => {
        if (peer.requests.get(id) !== settle) return;
        peer.requests.delete(id);
        deadline?.cancel();
        unsubscribe?.();
        if (ok) resolve(value);
        else reject(value);
      };
      const cancel = (error: Error) => {
        if (peer.requests.get(id) !== settle) return;
        try {
          // The handler learns why (deadline or abort), without the local cause, which may not encode.
          const why = error instanceof QueryTimeoutError ? new QueryTimeoutError(error.message) : new AbortError(error.message);
          peer.send([OP_CANCEL, id, why]);
        } catch {
          // the peer is gone: nothing left to cancel
        }
        settle(false, error);
      };
      peer.requests.set(id, settle);
      if (timeout !== undefined && timeout !== Infinity) {
        deadline = this.#deadlines.after(
          timeout,
          () => cancel(new QueryTimeoutError(`request "${service}" to ${peer.node} timed out after ${timeout} ms`)),
        );
      }
      const unsubscribe = signal
        ? onAbort(signal, () => cancel(new AbortError(`request "${service}" to ${peer.node} aborted`, { cause: signal.reason })))
        : undefined;
      try {
        peer.send([OP_REQUEST, id, service, payload], (error) => settle(false, error));
      } catch (error) {
        settle(false, error);
      }
    });
  }

  /** Resolves when the link to the node of `target` has room for more messages (backpressure). */
  whenWritable(target: string | Ref<unknown>): Promise<void> {
    const node = typeof target === 'string' ? parseNodeName(target).node : (target as unknown as RemoteRef).node;
    if (node === undefined || node === this.name) return Promise.resolve();
    return this.#peers.get(node)?.whenWritable() ?? Promise.resolve();
  }

  /** Closes every link and the server and stops the actor system. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const peer of this.#peers.values()) peer.close(1001, 'node stopping');
    this.#acceptor.close();
    await this.#listener.close();
    this.#server.closeAllConnections();
    try {
      stopActor(this.system);
    } catch {
      // already stopped
    }
    systemMap.remove(this.#remoteSystem);
    unregisterLocalSystem(this.name);
    this.logger.info('node stopped');
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Counters: links, dropped replies. */
  stats(): NodeStats {
    return {
      peers: this.#peers.size,
      connections: this.#acceptor.connections,
      unproven: this.#listener.unproven,
      droppedReplies: this.#droppedReplies,
    };
  }

  // ---------------------------------------------------------------- PeerHost

  #assertRunning(): void {
    if (this.#stopped) throw new NodeStoppedError(`node ${this.name} is stopped`);
  }

  #peer(node: string): Peer {
    let peer = this.#peers.get(node);
    if (!peer) {
      if (node === this.name) throw new ConnectError(`node ${this.name} cannot connect to itself`);
      peer = new Peer(this.#host, node);
      this.#peers.set(node, peer);
    }
    return peer;
  }

  #decodeContext(peer: Peer): DecodeContext {
    const local = this.name;
    const remoteSystem = this.#remoteSystem;
    const from = peer.node;
    return {
      peer: from,
      ref: (node, kind, data) => {
        if (kind === 'n') return new references.Nobody();
        // A ref names a node this one may dial later: refuse names that are not node names.
        if (node !== local && node !== from && !isNodeName(node)) throw new ProtocolError(`malformed node name in a ref: ${describe(node)}`);
        if (node === local) {
          switch (kind) {
            case 'a':
              return localActorRef(local, checkParts(data));
            case 's':
              return localSystemRef(local);
            case 't':
              return localTempRef(local, checkId(data));
            case 'r':
              return new RemoteRef(remoteSystem, local, 'r', [], checkId(data));
          }
        }
        return kind === 'a' || kind === 's'
          ? new RemoteRef(remoteSystem, node, kind, kind === 'a' ? checkParts(data) : [])
          : new RemoteRef(remoteSystem, node, kind, [], checkId(data));
      },
    };
  }

  #peerDown(peer: Peer, reason: Error, undelivered: unknown[][], wasUp: boolean): void {
    for (const id of peer.replies) {
      const pending = this.#replies.get(id);
      if (pending) this.#settleReply(id, pending, false, reason);
    }
    peer.replies.clear();
    for (const message of undelivered) {
      if (message[0] === OP_DISPATCH || message[0] === OP_STOP) {
        this.#undeliverable(describeTarget(message[1], peer.node), reason);
      }
    }
    if (wasUp) publish(linkDownChannel, () => ({ node: this.name, peer: peer.node, reason: reason.message, code: (reason as { code?: string }).code }));
    if (wasUp && !this.#stopped) this.emit('nodedown', peer.node, reason);
    this.#schedulePrune(peer);
  }

  /**
   * Forgets a peer that is down once nothing refers to it any more, so that a long-lived parent
   * whose runners come and go does not keep one record per runner. Not at once: a send in the
   * next moments should still find it down (and not redial a dead node on every message).
   */
  #schedulePrune(peer: Peer): void {
    setTimeout(() => {
      if (this.#peers.get(peer.node) !== peer || peer.state !== 'down') return;
      if (peer.idle) this.#peers.delete(peer.node);
      else this.#schedulePrune(peer); // a request it made is still being served
    }, PRUNE_AFTER_MS).unref();
  }

  #undeliverable(target: string, reason: Error): void {
    this.logger.debug(`undeliverable message to ${target}: ${reason.message}`);
    this.emit('undeliverable', { target, reason });
  }

  // ---------------------------------------------------------------- routing of remote refs

  /** nact's system map asks this for refs of our pseudo-system: route them to their peer. */
  #findRemote(ref: unknown): ConcreteActor | undefined {
    if (!(ref instanceof RemoteRef)) {
      const r = ref as { node?: unknown; kind?: unknown; path?: { parts?: unknown }; id?: unknown };
      if (typeof r.node !== 'string' || typeof r.kind !== 'string') return undefined;
      ref = new RemoteRef(this.#remoteSystem, r.node, r.kind as RefKind, Array.isArray(r.path?.parts) ? (r.path.parts as string[]) : [], r.id as number);
    }
    const target = ref as WithHandle;
    if (target.kind === 'r' && target.node === this.name) {
      return { dispatch: (message) => this.#resolveReply(target.id!, message) };
    }
    return (target[REMOTE_HANDLE] ??= new RemoteHandle(this.#remoteOps, target));
  }

  /** What the handles nact finds for remote refs do; one object shared by all of them. */
  readonly #remoteOps: RemoteOps = {
    dispatch: (target, message, sender) => this.#dispatchRemote(target, message, sender),
    query: (target, message, timeout) => this.#queryRemote(target, message, timeout),
    stop: (target) => this.#sendOrReport(target, [OP_STOP, target.wire]),
  };

  #dispatchRemote(target: RemoteRef, message: unknown, sender: unknown): void {
    // nact substitutes Nobody for a missing sender; it means nothing on the other side.
    const from = sender instanceof references.Nobody ? undefined : sender;
    this.#sendOrReport(target, [OP_DISPATCH, target.wire, message, from]);
  }

  #sendOrReport(target: RemoteRef, message: unknown[]): void {
    if (this.#stopped) {
      this.#undeliverable(String(target), new NodeStoppedError(`node ${this.name} is stopped`));
      return;
    }
    try {
      this.#peer(target.node).send(message);
    } catch (error) {
      if (!(error instanceof NodeDownError)) throw error;
      this.#undeliverable(String(target), error);
    }
  }

  #queryRemote(target: RemoteRef, message: unknown, timeout: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#stopped) {
        reject(new NodeStoppedError(`node ${this.name} is stopped`));
        return;
      }
      const peer = this.#peer(target.node);
      const id = this.#nextReplyId++;
      const replyTo = new RemoteRef(this.#remoteSystem, this.name, 'r', [], id);
      const pending: PendingReply = { resolve, reject, peer, deadline: undefined };
      pending.deadline = this.#deadlines.after(timeout, () => {
        this.#settleReply(id, pending, false, new QueryTimeoutError(`Query Timeout: ${target} did not answer within ${timeout} ms`, {
          details: { target: String(target), timeout },
        }));
      });
      this.#replies.set(id, pending);
      peer.replies.add(id);
      try {
        const msg = typeof message === 'function' ? (message as (ref: unknown) => unknown)(replyTo) : message;
        peer.send([OP_DISPATCH, target.wire, msg, replyTo], (error) => this.#settleReply(id, pending, false, error));
      } catch (error) {
        this.#settleReply(id, pending, false, error as Error);
      }
    });
  }

  #resolveReply(id: number, value: unknown): void {
    const pending = this.#replies.get(id);
    if (pending) this.#settleReply(id, pending, true, value);
  }

  #settleReply(id: number, pending: PendingReply, ok: boolean, value: unknown): void {
    if (this.#replies.get(id) !== pending) return;
    this.#replies.delete(id);
    pending.peer.replies.delete(id);
    pending.deadline?.cancel();
    if (ok) pending.resolve(value);
    else pending.reject(value as Error);
  }

  // ---------------------------------------------------------------- receiving

  #receive(peer: Peer, message: unknown): void {
    if (!Array.isArray(message)) {
      peer.protocolError(new ProtocolError('message is not a tuple'));
      return;
    }
    switch (message[0]) {
      case OP_DISPATCH:
        this.#deliver(peer, message[1], message[2], message[3]);
        return;
      case OP_STOP: {
        if (message[1] === '' || (Array.isArray(message[1]) && message[1][0] === 's')) {
          // Stopping the system would stop every actor of this node: no peer may do that.
          this.#undeliverable(describeTarget(message[1], this.name), new ProtocolError(`${peer.node} may not stop the actor system of ${this.name}`));
          return;
        }
        const actor = this.#target(message[1]);
        try {
          actor?.stop?.();
        } catch (error) {
          this.#undeliverable(describeTarget(message[1], this.name), error as Error);
        }
        return;
      }
      case OP_REQUEST:
        this.#serve(peer, message[1], message[2], message[3]);
        return;
      case OP_REPLY: {
        const settle = typeof message[1] === 'number' ? peer.requests.get(message[1]) : undefined;
        settle?.(message[2] === true, message[3]);
        return;
      }
      case OP_CANCEL: {
        const request = typeof message[1] === 'number' ? peer.inbound.get(message[1]) : undefined;
        try {
          request?.cancel(message[2] instanceof Error ? message[2] : new AbortError('cancelled by the requester'));
        } catch (error) {
          this.logger.warn(`a cancel listener of a request from ${peer.node} threw: ${(error as Error)?.message ?? describe(error)}`);
        }
        return;
      }
      case OP_NO_ACTOR: {
        const id = message[1];
        const pending = typeof id === 'number' ? this.#replies.get(id) : undefined;
        if (pending) {
          this.#settleReply(id as number, pending, false, new ActorNotFoundError(
            `Actor stopped or never existed: ${describe(message[2], 200)} on ${peer.node}`,
            { details: { target: describe(message[2], 200) } },
          ));
        }
        return;
      }
      default:
        peer.protocolError(new ProtocolError(`unknown message type ${describe(message[0], 40)}`));
    }
  }

  /** The local actor a wire target names (actor lookups by path are cached: they are per message). */
  #target(target: unknown): ConcreteActor | undefined {
    if (typeof target === 'string') {
      const cached = this.#actors.get(target);
      if (cached && !cached.stopped) return cached;
      const actor = systemMap.find(this.name, localActorRef(this.name, target === '' ? [] : target.split('/')));
      if (actor) {
        if (this.#actors.size >= 10_000) this.#actors.clear();
        this.#actors.set(target, actor);
      }
      return actor;
    }
    if (Array.isArray(target)) {
      if (target[0] === 't' && typeof target[1] === 'number') return systemMap.find(this.name, localTempRef(this.name, target[1]));
      if (target[0] === 's') return systemMap.find(this.name, localSystemRef(this.name));
    }
    return undefined;
  }

  #deliver(peer: Peer, target: unknown, message: unknown, sender: unknown): void {
    if (typeof target === 'number') {
      // An answer to one of our queries, possibly from a node the query was forwarded to.
      this.#resolveReply(target, message);
      return;
    }
    const actor = this.#target(target);
    if (!actor) {
      const where = describeTarget(target, this.name);
      if (sender instanceof RemoteRef && sender.kind === 'r' && sender.node === peer.node) {
        // The query's own node is told at once (a forwarded query just times out).
        peer.trySend([OP_NO_ACTOR, sender.id, where]);
      } else {
        this.#undeliverable(where, new ActorNotFoundError(`no actor ${where} on ${this.name}`));
      }
      return;
    }
    try {
      actor.dispatch(message, sender);
    } catch (error) {
      this.#undeliverable(describeTarget(target, this.name), error as Error);
    }
  }

  #serve(peer: Peer, id: unknown, service: unknown, payload: unknown): void {
    if (typeof id !== 'number' || typeof service !== 'string') {
      peer.protocolError(new ProtocolError('malformed request'));
      return;
    }
    const handler = this.#services.get(service);
    const reply = (ok: boolean, value: unknown) => {
      if (peer.inbound.get(id) !== context) return;
      peer.inbound.delete(id);
      this.#sendReply(peer, id, service, ok, value);
    };
    const context = new InboundRequest(peer.node);
    peer.inbound.set(id, context);
    if (!handler) {
      reply(false, new ProtocolError(`unknown service "${service}" on ${this.name}`));
      return;
    }
    try {
      const result = handler(payload, context);
      if (result instanceof Promise) {
        result.then((value) => reply(true, value), (error) => reply(false, error));
      } else {
        reply(true, result);
      }
    } catch (error) {
      reply(false, error);
    }
  }

  /**
   * Sends a reply; never throws. A requester that is gone gets nothing (the reply is counted as
   * dropped); a value that cannot be sent is replaced by the error saying why, so the requester
   * learns at once instead of at its deadline.
   */
  #sendReply(peer: Peer, id: number, service: string, ok: boolean, value: unknown): void {
    const drop = (why: string) => {
      this.#droppedReplies++;
      this.logger.debug(`reply to "${service}" #${id} of ${peer.node} dropped: ${why}`);
    };
    if (peer.state !== 'up') return drop(`the link is ${peer.state}`);
    const sent = peer.trySend([OP_REPLY, id, ok, value], (error) => {
      if (error instanceof NodeDownError) return drop(error.message);
      const what = ok ? 'result' : 'error';
      const why = error instanceof PayloadTooLargeError
        ? new PayloadTooLargeError(`the ${what} of "${service}" on ${this.name} cannot be sent: ${error.message}`, { details: error.details })
        : new EncodeError(`the ${what} of "${service}" on ${this.name} cannot be sent: ${error.message}`);
      if (!peer.trySend([OP_REPLY, id, false, why], (again) => drop(again.message))) drop('the link is down or overloaded');
    });
    if (!sent) drop('the link is down or overloaded');
  }

  async #spawnFromModule(payload: unknown): Promise<unknown> {
    const p = payload as { module?: unknown; export?: unknown; args?: unknown };
    if (typeof p?.module !== 'string' || typeof p.export !== 'string' || !Array.isArray(p.args)) {
      throw new ProtocolError('spawn needs { module, export, args }');
    }
    let mod: Record<string, unknown>;
    try {
      mod = (await import(p.module)) as Record<string, unknown>;
    } catch (e) {
      throw new ModuleRefError(`cannot load module ${p.module} on ${this.name}: ${(e as Error).message}`, { cause: e });
    }
    const factory = mod[p.export];
    if (typeof factory !== 'function') {
      throw new ModuleRefError(`module ${p.module} has no exported function "${p.export}" on ${this.name}`);
    }
    const ref = await (factory as (parent: unknown, ...args: unknown[]) => unknown)(this.system, ...p.args);
    if (typeof ref !== 'object' || ref === null || (ref as { type?: unknown }).type !== 'actor') {
      throw new ModuleRefError(`${p.export}() of ${p.module} must return the ActorRef it spawned`);
    }
    return ref;
  }

  // ---------------------------------------------------------------- connections

  async #dial(peer: Peer): Promise<Connection | undefined> {
    const result = await dialNode({ self: this.name, incarnation: this.incarnation, target: peer.node, options: this.#options });
    if (result !== 'duplicate') return result;
    // The peer dialed us at the same time and its link wins the tie-break: wait for it.
    await this.#awaitInbound(peer);
    return undefined;
  }

  #awaitInbound(peer: Peer): Promise<void> {
    if (peer.state === 'up') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waitingInbound.delete(peer.node);
        reject(new ConnectError(`${peer.node} preferred its own connection, which did not arrive`));
      }, this.#options.handshakeTimeout);
      this.#waitingInbound.set(peer.node, () => {
        clearTimeout(timer);
        this.#waitingInbound.delete(peer.node);
        resolve();
      });
    });
  }

  /** Decides between an inbound link and one we are dialing: the link dialed by the smaller name wins. */
  #acceptInbound(conn: Connection): void {
    if (this.#stopped) {
      conn.ws.close(1001, 'node stopping');
      return;
    }
    const peer = this.#peer(conn.peerNode);
    const current = peer.connection;
    const oursWins = this.name < conn.peerNode;
    if (peer.state === 'connecting' && oursWins) {
      conn.ws.close(4002, 'duplicate link');
      return;
    }
    if (peer.state === 'up' && current && current.incarnation === conn.incarnation && current.dialer === this.name && oursWins) {
      conn.ws.close(4002, 'duplicate link');
      return;
    }
    conn.ws.send(ACCEPT_FRAME);
    peer.attach(conn);
  }
}

function checkParts(data: unknown): string[] {
  if (!Array.isArray(data) || !data.every((p) => typeof p === 'string')) throw new ProtocolError('malformed actor path');
  return data as string[];
}

function checkId(data: unknown): number {
  if (typeof data !== 'number' || !Number.isInteger(data)) throw new ProtocolError('malformed ref id');
  return data;
}

/** A wire target as people read it: `node/path`. */
function describeTarget(target: unknown, node: string): string {
  if (typeof target === 'string') return `${node}/${target.length > 200 ? `${target.slice(0, 200)}\u2026` : target}`;
  if (typeof target === 'number') return `${node}/#reply${target}`;
  return `${node}/${describe(target)}`;
}

function isNodeName(node: string): boolean {
  try {
    parseNodeName(node);
    return true;
  } catch {
    return false;
  }
}

/** Starts a cluster node; see {@link NodeOptions}. */
export function startNode(options?: NodeOptions): Promise<ClusterNode> {
  return ClusterNode.start(options);
}
