/**
 * The HTTPS API server: authentication, injected request faults, RBAC, then the REST routes of the
 * core API (`/api/v1/...`) for the resources in resources.ts, with lists, watches, patches, the
 * status and log subresources, discovery, and SelfSubjectAccessReview for `kubectl auth can-i`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { serveAction } from './actions.js';
import { apiGroup, apiGroupList, apiVersions, resourceList, versionInfo } from './discovery.js';
import type { FaultInjector } from './faults.js';
import type { Kubelet } from './kubelet.js';
import { streamLog } from './logs.js';
import { frozenJson } from './frozen-json.js';
import { openApiV3Document, openApiV3Index } from './openapi.js';
import { applyPatch, patchTypeOf } from './patch.js';
import { type Authorizer, type RequestAttributes, type User } from './rbac.js';
import type { DeleteOptions, PropagationPolicy, Registry } from './registry.js';
import { findResourceIn, type ResourceDefinition } from './resources.js';
import { apiVersionOf } from './strategy.js';
import { decodeProtobufObject, isKubernetesProtobuf } from './protobuf.js';
import { FUTURE_VERSION_WAIT_MS, integerParam, listVersion, queryBool, tooLargeResourceVersion } from './query.js';
import { ApiError, apiErrors, failure } from './status.js';
import { tableForResource, type Table } from './table.js';
import type { Pod, StoredObject } from './types.js';
import type { WatchHub } from './watch.js';

export interface ApiServerOptions {
  registry: Registry;
  authorizer: Authorizer;
  faults: FaultInjector;
  watches: WatchHub;
  kubelet: Kubelet;
  tls: { cert: string; key: string };
  host: string;
  port: number;
  /** Largest request body accepted (the real server's limit is 3 MiB). */
  maxBodyBytes?: number;
}

interface ResourceRoute {
  kind: 'resource';
  definition: ResourceDefinition;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

type Route = ResourceRoute | { kind: 'document'; body: unknown };

function discoveryDocument(joined: string, parts: string[], serverAddress: string): unknown {
  if (joined === '/api') return apiVersions(serverAddress);
  if (joined === '/api/v1') return resourceList('', 'v1');
  if (joined === '/apis') return apiGroupList();
  if (joined === '/openapi/v3') return openApiV3Index();
  if (joined === '/openapi/v3/api/v1') return openApiV3Document();
  if (parts[0] === 'openapi' && parts[1] === 'v3' && parts[2] === 'apis' && parts.length === 5) return openApiV3Document(parts[3], parts[4]);
  if (parts[0] === 'apis' && parts.length === 2) return apiGroup(parts[1]!);
  if (parts[0] === 'apis' && parts.length === 3) return resourceList(parts[1]!, parts[2]!);
  return undefined;
}

/** `/api/v1/...` (core group) or `/apis/GROUP/VERSION/...`, then `[namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]]`. */
function parseRoute(path: string, serverAddress: string): Route {
  const parts = path.split('/').filter((p) => p.length > 0).map(decodeURIComponent);
  const joined = `/${parts.join('/')}`;
  const document = discoveryDocument(joined, parts, serverAddress);
  if (document !== undefined) return { kind: 'document', body: document };
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1' && parts.length >= 3) [group, version, rest] = ['', 'v1', parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length >= 4) [group, version, rest] = [parts[1]!, parts[2]!, parts.slice(3)];
  else throw apiErrors.notFoundPath();
  const lookup = (name: string): ResourceDefinition => {
    const definition = findResourceIn(group, version, name);
    if (!definition) throw apiErrors.notFoundPath();
    return definition;
  };
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const definition = lookup(rest[2]!);
    if (!definition.namespaced || rest.length > 5) throw apiErrors.notFoundPath();
    return { kind: 'resource', definition, namespace: rest[1]!, name: rest[3], subresource: rest[4] };
  }
  const definition = lookup(rest[0]!);
  if (rest.length > 3 || (definition.namespaced && rest.length > 1)) throw apiErrors.notFoundPath();
  return { kind: 'resource', definition, namespace: undefined, name: rest[1], subresource: rest[2] };
}

function verbOf(method: string, route: ResourceRoute, query: URLSearchParams): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (queryBool(query, 'watch')) return 'watch';
      return route.name === undefined ? 'list' : 'get';
    case 'POST':
      if (route.name !== undefined && route.subresource === undefined) throw apiErrors.methodNotAllowed();
      return 'create';
    case 'PUT':
      if (route.name === undefined) throw apiErrors.methodNotAllowed();
      return 'update';
    case 'PATCH':
      if (route.name === undefined) throw apiErrors.methodNotAllowed();
      return 'patch';
    case 'DELETE':
      return route.name === undefined ? 'deletecollection' : 'delete';
    default:
      throw apiErrors.methodNotAllowed();
  }
}

