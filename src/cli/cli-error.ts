import { InvalidArgumentError, type Command } from 'commander';

/** The exit codes of the data commands (`export`, `import`), as docs/cli.md lists them. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  credentials: 3,
  query: 4,
  unreachable: 5,
  disk: 6,
  interrupted: 130,
} as const;

/** A failure that ends a command with an exit code and a one-line message. */
export class CliError extends Error {
  constructor(readonly exitCode: number, message: string) {
    super(message);
  }
}

const DISK_CODES: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
  ENOENT: 'no such directory',
  SQLITE_FULL: 'no space left on device',
  SQLITE_READONLY: 'read-only database',
  SQLITE_CANTOPEN: 'cannot open the database file',
};

/** The CliError (exit 6) for a failed write, or null when the error is not about the disk. */
export function diskError(e: unknown, what: string): CliError | null {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string' || !(code in DISK_CODES)) return null;
  return new CliError(EXIT.disk, `cannot write ${what}: ${DISK_CODES[code]} (${code})`);
}

/**
 * Makes commander's own errors (unknown option, missing value, bad choice) end with exit 2
 * instead of 1, on this command only.
 */
export function usageExits(cmd: Command): Command {
  return cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));
}

/** A commander parser for a whole number in [min, max] (anything else is a usage error). */
export function wholeNumber(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** Runs a command body; a failure prints `chatvault NAME: message` and exits with its code. */
export async function runCommand(name: string, body: () => Promise<number>): Promise<void> {
  let code: number;
  try {
    code = await body();
  } catch (e) {
    const err = e instanceof CliError ? e : diskError(e, 'data') ?? new CliError(EXIT.failed, (e as Error)?.message ?? String(e));
    process.stderr.write(`chatvault ${name}: ${err.message}\n`);
    code = err.exitCode;
  }
  // Pending timers or sockets (a keep-alive agent) must not hold the exit back.
  process.exit(code);
}
