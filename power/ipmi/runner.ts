/**
 * Runs ipmitool for the IPMI driver: the argument list, the child's environment (the one
 * place the password goes), the pacing between runs to one BMC, the cipher-suite fallback
 * and the retries of transient failures. The driver above it only says which command it
 * wants and what the answer must be; what the process has learnt about each BMC endpoint
 * lives in an IpmiEndpoints that the driver hands in.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';
import type { BmcCredentials } from '../credentials.js';
import { BmcAuthError, BmcProtocolError, BmcRefusedError, BmcTimeoutError, type BmcError } from '../errors.js';
import { KeyedMutex } from '../keyed-mutex.js';
import { answeredFailureError, classifyIpmitoolFailure, quote, saidBy, silenceError, type FailureContext, type IpmitoolFailure } from './classify.js';
import type { IpmiOperation } from './operation.js';
import { rmcpPresencePing } from './ping.js';

/**
 * Cipher suites in the order they are tried: 17 (HMAC-SHA256, AES-128) is what current
 * BMCs default to; 3 (HMAC-SHA1, AES-128) is the one every IPMI 2.0 BMC has. Suites
 * without integrity or encryption (0, 1, 2) are never tried: falling back to them would
 * let anyone on the BMC network replay or read power commands.
 */
export const CIPHER_SUITES = [17, 3] as const;
export type CipherSuite = (typeof CIPHER_SUITES)[number];

// Long enough for an ICMP answer from any BMC network, short enough not to matter after a
// run that already waited seconds for nothing.
const PROBE_TIMEOUT_MS = 500;
const MAX_OUTPUT_BYTES = 256 * 1024;
// IPMI 2.0 limits; ipmitool refuses longer ones, so say so before sending anything.
const MAX_PASSWORD_BYTES = 20;
const MAX_USERNAME_BYTES = 16;

/**
 * What is known about each BMC endpoint, whichever driver talks to it: whose turn it is,
 * when the last ipmitool run to it ended, and which cipher suite it accepted.
 */
export class IpmiEndpoints {
  private readonly turns = new KeyedMutex();
  private readonly lastRunEndedAt = new Map<string, number>();
  private readonly workingSuites = new Map<string, CipherSuite>();

  /** Runs `fn` once no other operation holds the endpoint, in arrival order. */
  exclusive<T>(endpoint: string, fn: () => Promise<T>): Promise<T> {
    return this.turns.run(endpoint, fn);
  }

  /** The cipher suite that last worked with an endpoint, if any ipmitool run to it succeeded. */
  cipherSuite(endpoint: string): CipherSuite | undefined {
    return this.workingSuites.get(endpoint);
  }

  suiteWorked(endpoint: string, suite: CipherSuite): void {
    this.workingSuites.set(endpoint, suite);
  }

  /** When the last ipmitool run to the endpoint ended (Date.now()), if one ran. */
  lastRunEnded(endpoint: string): number | undefined {
    return this.lastRunEndedAt.get(endpoint);
  }

  runEnded(endpoint: string, at: number): void {
    this.lastRunEndedAt.set(endpoint, at);
  }
}

export interface IpmitoolRunnerOptions {
  /** ipmi://host:port, as in errors and logs. */
  endpoint: string;
  host: string;
  port: number;
  credentials: BmcCredentials;
  ipmitoolPath: string;
  /** Pause between the end of one run and the start of the next to the endpoint. */
  minGapMs: number;
  /** Tries in all for transient failures, and the first pause, doubled each time. */
  retries: { attempts: number; delayMs: number };
  /** The longest one ipmitool run may take. */
  requestMs: number;
  /** Shared with every runner of the process, see IpmiEndpoints. */
  endpoints: IpmiEndpoints;
  log: Logger;
}

type RunOutcome = { kind: 'exited'; exitCode: number; stdout: string; stderr: string } | { kind: 'timed-out'; afterMs: number };

interface ExecError extends Error {
  code?: string | number | null | undefined;
  signal?: NodeJS.Signals | null | undefined;
}

/**
 * The ipmitool runs of one driver. The password reaches ipmitool only through
 * IPMI_PASSWORD in the environment of the child (-E): never in an argument list, a file,
 * a log line or an error.
 */
