/**
 * Admission, as the real API server runs it between defaults and storage: mutating plugins edit
 * a new object (a pod's service-account volume), validating plugins refuse it with the real
 * 403 texts (a missing service account, Pod Security, quota). Each plugin is its own object.
 */
import type { ResourceDefinition, StrategyContext } from './strategy.js';
import type { KubeObject } from './types.js';

export interface AdmissionRequest {
  operation: 'CREATE';
  definition: ResourceDefinition;
  namespace: string;
  object: KubeObject;
}

export interface AdmissionPlugin {
  readonly name: string;
  /** Mutating phase: may edit `request.object`. */
  admit?(request: AdmissionRequest, ctx: StrategyContext): void;
  /** Validating phase, after the object passed validation: throws an ApiError to refuse. */
  validate?(request: AdmissionRequest, ctx: StrategyContext): void;
}
