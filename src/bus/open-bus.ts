import { createHash } from 'node:crypto';
import { pino } from 'pino';
import type { Config } from '../config.js';
import type { Bus, BusLogger } from './bus.js';
import { LocalBus } from './local-bus.js';

/**
 * The namespace of a deployment's channels on a shared Redis. Every node of a deployment shares
 * one store and so one signing key, and two deployments never share a key: a digest of it
 * separates deployments without a setting to get wrong (and reveals nothing about the key).
 */
export function busNamespace(signingKey: Buffer): string {
  return createHash('sha256').update('chatvault bus namespace\0').update(signingKey).digest('hex').slice(0, 16);
}

/** Opens the bus the configuration asks for: Redis when REDIS_URL is set, else the in-process bus. */
export async function openBus(config: Config, signingKey: Buffer): Promise<Bus> {
  const log = pinoBusLogger(config.logLevel);
  if (!config.redisUrl) return new LocalBus({ log });
  // ioredis loads only when a deployment uses it.
  const { RedisBus } = await import('./redis-bus.js');
  return RedisBus.connect({ url: config.redisUrl, namespace: busNamespace(signingKey), log });
}

/** Bus warnings as log lines in the server's format; the logger is made when first needed, which is rarely. */
function pinoBusLogger(level: Config['logLevel']): BusLogger {
  let log: ReturnType<typeof pino> | undefined;
  const get = () => (log ??= pino({ level }).child({ component: 'bus' }));
  return {
    warn: (context, err) => get().warn(err ? { err } : {}, context),
    info: (context) => get().info(context),
  };
}
