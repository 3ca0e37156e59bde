/**
 * A cluster node: one process's nact actor system plus one WebSocket endpoint, named
 * `name@host[:port]` like an Erlang node. Nodes dial each other lazily on first send, prove the
 * shared cookie before any frame is decoded, and route nact's own `dispatch`, `query` and
 * `stop` for refs that live on other nodes.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { start as startSystem, stop as stopActor, type Ref } from 'nact';
import { ConnectError, NodeStoppedError, ProtocolError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { formatNodeName, parseNodeName, type NodeAddress } from './address.js';
import { registerLocalSystem, unregisterLocalSystem } from './codec.js';
import { ACCEPT_FRAME } from './handshake.js';
import { useLeanDelivery } from './batched-delivery.js';
import { Deadlines } from './deadlines.js';
import { Acceptor } from './acceptor.js';
import { Listener, type RefusedInfo } from './listener.js';
import { Monitors } from './monitors.js';
import { serverContext } from './tls.js';
import { dialNode } from './dialer.js';
import { systemMap } from './nact-internals.js';
import { resolveNodeOptions, type NodeOptions, type ResolvedNodeOptions } from './options.js';
import { Peer, type Connection, type PeerHost } from './peer.js';
import { remoteSystemName, type RemoteRef } from './remote-ref.js';
import type { ServiceHandler } from './inbound-request.js';
import { ReplyTable } from './replies.js';
import { Requests, type ReplyReceiver, type RequestOptions } from './requests.js';
import { Router } from './router.js';
import { SPAWN_SERVICE, spawnFromModule, type SpawnHost } from './spawn-service.js';
import { WriteTurn } from './write-turn.js';
import { OP_CANCEL, OP_DISPATCH, OP_DISPATCH_RUN, OP_NO_ACTOR, OP_REPLY, OP_REQUEST, OP_STOP, describe } from './wire.js';
import { handshakeRefusedChannel, linkDownChannel, linkUpChannel, publish } from '../observability/diagnostics.js';

/** A module export resolved on the peer: `{ module: 'file:///app/actors.js', export: 'counter' }`. */
export interface ModuleSpecifier {
  readonly module: string;
  readonly export: string;
}

export type { RequestContext, ServiceHandler } from './inbound-request.js';
export type { ReplyReceiver, RequestOptions } from './requests.js';

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
  refused: [info: RefusedInfo];
  /** A message could not be delivered: its target node is down, or its target actor does not exist. */
  undeliverable: [info: { target: string; reason: Error }];
}

