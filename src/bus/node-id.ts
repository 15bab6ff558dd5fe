import { randomBytes } from 'node:crypto';
import os from 'node:os';

/**
 * A new id for one bus (one node): readable in logs and `CLIENT LIST` (host and pid), and unique
 * even for two servers in one process (the random part).
 */
export function newNodeId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 40) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}
