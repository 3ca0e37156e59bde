/**
 * Authentication by bearer token and authorization by the RBAC objects stored in the cluster, as
 * kube-apiserver's RBAC authorizer decides: a request is allowed when a ClusterRoleBinding, or a
 * RoleBinding in the request's namespace, binds the user (by name, group or service account) to
 * a Role or ClusterRole with a rule covering the verb, API group, resource (and subresource) and
 * name. `system:masters` is allowed everything, as the real server's privileged group. Refusals
 * carry the real authorizer's sentence.
 *
 * Service-account tokens are opaque random strings bound to the account's uid: deleting the
 * account revokes them, and those made by TokenRequest expire.
 */
import { randomBytes } from 'node:crypto';
import type { PolicyRuleObject, RoleRef, Subject } from './kinds/rbac.js';
import { apiErrors, type ApiError } from './status.js';
import type { StrategyContext } from './strategy.js';

/** One rule of a Role, as in `rbac.authorization.k8s.io/v1` (`apiGroups` defaults to the core group in the helpers). */
export interface PolicyRule {
  /** `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or `*`. */
  verbs: string[];
  /** `pods`, `pods/log`, `pods/status`, `secrets`... or `*`. */
  resources: string[];
  /** Restricts the rule to these object names (as the real RBAC does, not for list/watch/create). */
  resourceNames?: string[];
  /** `""` for the core group, `apps`, `rbac.authorization.k8s.io`... or `*` (default `[""]`). */
  apiGroups?: string[];
}

export interface User {
  username: string;
  groups: string[];
}

export interface RequestAttributes {
  verb: string;
  /** API group of the resource ('' for the core group). */
  apiGroup?: string;
  resource: string;
  subresource?: string;
  /** Undefined for cluster-wide requests and cluster-scoped resources. */
  namespace?: string;
  name?: string;
}

interface TokenEntry {
  user: User;
  /** For service-account tokens: the account they belong to (revoked once it is gone or replaced). */
  account?: { namespace: string; name: string; uid: string };
  expiresAt?: number;
}

export const ADMIN_USER: User = { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };

export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

