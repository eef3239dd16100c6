import { pino, type Logger } from 'pino';

/**
 * The process logger: JSON lines on stderr (stdout stays free for a command's own output,
 * such as `bamel sim`'s power events). Credentials never reach it: BmcCredentials redacts
 * itself, and the paths below are censored in case a raw object slips through.
 */
export function createLogger(component: string, level = process.env.BAMEL_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name: 'bamel',
      level,
      base: { component },
      redact: { paths: ['password', '*.password', 'credentials.password', 'headers.authorization', 'headers["x-auth-token"]'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
