import { readFileSync } from 'node:fs';

function readVersion(): string {
  // dist/src/version.js and src/version.ts both sit two folders below package.json.
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'chatvault' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

/** The chatvault version from package.json. */
export const VERSION = readVersion();
