/**
 * Kinds that are asked, not stored (kube-apiserver's "virtual" resources): the access and rules
 * reviews behind `kubectl auth can-i` and `auth can-i --list`, and the self review behind
 * `kubectl auth whoami`. The API server answers them in actions.ts.
 */
import type { ResourceDefinition } from '../strategy.js';

function review(group: string, name: string, kind: string): ResourceDefinition {
  return {
    group,
    version: 'v1',
    name,
    singularName: kind.toLowerCase(),
    kind,
    namespaced: false,
    shortNames: [],
    verbs: ['create'],
    subresources: {},
    fields: {},
    virtual: true,
  };
}

export const SELF_SUBJECT_ACCESS_REVIEWS = review('authorization.k8s.io', 'selfsubjectaccessreviews', 'SelfSubjectAccessReview');
export const SELF_SUBJECT_RULES_REVIEWS = review('authorization.k8s.io', 'selfsubjectrulesreviews', 'SelfSubjectRulesReview');
export const SELF_SUBJECT_REVIEWS = review('authentication.k8s.io', 'selfsubjectreviews', 'SelfSubjectReview');