export function serviceAccountUser(namespace: string, name: string): User {
  return {
    username: serviceAccountUsername(namespace, name),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

function matches(list: string[] | undefined, value: string): boolean {
  return (list ?? []).some((v) => v === '*' || v === value);
}

function resourceMatches(rule: PolicyRuleObject, resource: string, subresource: string | undefined): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  return (rule.resources ?? []).some((r) => r === '*' || r === combined || (subresource !== undefined && r === `*/${subresource}`));
}

export function ruleAllows(rule: PolicyRuleObject, request: RequestAttributes): boolean {
  if ((rule.nonResourceURLs ?? []).length > 0) return false;
  return (
    matches(rule.verbs, request.verb) &&
    matches(rule.apiGroups, request.apiGroup ?? '') &&
    resourceMatches(rule, request.resource, request.subresource) &&
    ((rule.resourceNames ?? []).length === 0 || (request.name !== undefined && rule.resourceNames!.includes(request.name)))
  );
}

function subjectMatches(subject: Subject, user: User, bindingNamespace: string | undefined): boolean {
  switch (subject.kind) {
    case 'User':
      return subject.name === user.username;
    case 'Group':
      return user.groups.includes(subject.name);
    case 'ServiceAccount': {
      const namespace = subject.namespace || bindingNamespace;
      return namespace !== undefined && user.username === serviceAccountUsername(namespace, subject.name);
    }
    default:
      return false;
  }
}

export class Authorizer {
  private readonly tokens = new Map<string, TokenEntry>();
  /** The token kubelet-mounted files carry, one per account uid (as one projected token per pod, reused). */
  private readonly mountedTokens = new Map<string, string>();

  constructor(private readonly cluster: Pick<StrategyContext, 'find' | 'items'>) {}

  /** Registers a token for a user; returns the token. */
  addToken(user: User, token: string = randomBytes(24).toString('base64url')): string {
    this.tokens.set(token, { user });
    return token;
  }

  /**
   * A new token for a service account (TokenRequest), valid while the account exists, until
   * `expirationSeconds` from now when given. Throws 404 when the account does not exist.
   */
  issueServiceAccountToken(namespace: string, name: string, expirationSeconds?: number): { token: string; expiresAt: Date } {
    const account = this.cluster.find('serviceaccounts', namespace, name);
    if (!account) throw apiErrors.notFound('serviceaccounts', name);
    const token = randomBytes(32).toString('base64url');
    const seconds = expirationSeconds ?? 3600;
    const expiresAt = Date.now() + seconds * 1000;
    this.tokens.set(token, { user: serviceAccountUser(namespace, name), account: { namespace, name, uid: account.metadata.uid }, expiresAt });
    return { token, expiresAt: new Date(expiresAt) };
  }

  /**
   * The token of a service account as pods mount it: one per account, so that every pod running
   * as that account reads the same token. Throws 404 when the account does not exist.
   */
  serviceAccountToken(namespace: string, name: string): string {
    const account = this.cluster.find('serviceaccounts', namespace, name);
    if (!account) throw apiErrors.notFound('serviceaccounts', name);
    let token = this.mountedTokens.get(account.metadata.uid);
    if (!token || !this.tokens.has(token)) {
      token = randomBytes(32).toString('base64url');
      this.tokens.set(token, { user: serviceAccountUser(namespace, name), account: { namespace, name, uid: account.metadata.uid } });
      this.mountedTokens.set(account.metadata.uid, token);
    }
    return token;
  }

  /** The user a `Authorization: Bearer ...` header names, or undefined (unknown, expired or revoked). */
  authenticate(authorization: string | undefined): User | undefined {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const entry = match ? this.tokens.get(match[1]!) : undefined;
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) return undefined;
    if (entry.account) {
      const account = this.cluster.find('serviceaccounts', entry.account.namespace, entry.account.name);
      if (account?.metadata.uid !== entry.account.uid) return undefined;
    }
    return entry.user;
  }

  /** The rules that apply to `user` in `namespace` (cluster-wide ones included), as SelfSubjectRulesReview lists them. */
  rulesFor(user: User, namespace: string | undefined): PolicyRuleObject[] {
    const rules: PolicyRuleObject[] = [];
    if (user.groups.includes('system:masters')) rules.push({ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] });
    for (const binding of this.cluster.items('clusterrolebindings')) {
      if (this.binds(binding.subjects, user, undefined)) rules.push(...this.roleRules(binding.roleRef as RoleRef, undefined));
    }
    if (namespace !== undefined) {
      for (const binding of this.cluster.items('rolebindings', namespace)) {
        if (this.binds(binding.subjects, user, namespace)) rules.push(...this.roleRules(binding.roleRef as RoleRef, namespace));
      }
    }
    return rules;
  }

  allows(user: User, request: RequestAttributes): boolean {
    if (user.groups.includes('system:masters')) return true;
    return this.rulesFor(user, request.namespace).some((rule) => ruleAllows(rule, request));
  }

  /** Throws the real 403 when the user may not do this. */
  authorize(user: User, request: RequestAttributes): void {
    if (!this.allows(user, request)) throw forbidden(user, request);
  }

  private binds(subjects: unknown, user: User, namespace: string | undefined): boolean {
    return ((subjects as Subject[] | undefined) ?? []).some((s) => subjectMatches(s, user, namespace));
  }

  private roleRules(ref: RoleRef | undefined, namespace: string | undefined): PolicyRuleObject[] {
    if (!ref) return [];
    const role = ref.kind === 'Role' ? (namespace !== undefined ? this.cluster.find('roles', namespace, ref.name) : undefined) : this.cluster.find('clusterroles', '', ref.name);
    return (role?.rules as PolicyRuleObject[] | undefined) ?? [];
  }
}

export function forbidden(user: User, request: RequestAttributes): ApiError {
  const resource = request.subresource ? `${request.resource}/${request.subresource}` : request.resource;
  const scope = request.namespace === undefined ? 'at the cluster scope' : `in the namespace "${request.namespace}"`;
  return apiErrors.forbidden(
    request.apiGroup ? `${request.resource}.${request.apiGroup}` : request.resource,
    request.name,
    `User "${user.username}" cannot ${request.verb} resource "${resource}" in API group "${request.apiGroup ?? ''}" ${scope}`,
  );
}
