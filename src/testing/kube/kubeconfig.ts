/**
 * Kubeconfig files for the emulated cluster, in the YAML kubectl and client-node read. The CA is
 * embedded (`certificate-authority-data`) so the file works wherever it is copied.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface KubeconfigSpec {
  server: string;
  caPem: string;
  token: string;
  /** Names of the cluster, user and context (default `flame-emulator`). */
  name?: string;
  user?: string;
  namespace?: string;
}

function quoted(value: string): string {
  return JSON.stringify(value);
}

export function renderKubeconfig(spec: KubeconfigSpec): string {
  const name = spec.name ?? 'flame-emulator';
  const user = spec.user ?? `${name}-admin`;
  const ca = Buffer.from(spec.caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${quoted(name)}`,
    '  cluster:',
    `    server: ${quoted(spec.server)}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    `- name: ${quoted(user)}`,
    '  user:',
    `    token: ${quoted(spec.token)}`,
    'contexts:',
    `- name: ${quoted(name)}`,
    '  context:',
    `    cluster: ${quoted(name)}`,
    `    user: ${quoted(user)}`,
    `    namespace: ${quoted(spec.namespace ?? 'default')}`,
    `current-context: ${quoted(name)}`,
    'preferences: {}',
    '',
  ].join('\n');
}

/** Writes the kubeconfig (mode 0600: it holds a token), creating the folder if needed. */
export function writeKubeconfig(path: string, spec: KubeconfigSpec): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, renderKubeconfig(spec), { mode: 0o600 });
}
