/**
 * The `scale` subresource of Deployments and ReplicaSets (`autoscaling/v1` Scale), which
 * `kubectl scale` reads and writes: `spec.replicas` of the object, its `status.replicas` and its
 * selector as a string.
 */
import type { Registry } from './registry.js';
import { selectorString, type LabelSelectorObject } from './selectors.js';
import { apiErrors } from './status.js';
import { invalidValue, type ResourceDefinition } from './strategy.js';
import type { StoredObject } from './types.js';

export function scaleOf(object: StoredObject): unknown {
  const spec = (object.spec ?? {}) as { replicas?: number; selector?: LabelSelectorObject };
  const status = (object.status ?? {}) as { replicas?: number };
  const { name, namespace, uid, resourceVersion, creationTimestamp } = object.metadata;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name, namespace, uid, resourceVersion, creationTimestamp },
    spec: { replicas: spec.replicas ?? 0 },
    status: { replicas: status.replicas ?? 0, selector: selectorString(spec.selector ?? {}) },
  };
}

export function readScale(registry: Registry, definition: ResourceDefinition, namespace: string, name: string): unknown {
  return scaleOf(registry.get(definition.name, namespace, name));
}

/** Sets `spec.replicas` from a Scale body (optimistic concurrency on its resourceVersion). */
export function writeScale(registry: Registry, definition: ResourceDefinition, namespace: string, name: string, body: unknown): unknown {
  const scale = (body ?? {}) as { metadata?: { resourceVersion?: string }; spec?: { replicas?: unknown } };
  const replicas = scale.spec?.replicas ?? 0;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw apiErrors.invalid('Scale.autoscaling', name, [invalidValue('spec.replicas', replicas, 'must be greater than or equal to 0')]);
  }
  const current = registry.get(definition.name, namespace, name);
  const expected = scale.metadata?.resourceVersion;
  if (expected && expected !== current.metadata.resourceVersion) {
    throw apiErrors.conflict(`${definition.name}.${definition.group}`, name, 'the object has been modified; please apply your changes to the latest version and try again');
  }
  return scaleOf(registry.patch(definition.name, namespace, name, 'merge', { spec: { replicas } }));
}