export class IpmitoolRunner {
  private readonly endpoint: string;
  private readonly host: string;
  private readonly port: number;
  private readonly credentials: BmcCredentials;
  private readonly ipmitoolPath: string;
  private readonly minGapMs: number;
  private readonly retries: { attempts: number; delayMs: number };
  private readonly requestMs: number;
  private readonly endpoints: IpmiEndpoints;
  private readonly log: Logger;

  constructor(opts: IpmitoolRunnerOptions) {
    this.endpoint = opts.endpoint;
    this.host = opts.host;
    this.port = opts.port;
    this.credentials = opts.credentials;
    this.ipmitoolPath = opts.ipmitoolPath;
    this.minGapMs = opts.minGapMs;
    this.retries = opts.retries;
    this.requestMs = opts.requestMs;
    this.endpoints = opts.endpoints;
    this.log = opts.log;
  }

  /**
   * One ipmitool command, with the cipher-suite fallback and the retries; the stdout of
   * the run that succeeded.
   */
  async command(op: IpmiOperation, command: readonly string[], opts: { changesPower?: boolean } = {}): Promise<string> {
    this.checkCredentialLimits(op);
    const known = this.endpoints.cipherSuite(this.endpoint);
    const suites: CipherSuite[] = known === undefined ? [...CIPHER_SUITES] : [known, ...CIPHER_SUITES.filter((s) => s !== known)];
    const name = command.join(' ');
    let suiteIndex = 0;
    let attempt = 0;
    for (;;) {
      const suite = suites[suiteIndex] ?? CIPHER_SUITES[0];
      attempt++;
      const outcome = await this.runIpmitool(op, command, suite, opts.changesPower === true);
      if (outcome.kind === 'exited' && outcome.exitCode === 0) {
        if (known !== suite) this.log.info({ cipherSuite: suite }, 'using IPMI cipher suite');
        this.endpoints.suiteWorked(this.endpoint, suite);
        return outcome.stdout;
      }
      const failure: IpmitoolFailure = outcome.kind === 'timed-out' ? { kind: 'no-answer', detail: `no answer within ${outcome.afterMs} ms` } : classifyIpmitoolFailure(outcome.stderr);
      if (failure.kind === 'cipher') {
        if (suiteIndex + 1 < suites.length) {
          this.log.info({ cipherSuite: suite, next: suites[suiteIndex + 1], reason: this.redact(failure.detail) }, 'the BMC refused the cipher suite; trying the next one');
          suiteIndex++;
          attempt--;
          continue;
        }
        throw new BmcRefusedError(`the BMC accepted none of the cipher suites ${suites.join(', ')} (last: ${quote(this.redact(failure.detail))})`, {
          address: this.endpoint,
          operation: op.operation,
          hint: `enable IPMI 2.0 cipher suite ${CIPHER_SUITES.join(' or ')} on the BMC`,
        });
      }
      const error = await this.failureError(op, name, failure, outcome);
      op.lastFailure = error.message.replace(`${op.operation} on ${this.endpoint}: `, '').replace(` (${error.hint ?? ''})`, '');
      const retryable = failure.kind === 'busy' || error instanceof BmcTimeoutError;
      const delay = this.retries.delayMs * 2 ** (attempt - 1);
      if (!retryable || attempt >= this.retries.attempts || delay >= op.remainingMs) throw error;
      this.log.warn({ command: name, attempt, delayMs: delay, reason: this.redact(failure.detail) }, 'transient IPMI failure; retrying');
      await op.sleep(delay);
    }
  }

  // ipmitool does not echo the password, but the text it prints ends up in errors and logs:
  // a password that turns up there anyway (a BMC message that quotes it) is cut out.
  redact(text: string): string {
    return text.split(this.credentials.reveal()).join('[redacted]');
  }

