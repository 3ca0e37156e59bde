/**
 * Bearer-token authentication and role-based authorization, reduced to what a namespaced `Role`
 * bound to a `ServiceAccount` expresses: verbs on resources (optionally on some names), in one
 * namespace. Refusals carry the real authorizer's sentence, which people and tests recognise.
 */
import { randomBytes } from 'node:crypto';
import { apiErrors, type ApiError } from './status.js';

/** One rule of a Role, as in `rbac.authorization.k8s.io/v1` (API groups: only the core group "" exists here). */
export interface PolicyRule {
  /** `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or `*`. */
  verbs: string[];
  /** `pods`, `pods/log`, `pods/status`, `secrets`... or `*`. */
  resources: string[];
  /** Restricts the rule to these object names (as the real RBAC does, not for list/watch/create). */
  resourceNames?: string[];
  /** Accepted for familiarity; only `""` (the core group) or `*` match anything here. */
  apiGroups?: string[];
}

export interface User {
  username: string;
  groups: string[];
}

export interface RequestAttributes {
  verb: string;
  resource: string;
  subresource?: string;
  /** Undefined for cluster-wide requests and cluster-scoped resources. */
  namespace?: string;
  name?: string;
}

interface Binding {
  username: string;
  /** `undefined` binds cluster-wide, like a ClusterRoleBinding. */
  namespace: string | undefined;
  rules: PolicyRule[];
}

export const ADMIN_USER: User = { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };

export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

function matchesList(list: string[] | undefined, value: string): boolean {
  return (list ?? []).some((v) => v === '*' || v === value);
}

export class Authorizer {
  private readonly users = new Map<string, User>();
  private readonly bindings: Binding[] = [];
  private readonly accountTokens = new Map<string, string>();

  /** Registers a token for a user; returns the token. */
  addToken(user: User, token: string = randomBytes(24).toString('base64url')): string {
    this.users.set(token, user);
    return token;
  }

  /**
   * The token of a service account, made on first request, so that every pod running as that
   * account reads the same token (as from one token Secret).
   */
  serviceAccountToken(namespace: string, name: string): string {
    const username = serviceAccountUsername(namespace, name);
    let token = this.accountTokens.get(username);
    if (!token) {
      token = this.addToken({
        username,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
      });
      this.accountTokens.set(username, token);
    }
    return token;
  }

  /** Grants `rules` to `username` in `namespace` (or cluster-wide when undefined), like a RoleBinding. */
  bind(username: string, namespace: string | undefined, rules: PolicyRule[]): void {
    for (const rule of rules) {
      if (!Array.isArray(rule.verbs) || !Array.isArray(rule.resources)) {
        throw new TypeError(`a policy rule needs verbs and resources arrays, got ${JSON.stringify(rule)}`);
      }
    }
    this.bindings.push({ username, namespace, rules: structuredClone(rules) });
  }

  /** The user a `Authorization: Bearer ...` header names, or undefined. */
  authenticate(authorization: string | undefined): User | undefined {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    return match ? this.users.get(match[1]!) : undefined;
  }

  allows(user: User, request: RequestAttributes): boolean {
    if (user.groups.includes('system:masters')) return true;
    const resource = request.subresource ? `${request.resource}/${request.subresource}` : request.resource;
    return this.bindings.some(
      (binding) =>
        binding.username === user.username &&
        (binding.namespace === undefined || binding.namespace === request.namespace) &&
        binding.rules.some(
          (rule) =>
            (rule.apiGroups === undefined || rule.apiGroups.some((g) => g === '' || g === '*')) &&
            matchesList(rule.verbs, request.verb) &&
            matchesList(rule.resources, resource) &&
            (rule.resourceNames === undefined ||
              rule.resourceNames.length === 0 ||
              (request.name !== undefined && rule.resourceNames.includes(request.name))),
        ),
    );
  }

  /** Throws the real 403 when the user may not do this. */
  authorize(user: User, request: RequestAttributes): void {
    if (!this.allows(user, request)) throw forbidden(user, request);
  }
}

export function forbidden(user: User, request: RequestAttributes): ApiError {
  const resource = request.subresource ? `${request.resource}/${request.subresource}` : request.resource;
  const scope = request.namespace === undefined ? 'at the cluster scope' : `in the namespace "${request.namespace}"`;
  return apiErrors.forbidden(
    request.resource,
    request.name,
    `User "${user.username}" cannot ${request.verb} resource "${resource}" in API group "" ${scope}`,
  );
}
