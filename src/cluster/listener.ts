/**
 * The node's TCP endpoint. Before a connection has proven the cookie it costs the node as
 * little as possible: the number of such connections is capped per node and per remote address,
 * each gets `handshakeTimeout` from its first byte to its proof, and nothing it sends is kept
 * beyond the HTTP headers and a proof-sized frame (see the acceptor). With TLS, each socket is
 * wrapped here, so the same caps cover connections that never finish their TLS handshake.
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { ConnectError } from '../errors.js';
import type { Logger } from '../log.js';

/** Connections that have not proven the cookie yet, per node. */
export const MAX_UNPROVEN = 128;
/** ...and per remote address (one misbehaving host cannot take all of them). */
export const MAX_UNPROVEN_PER_ADDRESS = 32;

/** What a refusal tells the node's `refused` event. */
export interface RefusedInfo {
  address: string;
  node: string | undefined;
  reason: string;
}

export interface ListenerHost {
  readonly logger: Logger;
  readonly handshakeTimeout: number;
  readonly stopped: boolean;
  refused(info: RefusedInfo): void;
}

/** One accepted connection until it proves the cookie or goes away. */
interface Admission {
  readonly address: string;
  readonly ip: string;
  /** The node name the peer claims, once its upgrade request said. */
  node: string | undefined;
  timer: NodeJS.Timeout | undefined;
  /** 'pending' counts against the caps; 'proven' and 'refused' do not. */
  state: 'pending' | 'proven' | 'refused';
}

export class Listener {
  readonly #host: ListenerHost;
  // No Nagle: a link's frames are small and latency-bound (ws sets it too, but not through a TLS wrapper).
  readonly #server = net.createServer({ noDelay: true });
  readonly #http: http.Server;
  readonly #secureContext: tls.SecureContext | undefined;
  readonly #admissions = new WeakMap<Duplex, Admission>();
  readonly #sockets = new Set<net.Socket>();
  readonly #pendingByIp = new Map<string, number>();
  #pending = 0;
  #overCapLogged = 0;
  #overCapSuppressed = 0;

  constructor(host: ListenerHost, httpServer: http.Server, secureContext: tls.SecureContext | undefined) {
    this.#host = host;
    this.#http = httpServer;
    this.#secureContext = secureContext;
    this.#server.on('connection', (socket) => this.#accept(socket));
    httpServer.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      this.refuse(socket, undefined, `malformed HTTP request (${error.code ?? error.message})`);
      socket.destroy();
    });
  }

  /** Listens on `host:port`; resolves to the port (useful with port 0). */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        reject(new ConnectError(`cannot listen on ${host}:${port}: ${e.message}`, { cause: e }));
      };
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        resolve((this.#server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Connections that have not proven the cookie yet. */
  get unproven(): number {
    return this.#pending;
  }

  /** `ip:port` of the peer of an accepted socket, read when it was accepted (it is gone once the socket closes). */
  addressOf(socket: Duplex): string {
    return this.#admissions.get(socket)?.address ?? 'an unknown address';
  }

  /** Records the node name a connection claims, for the log lines about it. */
  claim(socket: Duplex, node: string): void {
    const admission = this.#admissions.get(socket);
    if (admission) admission.node = node;
  }

  /** The connection proved the cookie: it no longer counts against the caps nor has a deadline. */
  proven(socket: Duplex): void {
    const admission = this.#admissions.get(socket);
    if (admission?.state === 'pending') this.#settle(admission, 'proven');
  }

  /**
   * Logs and reports a refused connection, once per connection (a deadline and a close may both
   * want to). The caller closes the socket its own way (an HTTP answer, a close frame).
   */
  refuse(socket: Duplex, node: string | undefined, reason: string): void {
    const admission = this.#admissions.get(socket);
    if (admission === undefined || admission.state !== 'pending') return;
    this.#settle(admission, 'refused');
    this.#report(admission.address, node ?? admission.node, reason);
  }

  /** Stops accepting and drops every connection. */
  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    socket.on('error', () => {}); // errors surface as 'close'; a listener must exist or they throw
    if (this.#host.stopped) {
      socket.destroy();
      return;
    }
    const ip = socket.remoteAddress ?? 'unknown';
    const address = `${ip}:${socket.remotePort ?? 0}`;
    if (this.#pending >= MAX_UNPROVEN || (this.#pendingByIp.get(ip) ?? 0) >= MAX_UNPROVEN_PER_ADDRESS) {
      this.#overCap(address);
      socket.destroy();
      return;
    }
    const admission: Admission = { address, ip, node: undefined, timer: undefined, state: 'pending' };
    this.#pending++;
    this.#pendingByIp.set(ip, (this.#pendingByIp.get(ip) ?? 0) + 1);
    this.#sockets.add(socket);
    let served: Duplex = socket;
    if (this.#secureContext) {
      const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: this.#secureContext });
      secure.on('error', (error: Error & { reason?: string; code?: string }) => {
        this.refuse(secure, undefined, `TLS handshake failed (${error.reason ?? error.code ?? error.message}): a plaintext or misconfigured peer`);
        socket.destroy();
      });
      served = secure;
      this.#admissions.set(secure, admission);
    }
    this.#admissions.set(socket, admission);
    admission.timer = setTimeout(() => {
      this.refuse(served, undefined, `did not prove the cookie within handshakeTimeout (${this.#host.handshakeTimeout} ms)`);
      socket.destroy();
    }, this.#host.handshakeTimeout);
    admission.timer.unref();
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.refuse(served, undefined, 'closed by the peer before it proved the cookie');
    });
    this.#http.emit('connection', served);
  }

  #settle(admission: Admission, state: 'proven' | 'refused'): void {
    admission.state = state;
    clearTimeout(admission.timer);
    admission.timer = undefined;
    this.#pending--;
    const left = (this.#pendingByIp.get(admission.ip) ?? 1) - 1;
    if (left > 0) this.#pendingByIp.set(admission.ip, left);
    else this.#pendingByIp.delete(admission.ip);
  }

  #report(address: string, node: string | undefined, reason: string): void {
    this.#host.logger.warn(`refused connection from ${address}${node !== undefined ? ` (claims ${node})` : ''}: ${reason}`);
    this.#host.refused({ address, node, reason });
  }

  /** Over the caps: refused at once; logged at most once a second (a flood must not flood the log too). */
  #overCap(address: string): void {
    const reason = `too many connections that have not proven the cookie (at most ${MAX_UNPROVEN}, ${MAX_UNPROVEN_PER_ADDRESS} per address)`;
    this.#host.refused({ address, node: undefined, reason });
    const now = performance.now();
    if (now - this.#overCapLogged < 1000) {
      this.#overCapSuppressed++;
      return;
    }
    const more = this.#overCapSuppressed > 0 ? ` (and ${this.#overCapSuppressed} more since the last report)` : '';
    this.#overCapLogged = now;
    this.#overCapSuppressed = 0;
    this.#host.logger.warn(`refused connection from ${address}: ${reason}${more}`);
  }
}
