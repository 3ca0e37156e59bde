/**
 * `ValidateSecret` of the real API server: a DNS-subdomain name, data keys that are valid config
 * keys, and the keys each built-in Secret type requires (`tls.crt` and `tls.key` for
 * `kubernetes.io/tls`...), with the real causes (`data[tls.crt]: Required value`).
 */
import type { StatusCause } from '../status.js';
import { invalidValue, nameCauses, required } from '../strategy.js';
import type { KubeObject } from '../types.js';

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const CONFIG_KEY_MESSAGE =
  "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', " +
  "regex used for validation is '[-._a-zA-Z0-9]+')";

/** Why `key` is not a valid Secret or ConfigMap key (`IsConfigMapKey`); empty when it is. */
export function configKeyProblems(key: string): string[] {
  const problems: string[] = [];
  if (key.length > 253) problems.push('must be no more than 253 characters');
  if (!CONFIG_KEY.test(key)) problems.push(CONFIG_KEY_MESSAGE);
  if (key === '.') problems.push("must not be '.'");
  else if (key === '..') problems.push("must not be '..'");
  else if (key.startsWith('..')) problems.push("must not start with '..'");
  return problems;
}

function decoded(value: unknown): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'base64') : Buffer.alloc(0);
}

export function validateSecret(secret: KubeObject): StatusCause[] {
  const causes = nameCauses(secret);
  const data = (secret.data && typeof secret.data === 'object' ? secret.data : {}) as Record<string, unknown>;
  for (const key of Object.keys(data)) {
    for (const problem of configKeyProblems(key)) causes.push(invalidValue(`data[${key}]`, key, problem));
  }
  const has = (key: string): boolean => Object.prototype.hasOwnProperty.call(data, key);
  switch (secret.type) {
    case 'kubernetes.io/service-account-token':
      if (!secret.metadata?.annotations?.['kubernetes.io/service-account.name']) {
        causes.push(required('metadata.annotations[kubernetes.io/service-account.name]'));
      }
      break;
    case 'kubernetes.io/dockercfg':
    case 'kubernetes.io/dockerconfigjson': {
      const key = secret.type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson';
      if (!has(key)) {
        causes.push(required(`data[${key}]`));
        break;
      }
      try {
        JSON.parse(decoded(data[key]).toString('utf8'));
      } catch (error) {
        causes.push(invalidValue(`data[${key}]`, '<secret contents redacted>', (error as Error).message));
      }
      break;
    }
    case 'kubernetes.io/basic-auth':
      if (!has('username') && !has('password')) causes.push(required('data[username]'), required('data[password]'));
      break;
    case 'kubernetes.io/ssh-auth':
      if (decoded(data['ssh-privatekey']).length === 0) causes.push(required('data[ssh-privatekey]'));
      break;
    case 'kubernetes.io/tls':
      if (!has('tls.crt')) causes.push(required('data[tls.crt]'));
      if (!has('tls.key')) causes.push(required('data[tls.key]'));
      break;
    default:
      break;
  }
  return causes;
}
