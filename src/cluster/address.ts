/**
 * Node names, as Erlang's `RELEASE_NODE`: `name@host`, with `:port` when the node does not
 * listen on the well-known {@link DEFAULT_PORT}. In Kubernetes the host is the pod's IP
 * (`app@$(POD_IP)`), so every pod listens on the same port on its own address.
 */
import { isIPv6 } from 'node:net';
import { InvalidOptionError } from '../errors.js';

/** The port every node listens on unless told otherwise (EPMD's 4369, plus one). */
export const DEFAULT_PORT = 4370;

export interface NodeAddress {
  /** The full node name, e.g. `app@127.0.0.3` or `app@127.0.0.3:9000`. */
  node: string;
  /** The part before `@`. */
  name: string;
  host: string;
  port: number;
}

const NAME_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses `name@host[:port]`. IPv6 hosts take brackets with a port (`app@[::1]:9000`) and may go
 * bare without one (`app@fd00::1`), as `app@$(POD_IP)` expands on an IPv6-only cluster.
 */
export function parseNodeName(node: string): NodeAddress {
  if (typeof node !== 'string') throw new InvalidOptionError(`node name must be a string like "app@10.1.2.3" (got ${typeof node})`);
  const at = node.indexOf('@');
  const name = node.slice(0, at);
  const rest = node.slice(at + 1);
  if (at <= 0 || !NAME_RE.test(name) || rest === '') {
    throw new InvalidOptionError(`invalid node name "${node}": expected "name@host" or "name@host:port", e.g. "app@10.1.2.3"`);
  }
  let host = rest;
  let port = DEFAULT_PORT;
  // A bare IPv6 address has two colons or more; asking isIPv6 only then keeps its large regex
  // from being compiled (~4 ms) by every runner's boot, whose names are IPv4.
  const bareIPv6 = rest.indexOf(':') !== rest.lastIndexOf(':') && isIPv6(rest);
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? (bareIPv6 ? [rest, rest] : null) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(rest);
  if (!m) throw new InvalidOptionError(`invalid host in node name "${node}"`);
  host = m[1]!;
  if (host.includes(':') && !isIPv6(host)) throw new InvalidOptionError(`invalid IPv6 address in node name "${node}"`);
  if (m[2] !== undefined) {
    port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidOptionError(`invalid port in node name "${node}": must be 1-65535`);
    }
  }
  return { node: formatNodeName(name, host, port), name, host, port };
}

/** Whether a node name gives its port (`app@h:9000`, `app@[::1]:9000`), as a bare IPv6 host (`app@fd00::1`) does not. */
export function hasExplicitPort(node: string): boolean {
  const rest = node.slice(node.indexOf('@') + 1);
  return /^\[[^\]]+\]:\d+$/.test(rest) || /^[^:[\]]+:\d+$/.test(rest);
}

/** The canonical node name for a name, host and port. */
export function formatNodeName(name: string, host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === DEFAULT_PORT ? `${name}@${h}` : `${name}@${h}:${port}`;
}

export function isValidShortName(name: string): boolean {
  return NAME_RE.test(name);
}

/** The ws URL a node listens on. */
export function nodeUrl(address: NodeAddress, tls: boolean): string {
  const h = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${tls ? 'wss' : 'ws'}://${h}:${address.port}/flame`;
}
