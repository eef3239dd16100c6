import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * The process logger: JSON lines on stderr (stdout stays free for a command's own output,
 * such as `bamel sim`'s power events). Credentials never reach it: BmcCredentials redacts
 * itself, and the paths below are censored in case a raw object slips through.
 *
 * Lines are written asynchronously (a buffer in front of fd 2); a process that dies of an
 * unhandled rejection or exception first writes what is buffered, synchronously, then its
 * fatal line (installFatalHandlers), so the last lines before a crash are never lost.
 */

function options(component: string, level: string): LoggerOptions {
  return {
    name: 'bamel',
    level,
    base: { component },
    redact: { paths: ['password', '*.password', 'credentials.password', 'headers.authorization', 'headers["x-auth-token"]'], censor: '[redacted]' },
  };
}

/** A pino destination that can be flushed synchronously (SonicBoom). */
type FlushableDestination = DestinationStream & { flushSync(): void };

const destinations = new Set<FlushableDestination>();

export function createLogger(component: string, level = process.env.BAMEL_LOG_LEVEL ?? 'info'): Logger {
  const destination = pino.destination({ fd: 2, sync: false });
  destinations.add(destination);
  return pino(options(component, level), destination);
}

/** Writes every logger's buffered lines now, synchronously; a destination that cannot is skipped. */
export function flushLogsSync(): void {
  for (const d of destinations) {
    try {
      d.flushSync();
    } catch {
      // Destroyed, or stderr refused the write: nothing more can be done for it.
    }
  }
}

/** Exit code of a process ended by an unhandled rejection or an uncaught exception. */
export const EXIT_FATAL = 1;

let installed = false;

/**
 * An unhandled rejection or uncaught exception ends the process: the buffered log lines
 * are flushed synchronously, the error is logged at level fatal (synchronously, with its
 * stack), and the process exits with EXIT_FATAL. Nothing else runs after it: a process in
 * an unknown state must not go on talking to BMCs. Installed once, by the CLI's entry point.
 */
export function installFatalHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
  if (installed) return;
  installed = true;
  const fatal =
    (what: string) =>
    (err: unknown): void => {
      try {
        flushLogsSync();
        const logger = pino(options('process', 'info'), pino.destination({ fd: 2, sync: true }));
        logger.fatal({ err }, `${what}: exiting with code ${EXIT_FATAL}`);
      } catch {
        process.stderr.write(`bamel: ${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      } finally {
        exit(EXIT_FATAL);
      }
    };
  process.on('unhandledRejection', fatal('unhandled promise rejection'));
  process.on('uncaughtException', fatal('uncaught exception'));
}