  private async runIpmitool(op: IpmiOperation, command: readonly string[], suite: CipherSuite, changesPower: boolean): Promise<RunOutcome> {
    await this.waitForGap(op);
    // Fencing: checked right before each run that may change the power, retries included.
    if (changesPower) op.beforePowerChange();
    else op.check();
    const timeoutMs = this.attemptTimeoutMs(op);
    const attempt = new AbortController();
    const timer = setTimeout(() => attempt.abort(), timeoutMs);
    const args = [
      ...['-I', 'lanplus', '-H', this.host, '-p', String(this.port), '-U', this.credentials.username, '-L', 'ADMINISTRATOR'],
      // -R 1 -N 5 as Ironic: ipmitool gives up quickly and the retries are ours, with the gap.
      ...['-R', '1', '-N', '5', '-C', String(suite), '-E', '-v'],
      ...command,
    ];
    const started = Date.now();
    try {
      const { error, stdout, stderr } = await new Promise<{ error: ExecError | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          this.ipmitoolPath,
          args,
          { env: this.childEnv(), signal: AbortSignal.any([op.signal, attempt.signal]), killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', windowsHide: true },
          (err, out, errOut) => resolve({ error: err, stdout: out, stderr: errOut }),
        );
      });
      const ms = Date.now() - started;
      if (error === null) {
        this.log.debug({ command: command.join(' '), cipherSuite: suite, ms }, 'ipmitool ok');
        return { kind: 'exited', exitCode: 0, stdout, stderr };
      }
      if (error.name === 'AbortError' || error.code === 'ABORT_ERR') {
        op.check();
        this.log.debug({ command: command.join(' '), cipherSuite: suite, ms }, 'ipmitool killed: no answer in time');
        return { kind: 'timed-out', afterMs: timeoutMs };
      }
      if (error.code === 'ENOENT' || error.code === 'EACCES') {
        throw new Error(`${op.operation} on ${this.endpoint}: cannot run ipmitool (${this.ipmitoolPath}): ${error.code}; install it (Debian and Ubuntu: apt-get install ipmitool)`);
      }
      if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
        throw new BmcProtocolError(`ipmitool wrote more than ${MAX_OUTPUT_BYTES} bytes`, { address: this.endpoint, operation: op.operation });
      }
      const exitCode = typeof error.code === 'number' ? error.code : -1;
      this.log.debug({ command: command.join(' '), cipherSuite: suite, ms, exitCode, signal: error.signal }, 'ipmitool failed');
      return { kind: 'exited', exitCode, stdout, stderr };
    } finally {
      clearTimeout(timer);
      this.endpoints.runEnded(this.endpoint, Date.now());
    }
  }

  private attemptTimeoutMs(op: IpmiOperation): number {
    return Math.max(1, Math.min(this.requestMs, op.remainingMs));
  }

  private async waitForGap(op: IpmiOperation): Promise<void> {
    const last = this.endpoints.lastRunEnded(this.endpoint);
    if (last === undefined) return;
    const wait = last + this.minGapMs - Date.now();
    if (wait > 0) await op.sleep(wait);
  }

  // Not process.env: nothing of the manager's environment (tokens, proxies) reaches
  // ipmitool, and IPMI_PASSWORD exists only in the child's.
  private childEnv(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', IPMI_PASSWORD: this.credentials.reveal() };
  }

  private checkCredentialLimits(op: IpmiOperation): void {
    const ctx = { address: this.endpoint, operation: op.operation };
    if (Buffer.byteLength(this.credentials.reveal()) > MAX_PASSWORD_BYTES) throw new BmcAuthError(`the password is longer than ${MAX_PASSWORD_BYTES} bytes, the IPMI 2.0 limit`, ctx);
    if (Buffer.byteLength(this.credentials.username) > MAX_USERNAME_BYTES) throw new BmcAuthError(`the username is longer than ${MAX_USERNAME_BYTES} bytes, the IPMI 2.0 limit`, ctx);
  }

  private async failureError(op: IpmiOperation, command: string, failure: IpmitoolFailure, outcome: RunOutcome): Promise<BmcError> {
    const exitCode = outcome.kind === 'exited' ? outcome.exitCode : undefined;
    const ctx: FailureContext = { address: this.endpoint, operation: op.operation, ...(exitCode === undefined ? {} : { status: exitCode }) };
    const redact = (text: string): string => this.redact(text);
    const { kind, detail } = failure;
    if (kind !== 'no-answer') return answeredFailureError({ kind, detail }, command, this.host, ctx, redact);
    // ipmitool got nothing back; a presence ping says whether anything is there at all.
    const what = outcome.kind === 'timed-out' ? detail : `no answer (${saidBy(failure, redact)})`;
    const probe = await rmcpPresencePing(this.host, this.port, Math.min(PROBE_TIMEOUT_MS, op.remainingMs), op.signal);
    op.check();
    return silenceError(probe, what, { host: this.host, port: this.port }, ctx);
  }
}
