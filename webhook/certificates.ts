import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';

/**
 * The serving certificate from --webhook-cert-dir (tls.crt, tls.key), reloaded when it
 * changes. A Secret volume swaps its files through a symlink rename, cert-manager rewrites
 * them in place, a shell writes one file then the other: the directory is watched, changes
 * are debounced, and a pair is only taken once the key matches the certificate, so a
 * half-written pair is never served. A poll backs the watch up (watches miss events on some
 * file systems). New connections get the new certificate; open ones keep theirs.
 */

export const CERT_FILE = 'tls.crt';
export const KEY_FILE = 'tls.key';

export interface CertificatePair {
  cert: Buffer;
  key: Buffer;
  /** The certificate's serial number and expiry, for logs. */
  serial: string;
  notAfter: string;
}

export class CertificateError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CertificateError';
  }
}

/** Reads and checks the pair in dir; throws CertificateError naming the file and the fix. */
export async function loadCertificatePair(dir: string): Promise<CertificatePair> {
  const read = async (file: string): Promise<Buffer> => {
    try {
      return await readFile(join(dir, file));
    } catch (err) {
      throw new CertificateError(`--webhook-cert-dir ${dir}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); put the serving certificate in ${CERT_FILE} and its key in ${KEY_FILE}`, { cause: err });
    }
  };
  // One after the other: with both missing, the error names tls.crt every time, not
  // whichever read happened to fail first.
  const cert = await read(CERT_FILE);
  const key = await read(KEY_FILE);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new CertificateError(`${join(dir, CERT_FILE)} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  try {
    // Throws when the key is not the certificate's ("key values mismatch") or unreadable.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new CertificateError(`${join(dir, KEY_FILE)} does not fit ${CERT_FILE}: ${(err as Error).message}`, { cause: err });
  }
  return { cert, key, serial: x509.serialNumber, notAfter: x509.validTo };
}

export interface CertificateWatcherOptions {
  dir: string;
  logger: Logger;
  /** Called with each new valid pair (not with the first one, which load() returns). */
  onChange: (pair: CertificatePair) => void;
  onReload?: (result: 'ok' | 'error') => void;
  debounceMs?: number;
  pollMs?: number;
}

export class CertificateWatcher {
  private current: CertificatePair | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastError: string | undefined;

  constructor(private readonly opts: CertificateWatcherOptions) {}

  /** Loads the first pair; throws CertificateError when there is none that works. */
  async load(): Promise<CertificatePair> {
    this.current = await loadCertificatePair(this.opts.dir);
    return this.current;
  }

  start(): void {
    try {
      this.watcher = watch(this.opts.dir, () => this.schedule());
      this.watcher.on('error', (err) => this.opts.logger.warn({ err: err.message }, 'certificate directory watch failed; polling only'));
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'cannot watch the certificate directory; polling only');
    }
    this.poll = setInterval(() => this.schedule(0), this.opts.pollMs ?? 10_000);
    this.poll.unref();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    if (this.poll) clearInterval(this.poll);
  }

  /** Reloads now (and waits); for tests and for a caller that knows the files changed. */
  async reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.tryReload());
    await this.reloading;
  }

  private schedule(delay = this.opts.debounceMs ?? 100): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, delay);
  }

  private async tryReload(): Promise<void> {
    if (this.stopped) return;
    let pair: CertificatePair;
    try {
      pair = await loadCertificatePair(this.opts.dir);
    } catch (err) {
      // Often a pair caught half-written: the next change event brings the other half.
      // Said once per distinct problem, not on every poll.
      const message = (err as Error).message;
      if (message !== this.lastError) {
        this.opts.logger.warn({ err: message }, 'new serving certificate not usable yet; still serving the previous one');
        this.opts.onReload?.('error');
      }
      this.lastError = message;
      return;
    }
    this.lastError = undefined;
    if (this.current && pair.cert.equals(this.current.cert) && pair.key.equals(this.current.key)) return;
    this.current = pair;
    this.opts.onChange(pair);
    this.opts.onReload?.('ok');
    this.opts.logger.info({ serial: pair.serial, notAfter: pair.notAfter }, 'serving certificate reloaded');
  }
}