function wantsTable(request: IncomingMessage): boolean {
  return /as=Table/.test(request.headers.accept ?? '');
}

export class ApiServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private address: AddressInfo | undefined;

  constructor(private readonly options: ApiServerOptions) {
    this.server = createServer({ cert: options.tls.cert, key: options.tls.key }, (request, response) => {
      void this.handle(request, response);
    });
    this.server.on('secureConnection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.address = this.server.address() as AddressInfo;
    return this.address;
  }

  get port(): number {
    if (!this.address) throw new Error('the API server is not listening');
    return this.address.port;
  }

  async close(): Promise<void> {
    this.options.watches.closeAll();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      await this.route(request, response);
    } catch (error) {
      const apiError =
        error instanceof ApiError ? error : apiErrors.internal(error instanceof Error ? error.message : String(error));
      if (response.headersSent) {
        response.destroy();
        return;
      }
      // A refusal before the body was read: drop the rest and the connection, so that the unread
      // body is not taken for the next request on it.
      const headers = request.complete ? apiError.headers : { ...apiError.headers, Connection: 'close' };
      if (!request.complete) request.resume();
      this.sendJson(response, apiError.code, apiError.status, headers);
    }
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://emulator.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('ok');
      return;
    }
    if (path === '/version') {
      this.sendJson(response, 200, versionInfo());
      return;
    }
    const authenticated = this.options.authorizer.authenticate(request.headers.authorization);
    if (!authenticated) throw apiErrors.unauthorized();
    const user = this.impersonated(authenticated, request);
    const route = parseRoute(path, `${this.options.host}:${this.port}`);
    const method = request.method ?? 'GET';
    if (route.kind === 'document') {
      if (method !== 'GET') throw apiErrors.methodNotAllowed();
      // OpenAPI documents are read from the schema declarations the first time (a promise).
      this.sendJson(response, 200, await route.body);
      return;
    }
    const query = url.searchParams;
    const verb = verbOf(method, route, query);
    const fault = this.options.faults.takeRequestFault(verb, route.definition.name);
    if (fault) throw fault.code === 429 ? apiErrors.tooManyRequests(fault.retryAfterSeconds) : apiErrors.internal('emulated server error (fault injected)');
    const attributes: RequestAttributes = { verb, apiGroup: route.definition.group, resource: route.definition.name };
    if (route.subresource) attributes.subresource = route.subresource;
    const rbacNamespace = route.namespace ?? (route.definition.name === 'namespaces' ? route.name : undefined);
    if (rbacNamespace !== undefined) attributes.namespace = rbacNamespace;
    if (route.name !== undefined && verb !== 'create') attributes.name = route.name;
    this.options.authorizer.authorize(user, attributes);
    if (route.subresource && !(route.subresource in route.definition.subresources)) throw apiErrors.notFoundPath();
    if (route.subresource && !(route.definition.subresources[route.subresource] as string[]).includes(verb)) throw apiErrors.methodNotAllowed();
    if (!(route.definition.verbs as string[]).includes(verb) && !route.subresource) throw apiErrors.methodNotAllowed();
    if (query.get('dryRun')) throw apiErrors.badRequest('dryRun is not supported by the emulated cluster');
    const action = await serveAction({
      registry: this.options.registry,
      authorizer: this.options.authorizer,
      user,
      definition: route.definition,
      verb,
      namespace: route.namespace ?? '',
      name: route.name ?? '',
      subresource: route.subresource,
      body: () => this.readJson(request),
      patch: async (current) => applyPatch(patchTypeOf(request.headers['content-type']), current, await this.readJson(request)),
    });
    if (action) {
      this.sendJson(response, action.code, action.body);
      return;
    }
    await this.serveResource(request, response, route, verb, query);
  }

  private async serveResource(request: IncomingMessage, response: ServerResponse, route: ResourceRoute, verb: string, query: URLSearchParams): Promise<void> {
    const { registry } = this.options;
    const resource = route.definition.name;
    const namespace = route.namespace ?? '';
    const name = route.name ?? '';
    const includeObject = query.get('includeObject') ?? undefined;
    switch (verb) {
      case 'watch': {
        const selectors = { labelSelector: query.get('labelSelector') ?? undefined, fieldSelector: query.get('fieldSelector') ?? undefined };
        if (route.name !== undefined) selectors.fieldSelector = [`metadata.name=${route.name}`, selectors.fieldSelector].filter(Boolean).join(',');
        const matches = registry.matcher(resource, selectors);
        const table = wantsTable(request);
        this.options.watches.serve(request, response, {
          resource,
          kind: route.definition.kind,
          namespace: route.namespace,
          matches,
          resourceVersion: query.get('resourceVersion') ?? undefined,
          allowBookmarks: queryBool(query, 'allowWatchBookmarks'),
          sendInitialEvents: queryBool(query, 'sendInitialEvents'),
          timeoutSeconds: integerParam(query, 'timeoutSeconds'),
          encode: (object, first) =>
            table ? tableForResource(resource, [object], { resourceVersion: object.metadata.resourceVersion }, { withColumns: first, includeObject }) : object,
        });
        return;
      }
      case 'list': {
        const version = listVersion(query);
        if (version.minimum !== undefined && version.minimum > registry.resourceVersion) {
          // The real watch cache waits a little for the revision to arrive before giving up.
          const reached = await this.options.watches.waitForRevision(version.minimum, FUTURE_VERSION_WAIT_MS);
          if (!reached) throw tooLargeResourceVersion(version.minimum, registry.resourceVersion);
        }
        const limit = integerParam(query, 'limit');
        const result = registry.list(resource, route.namespace, {
          labelSelector: query.get('labelSelector') ?? undefined,
          fieldSelector: query.get('fieldSelector') ?? undefined,
          ...(limit !== undefined ? { limit } : {}),
          continueToken: query.get('continue') ?? undefined,
        });
        const metadata: Table['metadata'] = { resourceVersion: result.resourceVersion };
        if (result.continueToken) metadata.continue = result.continueToken;
        if (result.remainingItemCount !== undefined) metadata.remainingItemCount = result.remainingItemCount;
        if (wantsTable(request)) {
          this.sendJson(response, 200, tableForResource(resource, result.items, metadata, { withColumns: true, includeObject }));
        } else {
          // The items' text is each stored revision's, made once (frozen-json.ts).
          const head = JSON.stringify({ kind: `${route.definition.kind}List`, apiVersion: apiVersionOf(route.definition), metadata });
          this.sendText(response, 200, `${head.slice(0, -1)},"items":[${result.items.map(frozenJson).join(',')}]}`);
        }
        return;
      }
      case 'get': {
        if (route.subresource === 'log') {
          this.serveLogs(response, namespace, name, query);
          return;
        }
        const object = registry.get(resource, namespace, name);
        if (wantsTable(request) && !route.subresource) {
          this.sendJson(response, 200, tableForResource(resource, [object], { resourceVersion: object.metadata.resourceVersion }, { withColumns: true, includeObject }));
        } else {
          this.sendJson(response, 200, object);
        }
        return;
      }
      case 'create': {
        const created = registry.create(resource, namespace, await this.readJson(request));
        this.sendJson(response, 201, created);
        return;
      }
      case 'update': {
        this.sendJson(response, 200, registry.update(resource, namespace, name, await this.readJson(request), route.subresource));
        return;
      }
      case 'patch': {
        const type = patchTypeOf(request.headers['content-type']);
        this.sendJson(response, 200, registry.patch(resource, namespace, name, type, await this.readJson(request), route.subresource));
        return;
      }
      case 'delete': {
        const result = registry.delete(resource, namespace, name, await this.deleteOptions(request, query));
        // The generic registry answers an object removed at once with a Success Status naming it
        // (its `kind` is the resource, as the real one sets it); pods and deletions still under
        // way (grace period, finalizers) answer with the object.
        if (result.removed && route.definition.deleteReturnsStatus) {
          const details: Record<string, string> = { name: result.object.metadata.name, kind: route.definition.name, uid: result.object.metadata.uid };
          if (route.definition.group) details.group = route.definition.group;
          this.sendJson(response, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details });
        } else {
          this.sendJson(response, 200, result.object);
        }
        return;
      }
      case 'deletecollection': {
        const deleted = registry.deleteCollection(
          resource,
          route.namespace,
          { labelSelector: query.get('labelSelector') ?? undefined, fieldSelector: query.get('fieldSelector') ?? undefined },
          await this.deleteOptions(request, query),
        );
        this.sendJson(response, 200, {
          kind: `${route.definition.kind}List`,
          apiVersion: apiVersionOf(route.definition),
          metadata: { resourceVersion: String(registry.resourceVersion) },
          items: deleted,
        });
        return;
      }
      default:
        throw apiErrors.methodNotAllowed();
    }
  }

  private serveLogs(response: ServerResponse, namespace: string, name: string, query: URLSearchParams): void {
    const pod = this.options.registry.get('pods', namespace, name) as Pod & StoredObject;
    const names = pod.spec?.containers.map((c) => c.name) ?? [];
    const container = query.get('container') ?? (names.length === 1 ? names[0]! : undefined);
    if (container === undefined) {
      throw apiErrors.badRequest(`a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`);
    }
    if (!names.includes(container)) throw apiErrors.badRequest(`container ${container} is not valid for pod ${name}`);
    const waitingReason = (): string =>
      pod.status?.containerStatuses?.find((s) => s.name === container)?.state?.waiting?.reason ?? 'ContainerCreating';
    let runner;
    try {
      runner = this.options.kubelet.worker(namespace, name).container(container);
    } catch {
      runner = undefined;
    }
    const previous = queryBool(query, 'previous');
    if (previous) {
      const log = runner?.logs(true);
      if (!log) throw apiErrors.badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
      streamLog(response, log, query);
      return;
    }
    const log = runner?.logs(false);
    if (!log) throw apiErrors.badRequest(`container "${container}" in pod "${name}" is waiting to start: ${runner?.waitingReason ?? waitingReason()}`);
    streamLog(response, log, query);
  }

  /**
   * `kubectl --as=USER [--as-group=G]`: admins may act as anyone (handy to try a Role from the
   * command line); others get the real refusal.
   */
  private impersonated(user: User, request: IncomingMessage): User {
    const asUser = request.headers['impersonate-user'];
    if (typeof asUser !== 'string' || asUser === '') return user;
    if (!user.groups.includes('system:masters')) {
      throw apiErrors.forbidden('users', asUser, `User "${user.username}" cannot impersonate resource "users" in API group "" at the cluster scope`);
    }
    const groups = request.headers['impersonate-group'];
    const asGroups = Array.isArray(groups) ? groups : typeof groups === 'string' ? groups.split(',').map((g) => g.trim()) : [];
    return { username: asUser, groups: [...asGroups.filter((g) => g !== 'system:masters'), 'system:authenticated'] };
  }

  private async deleteOptions(request: IncomingMessage, query: URLSearchParams): Promise<DeleteOptions> {
    const body = (await this.readJson(request, true)) as
      | { gracePeriodSeconds?: number; propagationPolicy?: PropagationPolicy; orphanDependents?: boolean; preconditions?: DeleteOptions['preconditions'] }
      | undefined;
    const options: DeleteOptions = {};
    const grace = integerParam(query, 'gracePeriodSeconds') ?? body?.gracePeriodSeconds;
    if (grace !== undefined && grace !== null) options.gracePeriodSeconds = grace;
    const policy = (query.get('propagationPolicy') as PropagationPolicy | null) ?? body?.propagationPolicy;
    if (policy) options.propagationPolicy = policy;
    else if (queryBool(query, 'orphanDependents') || body?.orphanDependents === true) options.propagationPolicy = 'Orphan';
    if (body?.preconditions) options.preconditions = body.preconditions;
    return options;
  }

  private async readBody(request: IncomingMessage): Promise<Buffer> {
    const limit = this.options.maxBodyBytes ?? 3 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw apiErrors.requestEntityTooLarge(limit);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  private async readJson(request: IncomingMessage, optional = false): Promise<unknown> {
    const body = await this.readBody(request);
    if (isKubernetesProtobuf(body)) {
      try {
        return decodeProtobufObject(body);
      } catch (error) {
        throw new ApiError(failure(415, 'UnsupportedMediaType', (error as Error).message));
      }
    }
    const text = body.toString('utf8').trim();
    if (text === '') {
      if (optional) return undefined;
      throw apiErrors.badRequest('the request body is empty; a JSON object is expected');
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw apiErrors.badRequest(`couldn't get version/kind; json parse error: ${(error as Error).message}`);
    }
  }

  private sendText(response: ServerResponse, code: number, text: string, headers: Record<string, string> = {}): void {
    response.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    response.end(text);
  }

  private sendJson(response: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
    // A stored object's text is made once per revision and shared with its watch events.
    this.sendText(response, code, frozenJson(body), headers);
  }
}