const SILENT = createLogger(false);
/** How long a down peer is kept before it is forgotten (if nothing refers to it). */
const PRUNE_AFTER_MS = 1000;

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
  /** Links are TLS (`tls: 'auto'` or certificates): runners of a pool on this node must use TLS too. */
  readonly encrypted: boolean;

  readonly #options: ResolvedNodeOptions;
  readonly #server: http.Server;
  readonly #listener: Listener;
  readonly #acceptor: Acceptor;
  readonly #peers = new Map<string, Peer>();
  readonly #waitingInbound = new Map<string, () => void>();
  readonly #remoteSystem: string;
  readonly #host: PeerHost;
  /** Every answer this node waits for (requests and queries), by node-wide id. */
  readonly #monitors = new Monitors();
  readonly #replies = new ReplyTable();
  readonly #deadlines = new Deadlines();
  readonly #requests: Requests;
  readonly #router: Router;
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
    this.encrypted = options.security.mode !== 'plain';
    this.#server = server;
    this.#listener = listener;
    const node = this;
    this.#host = {
      get name() { return node.name; },
      get logger() { return node.logger; },
      get heartbeatInterval() { return node.heartbeatInterval; },
      get heartbeatTimeout() { return node.heartbeatTimeout; },
      get maxQueuedMessages() { return node.maxQueuedMessages; },
      writeTurn: new WriteTurn(),
      decodeContext: (peer) => this.#router.decodeContext(peer),
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
    // Every nact actor of this process takes its messages without nact's per-message closure and promises.
    useLeanDelivery();
    // The system's name is the node's name so refs print meaningfully; nact 7 ignores a plain string argument.
    this.system = (startSystem as unknown as (opts: { name: string }) => Ref<never>)({ name: this.name });
    registerLocalSystem(this.name, this.name);
    this.#remoteSystem = remoteSystemName(this.name);
    this.#requests = new Requests({ name: this.name, logger: this.logger, replies: this.#replies, deadlines: this.#deadlines });
    this.#router = new Router({
      name: this.name,
      remoteSystem: this.#remoteSystem,
      get stopped() { return node.#stopped; },
      replies: this.#replies,
      deadlines: this.#deadlines,
      peer: (name) => this.#peer(name),
      undeliverable: (target, reason) => this.#undeliverable(target, reason),
    });
    systemMap.add({ name: this.#remoteSystem, find: (ref) => this.#router.findRemote(ref) });
    const spawnHost: SpawnHost = { name: this.name, system: this.system, loadModule: (url) => this.#options.loadModule(url) };
    this.handle(SPAWN_SERVICE, (payload) => spawnFromModule(spawnHost, payload));
  }

  /** Starts a node: its nact system and its ws server, bound to its host and port. */
  static async start(options?: NodeOptions): Promise<ClusterNode> {
    const resolved = resolveNodeOptions(options);
    const secureContext = await serverContext(resolved.security);
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
    node.logger.info(`node started on ${node.encrypted ? 'wss' : 'ws'}://${resolved.host}:${port}`);
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
    return this.#monitors.watch(name, this.#peers.get(name)?.state === 'up', onDown);
  }

  /** A ref to the actor at `path` (names from the system down) on `node`, for nact's dispatch/query/stop. */
  remoteRef<Msg = unknown>(node: string, path: string[] | string): Ref<Msg> {
    const parts = typeof path === 'string' ? path.split('/').filter(Boolean) : path;
    return this.#router.ref(parseNodeName(node).node, parts) as Ref<Msg>;
  }

  /**
   * Spawns an actor on `node` from a module export `(parentRef, ...args) => ActorRef`, resolved
   * on that node, and returns its ref.
   */
  async spawnRemote<Msg = unknown>(node: string, spec: ModuleSpecifier, args: unknown[] = [], options: RequestOptions = {}): Promise<Ref<Msg>> {
    const ref = await this.request(node, SPAWN_SERVICE, { module: spec.module, export: spec.export, args }, { timeout: 30_000, ...options });
    return ref as Ref<Msg>;
  }

  /** Registers the handler of a request service (the FLAME layer builds on this). */
  handle(service: string, handler: ServiceHandler): void {
    this.#requests.handle(service, handler);
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
    return this.#requests.request(peer, service, payload, options);
  }

  /**
   * {@link request} without a promise, for hot paths: `receiver.settled(ok, value)` is called
   * exactly once, with the result or the error (possibly before this returns, when the request
   * cannot be sent). `timeout` in ms (default none); `signal` aborts it.
   */
  requestTo(node: string, service: string, payload: unknown, receiver: ReplyReceiver, timeout?: number, signal?: AbortSignal): void {
    let peer: Peer;
    try {
      this.#assertRunning();
      peer = this.#peers.get(node) ?? this.#peer(parseNodeName(node).node);
    } catch (error) {
      receiver.settled(false, error);
      return;
    }
    this.#requests.send(peer, service, payload, timeout, signal, receiver);
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
      droppedReplies: this.#requests.droppedReplies,
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

  #peerDown(peer: Peer, reason: Error, undelivered: unknown[][], wasUp: boolean): void {
    this.#replies.failPeer(peer, reason);
    this.#router.undelivered(peer, undelivered, reason);
    if (wasUp) publish(linkDownChannel, () => ({ node: this.name, peer: peer.node, reason: reason.message, code: (reason as { code?: string }).code }));
    if (wasUp && !this.#stopped) {
      this.emit('nodedown', peer.node, reason);
      this.#monitors.nodeDown(peer.node, reason);
    }
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
      if (peer.idle && !this.#replies.pendingOn(peer) && !this.#requests.servingFor(peer)) this.#peers.delete(peer.node);
      else this.#schedulePrune(peer); // a request it made is still being served
    }, PRUNE_AFTER_MS).unref();
  }

  #undeliverable(target: string, reason: Error): void {
    this.logger.debug(`undeliverable message to ${target}: ${reason.message}`);
    this.emit('undeliverable', { target, reason });
  }

  // ---------------------------------------------------------------- receiving

  /** One message of a frame from `peer`, handed to the layer it belongs to. */
  #receive(peer: Peer, message: unknown): void {
    if (!Array.isArray(message)) {
      peer.protocolError(new ProtocolError('message is not a tuple'));
      return;
    }
    switch (message[0]) {
      case OP_DISPATCH_RUN:
        return this.#router.deliverRun(peer, message[1], message[2]);
      case OP_DISPATCH:
        return this.#router.deliver(peer, message[1], message[2], message[3]);
      case OP_STOP:
        return this.#router.stop(peer, message[1]);
      case OP_REQUEST:
        return this.#requests.serve(peer, message[1], message[2], message[3]);
      case OP_REPLY:
        return this.#requests.replied(peer, message[1], message[2], message[3]);
      case OP_CANCEL:
        return this.#requests.cancelled(peer, message[1], message[2]);
      case OP_NO_ACTOR:
        return this.#router.noActor(peer, message[1], message[2]);
      default:
        peer.protocolError(new ProtocolError(`unknown message type ${describe(message[0], 40)}`));
    }
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

/** Starts a cluster node; see {@link NodeOptions}. */
export function startNode(options?: NodeOptions): Promise<ClusterNode> {
  return ClusterNode.start(options);
}
