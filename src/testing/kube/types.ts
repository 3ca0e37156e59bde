/**
 * The shapes the emulated cluster stores and serves. Pods use the official model types from
 * `kubernetes-models`, so the emulator and its users agree with the real API on field names.
 */
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IContainerStatus } from 'kubernetes-models/v1/ContainerStatus';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
import type { IOwnerReference } from '@kubernetes-models/apimachinery/apis/meta/v1/OwnerReference';

export type { IPod as Pod, IContainer as Container, IContainerStatus as ContainerStatus, IEnvVar as EnvVar };
export type { IObjectMeta as ObjectMeta, IOwnerReference as OwnerReference };

/** Any stored object: every kind has metadata; the rest depends on the kind. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: IObjectMeta;
  [field: string]: unknown;
}

/** A stored object once the server has filled its metadata in. */
export interface StoredObject extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: IObjectMeta & { name: string; uid: string; resourceVersion: string; creationTimestamp: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** The verbs RBAC rules speak of, as the real authorizer names them. */
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export function isPod(object: KubeObject): object is IPod & StoredObject {
  return object.kind === 'Pod';
}
