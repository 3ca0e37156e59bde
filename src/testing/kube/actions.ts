/**
 * Requests that are answered, not stored: the access reviews (`kubectl auth can-i`, `can-i
 * --list`, `auth whoami`), TokenRequest (`kubectl create token`), and the subresources that act
 * on an object (`pods/eviction`, `deployments/scale`). Each answer has the real kind and shape.
 */
import type { Authorizer, RequestAttributes, User } from './rbac.js';
import type { Registry } from './registry.js';
import { apiErrors } from './status.js';
import { evict } from './disruption.js';
import { readScale, writeScale } from './scale.js';
import { apiVersionOf, invalidValue, nowSeconds, type ResourceDefinition } from './strategy.js';

export interface ActionContext {
  registry: Registry;
  authorizer: Authorizer;
  user: User;
  definition: ResourceDefinition;
  verb: string;
  namespace: string;
  name: string;
  subresource: string | undefined;
  /** The request body (JSON), read on demand. */
  body(): Promise<unknown>;
  /** A PATCH body, applied to the current subresource object by the caller's patch machinery. */
  patch(current: unknown): Promise<unknown>;
}

export interface ActionResult {
  code: number;
  body: unknown;
}

type Spec = Record<string, unknown>;

function specOf(body: unknown): Spec {
  const spec = (body as { spec?: unknown } | null)?.spec;
  return spec !== null && typeof spec === 'object' && !Array.isArray(spec) ? (spec as Spec) : {};
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function accessReview(ctx: ActionContext, body: unknown): ActionResult {
  const spec = specOf(body);
  const attributes = (spec.resourceAttributes ?? {}) as Record<string, unknown>;
  const request: RequestAttributes = { verb: str(attributes.verb) ?? '', resource: str(attributes.resource) ?? '', apiGroup: str(attributes.group) ?? '' };
  const subresource = str(attributes.subresource);
  const namespace = str(attributes.namespace);
  const name = str(attributes.name);
  if (subresource) request.subresource = subresource;
  if (namespace) request.namespace = namespace;
  if (name) request.name = name;
  // Non-resource URLs (`kubectl auth can-i get /healthz`): discovery and health are open to everyone here.
  const allowed = spec.nonResourceAttributes !== undefined ? true : ctx.authorizer.allows(ctx.user, request);
  // RBAC gives no reason for a denial, so kubectl prints a bare "no", as with a real cluster.
  return {
    code: 201,
    body: { kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status: { allowed } },
  };
}

function rulesReview(ctx: ActionContext, body: unknown): ActionResult {
  const spec = specOf(body);
  const namespace = str(spec.namespace);
  if (!namespace) throw apiErrors.invalid('SelfSubjectRulesReview.authorization.k8s.io', '', [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.namespace' }]);
  const resourceRules: unknown[] = [];
  const nonResourceRules: unknown[] = [];
  for (const rule of ctx.authorizer.rulesFor(ctx.user, namespace)) {
    if ((rule.nonResourceURLs ?? []).length > 0) nonResourceRules.push({ verbs: rule.verbs, nonResourceURLs: rule.nonResourceURLs });
    else {
      const entry: Record<string, unknown> = { verbs: rule.verbs, apiGroups: rule.apiGroups ?? [], resources: rule.resources ?? [] };
      if ((rule.resourceNames ?? []).length > 0) entry.resourceNames = rule.resourceNames;
      resourceRules.push(entry);
    }
  }
  return {
    code: 201,
    body: {
      kind: 'SelfSubjectRulesReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec: { namespace },
      status: { resourceRules, nonResourceRules, incomplete: false },
    },
  };
}

function selfReview(ctx: ActionContext): ActionResult {
  return {
    code: 201,
    body: {
      kind: 'SelfSubjectReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: nowSeconds() },
      status: { userInfo: { username: ctx.user.username, groups: ctx.user.groups } },
    },
  };
}

/** TokenRequest: a token for the account, valid 10 minutes to 2^32 s (default 1 h), revoked with the account. */
function tokenRequest(ctx: ActionContext, body: unknown): ActionResult {
  const spec = specOf(body);
  const requested = spec.expirationSeconds;
  const seconds = typeof requested === 'number' ? requested : 3600;
  if (!Number.isInteger(seconds) || seconds < 600) {
    throw apiErrors.invalid('TokenRequest.authentication.k8s.io', ctx.name, [invalidValue('spec.expirationSeconds', seconds, 'may not specify a duration less than 10 minutes')]);
  }
  if (seconds > 2 ** 32) {
    throw apiErrors.invalid('TokenRequest.authentication.k8s.io', ctx.name, [invalidValue('spec.expirationSeconds', seconds, 'may not specify a duration larger than 2^32 seconds')]);
  }
  const { token, expiresAt } = ctx.authorizer.issueServiceAccountToken(ctx.namespace, ctx.name, seconds);
  const audiences = Array.isArray(spec.audiences) && spec.audiences.length > 0 ? spec.audiences : ['https://kubernetes.default.svc.cluster.local'];
  return {
    code: 201,
    body: {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name: ctx.name, namespace: ctx.namespace, creationTimestamp: nowSeconds() },
      spec: { audiences, expirationSeconds: seconds, boundObjectRef: spec.boundObjectRef ?? null },
      status: { token, expirationTimestamp: expiresAt.toISOString().replace(/\.\d+Z$/, 'Z') },
    },
  };
}

/**
 * Answers the request when it is an action (a virtual kind or an acting subresource), else
 * returns undefined and the request is a plain read or write of stored objects.
 */
export async function serveAction(ctx: ActionContext): Promise<ActionResult | undefined> {
  const { definition, subresource, verb } = ctx;
  if (definition.virtual) {
    if (verb !== 'create') throw apiErrors.methodNotAllowed();
    const body = await ctx.body();
    checkKind(body, definition);
    if (definition.name === 'selfsubjectaccessreviews') return accessReview(ctx, body);
    if (definition.name === 'selfsubjectrulesreviews') return rulesReview(ctx, body);
    return selfReview(ctx);
  }
  if (subresource === 'token' && definition.name === 'serviceaccounts') {
    if (verb !== 'create') throw apiErrors.methodNotAllowed();
    return tokenRequest(ctx, await ctx.body());
  }
  if (subresource === 'eviction' && definition.name === 'pods') {
    if (verb !== 'create') throw apiErrors.methodNotAllowed();
    return { code: 201, body: evict(ctx.registry, ctx.namespace, ctx.name, await ctx.body()) };
  }
  if (subresource === 'scale') {
    if (verb === 'get') return { code: 200, body: readScale(ctx.registry, definition, ctx.namespace, ctx.name) };
    if (verb === 'update') return { code: 200, body: writeScale(ctx.registry, definition, ctx.namespace, ctx.name, await ctx.body()) };
    if (verb === 'patch') {
      const patched = await ctx.patch(readScale(ctx.registry, definition, ctx.namespace, ctx.name));
      return { code: 200, body: writeScale(ctx.registry, definition, ctx.namespace, ctx.name, patched) };
    }
    throw apiErrors.methodNotAllowed();
  }
  return undefined;
}

function checkKind(body: unknown, definition: ResourceDefinition): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw apiErrors.badRequest('the request body must be a JSON object');
  const { kind, apiVersion } = body as { kind?: unknown; apiVersion?: unknown };
  if (kind !== undefined && kind !== definition.kind) {
    throw apiErrors.badRequest(`the kind of the object (${String(kind)}) does not match the resource (${definition.name}, kind ${definition.kind})`);
  }
  if (apiVersion !== undefined && apiVersion !== apiVersionOf(definition)) {
    throw apiErrors.badRequest(`the API version in the data (${String(apiVersion)}) does not match the expected API version (${apiVersionOf(definition)})`);
  }
}
