import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { pino, type Logger } from 'pino';
import type { BmcAddress } from '../address.js';
import type { BmcCredentials } from '../credentials.js';
import { DEFAULT_TIMEOUTS, endpointOf, type DriverTimeouts, type OperationOptions, type PowerDriver, type PowerOffOptions, type PowerResult, type PowerState } from '../driver.js';
import { BmcAuthError, BmcProtocolError, BmcRefusedError, BmcTimeoutError, BmcUnreachableError, type BmcError } from '../errors.js';
import { KeyedMutex } from '../keyed-mutex.js';
import { Operation } from '../operation.js';

export interface IpmiDriverOptions {
  address: BmcAddress;
  credentials: BmcCredentials;
  timeouts?: Partial<DriverTimeouts>;
  logger?: Logger;
  /** Default 'ipmitool' (looked up in PATH). */
  ipmitoolPath?: string;
  /**
   * Pause between the end of one ipmitool run and the start of the next to the same BMC,
   * shared by every IpmiDriver of that host:port. Default 5000, as Ironic: small BMCs drop
   * sessions when they come faster.
   */
  minGapMs?: number;
  /** Tries in all for transient failures (busy BMC, no answer) and the first pause, doubled each time. Default 4 x 1000 ms. */
  retries?: { attempts: number; delayMs: number };
  /** The first pause between power-state reads while waiting for a change; grows x1.5 up to 10 s. Default 1000. */
  pollIntervalMs?: number;
  /** How long a soft power off may take before the hard one. Default 180000; counts within timeouts.operationMs. */
  gracefulTimeoutMs?: number;
}

/**
 * Cipher suites in the order they are tried: 17 (HMAC-SHA256, AES-128) is what current
 * BMCs default to; 3 (HMAC-SHA1, AES-128) is the one every IPMI 2.0 BMC has. Suites
 * without integrity or encryption (0, 1, 2) are never tried: falling back to them would
 * let anyone on the BMC network replay or read power commands.
 */
export const CIPHER_SUITES = [17, 3] as const;
export type CipherSuite = (typeof CIPHER_SUITES)[number];

const DEFAULTS = { minGapMs: 5_000, retries: { attempts: 4, delayMs: 1_000 }, pollIntervalMs: 1_000, maxPollIntervalMs: 10_000, gracefulTimeoutMs: 180_000 };
// Long enough for an ICMP answer from any BMC network, short enough not to matter after a
// run that already waited seconds for nothing.
const PROBE_TIMEOUT_MS = 500;
const MAX_OUTPUT_BYTES = 256 * 1024;
// IPMI 2.0 limits; ipmitool refuses longer ones, so say so before sending anything.
const MAX_PASSWORD_BYTES = 20;
const MAX_USERNAME_BYTES = 16;

// Module-level, not per driver: two drivers for one BMC (a re-read inventory, the CLI next
// to the manager in tests) must still take turns and keep the gap between their commands.
const operationsByEndpoint = new KeyedMutex();
const lastRunEndedAt = new Map<string, number>();
const workingSuites = new Map<string, CipherSuite>();

/** The cipher suite that last worked with an endpoint, if any ipmitool run to it succeeded. */
export function workingCipherSuite(endpoint: string): CipherSuite | undefined {
  return workingSuites.get(endpoint);
}

export type IpmitoolFailureKind = 'busy' | 'cipher' | 'auth' | 'unresolved' | 'no-v2' | 'no-answer' | 'refused' | 'unknown';

export interface IpmitoolFailure {
  kind: IpmitoolFailureKind;
  /** The ipmitool line that decided the kind, or its last error line. */
  detail: string;
}

/*
 * What ipmitool (1.8.19, lanplus, run with -v so that the LOG_INFO lines below appear)
 * prints on stderr, and what it means. Tried against ipmi_sim (OpenIPMI 2.0.33) where noted.
 *
 * busy (retried): an answer that says "not now". "Error in open session response message :
 *   insufficient resources for session" (RAKP status 0x01) and the completion codes 0xC0
 *   "Node busy", 0xC3 "Timeout", 0xD2 "BMC initialization in progress" after "... failed: "
 *   or "Get Auth Capabilities error: " (the list Ironic retries on).
 * cipher (next suite): "Error in open session response message : invalid authentication
 *   algorithm" (ipmi_sim asked for suite 17), the other algorithm/cipher-suite RAKP statuses,
 *   "Authentication algorithm 0x.. is not what we requested 0x..", and "Unsupported cipher
 *   suite ID : 17" from an ipmitool built without SHA-256.
 * auth (BmcAuthError, never retried: BMCs lock accounts): "> RAKP 2 HMAC is invalid" (wrong
 *   password; ipmi_sim), "RAKP 2 message indicates an error : unauthorized name" (unknown
 *   user; ipmi_sim), "RAKP 4 message has invalid integrity check value", the role RAKP
 *   statuses, "Set Session Privilege Level to ADMINISTRATOR failed", and ipmitool's own
 *   length checks.
 * unresolved (BmcUnreachableError): "Address lookup for HOST failed".
 * no-answer: "Get Auth Capabilities error" without a completion code: not one packet came
 *   back. ipmitool prints exactly this for a closed port (it ignores the ICMP port
 *   unreachable) and for a BMC that is hung (ipmi_sim under SIGSTOP), after -N seconds per
 *   try. "Unable to get Chassis Power Status" / "Unable to set Chassis Power Control to X"
 *   are the same silence after the session was set up. An RMCP presence ping then tells
 *   them apart: refused or no route -> BmcUnreachableError; a pong or silence ->
 *   BmcTimeoutError (the BMC is there but does not answer; retried).
 * refused (BmcRefusedError): any other completion code on the command, e.g. ipmi_sim's
 *   "Set Chassis Power Control to Up/On failed: Unspecified error" when its chassis
 *   control program fails.
 * Every failure ends with "Error: Unable to establish IPMI v2 / RMCP+ session" when it
 * happens during session setup, so that line alone says nothing and is not matched.
 */
const FAILURE_RULES: readonly { kind: IpmitoolFailureKind; pattern: RegExp }[] = [
  { kind: 'busy', pattern: /insufficient resources for (?:session|role)/i },
  { kind: 'busy', pattern: /(?:failed|error): (?:Node busy|Timeout|BMC initialization in progress)\s*$/ },
  {
    kind: 'cipher',
    pattern:
      /^Error in open session response message : (?:invalid (?:authentication|integrity|confidentiality) algorithm|no matching (?:authentication algorithm|integrity payload|cipher suite))/,
  },
  { kind: 'cipher', pattern: /^(?:Authentication|Integrity|Encryption) algorithm 0x[0-9a-f]+ is not what we requested/i },
  { kind: 'cipher', pattern: /^Unsupported cipher suite ID : \d+/ },
  { kind: 'auth', pattern: /RAKP 2 HMAC is invalid/ },
  { kind: 'auth', pattern: /RAKP 4 message has invalid integrity check value/ },
  { kind: 'auth', pattern: /RAKP [24] message indicates an error : / },
  { kind: 'auth', pattern: /^Error in open session response message : (?:invalid role|unauthorized role requested|invalid name length|unauthorized name)/ },
  { kind: 'auth', pattern: /^Set Session Privilege Level to \S+ failed/ },
  { kind: 'auth', pattern: /password is longer than \d+ bytes|Username is too long/ },
  { kind: 'unresolved', pattern: /^Address lookup for \S+ failed/ },
  { kind: 'no-v2', pattern: /^This BMC does not support IPMI v2 \/ RMCP\+/ },
  { kind: 'no-answer', pattern: /^Get Auth Capabilities error\s*$/ },
  { kind: 'no-answer', pattern: /Error: no response from RAKP [13] message/ },
  { kind: 'no-answer', pattern: /^Unable to (?:get Chassis Power Status|set Chassis Power Control to \S+)\s*$/ },
  { kind: 'refused', pattern: /^(?:Get Chassis Power Status|Set Chassis Power Control to \S+) failed: / },
];

// -v chatter that is not an error even when it says "failed" or "Invalid".
const VERBOSE_NOISE = /^(?:Loading IANA PEN Registry|Running Get VSO Capabilities|Invalid completion code received|Discovered IPMB address|Get HPM\.x Capabilities request failed|>> |<< |$)/;

/** Reads a failed ipmitool run's stderr. */
export function classifyIpmitoolFailure(stderr: string): IpmitoolFailure {
  const lines = stderr.split('\n').map((line) => line.trim());
  for (const rule of FAILURE_RULES) {
    const line = lines.find((l) => rule.pattern.test(l));
    if (line !== undefined) return { kind: rule.kind, detail: line };
  }
  const meaningful = lines.filter((l) => !VERBOSE_NOISE.test(l));
  return { kind: 'unknown', detail: meaningful.at(-1) ?? '(no output)' };
}

/** `chassis power status` output, exactly; anything else is a BmcProtocolError. */
export function parsePowerStatus(stdout: string, ctx: { address: string; operation: string }, redact: (text: string) => string = (text) => text): PowerState {
  const match = /^Chassis Power is (on|off)$/.exec(stdout.trim());
  if (match?.[1] === 'on' || match?.[1] === 'off') return match[1];
  throw new BmcProtocolError(`unexpected answer to "chassis power status": ${quote(redact(stdout))}`, { ...ctx, hint: 'expected "Chassis Power is on" or "Chassis Power is off"' });
}

type ControlAction = 'on' | 'off' | 'soft';
// What ipmitool prints when the BMC took the command (ipmi_chassis_power_control_vals).
const CONTROL_CONFIRMATION: Record<ControlAction, string> = { on: 'Chassis Power Control: Up/On', off: 'Chassis Power Control: Down/Off', soft: 'Chassis Power Control: Soft' };

type RunOutcome = { kind: 'exited'; exitCode: number; stdout: string; stderr: string } | { kind: 'timed-out'; afterMs: number };
type ProbeResult = 'answered' | 'refused' | 'no-route' | 'unresolved' | 'silent';

/**
 * Powers one machine through its BMC with ipmitool (lanplus). Each operation holds the
 * endpoint for itself, reads the power state first, and finishes when the BMC reports the
 * requested state, within timeouts.operationMs.
 *
 * The password reaches ipmitool only through IPMI_PASSWORD in the environment of the child
 * (-E): never in an argument list, a file, a log line or an error.
 */
export class IpmiDriver implements PowerDriver {
  readonly kind = 'ipmi' as const;
  readonly endpoint: string;
  private readonly host: string;
  private readonly port: number;
  private readonly credentials: BmcCredentials;
  private readonly timeouts: DriverTimeouts;
  private readonly log: Logger;
  private readonly ipmitoolPath: string;
  private readonly minGapMs: number;
  private readonly retries: { attempts: number; delayMs: number };
  private readonly pollIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly gracefulTimeoutMs: number;
  private readonly closing = new AbortController();

  constructor(opts: IpmiDriverOptions) {
    const { address } = opts;
    if (address.driver !== 'ipmi') throw new Error(`IpmiDriver needs an ipmi:// address, not ${address.scheme}://`);
    this.endpoint = endpointOf(address);
    this.host = address.host;
    this.port = address.port;
    this.credentials = opts.credentials;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.log = (opts.logger ?? pino({ enabled: false })).child({ component: 'ipmi', endpoint: this.endpoint });
    this.ipmitoolPath = opts.ipmitoolPath ?? 'ipmitool';
    this.minGapMs = opts.minGapMs ?? DEFAULTS.minGapMs;
    this.retries = { attempts: Math.max(1, opts.retries?.attempts ?? DEFAULTS.retries.attempts), delayMs: opts.retries?.delayMs ?? DEFAULTS.retries.delayMs };
    this.pollIntervalMs = opts.pollIntervalMs ?? DEFAULTS.pollIntervalMs;
    this.maxPollIntervalMs = Math.max(this.pollIntervalMs, DEFAULTS.maxPollIntervalMs);
    this.gracefulTimeoutMs = opts.gracefulTimeoutMs ?? DEFAULTS.gracefulTimeoutMs;
  }

  /** The cipher suite that works with this BMC, once a command has succeeded. */
  get cipherSuite(): CipherSuite | undefined {
    return workingSuites.get(this.endpoint);
  }

  status(opts?: OperationOptions): Promise<PowerState> {
    return this.run('reading the power state', opts, (op) => this.readPower(op));
  }

  powerOn(opts?: OperationOptions): Promise<PowerResult> {
    return this.run('power on', opts, async (op) => {
      if ((await this.readPower(op)) === 'on') return this.result(op, 'on', true, 'none');
      await this.control(op, 'on');
      await this.waitFor(op, 'on');
      return this.result(op, 'on', false, 'chassis power on');
    });
  }

  powerOff(opts?: PowerOffOptions & OperationOptions): Promise<PowerResult> {
    return this.run('power off', opts, async (op) => {
      if ((await this.readPower(op)) === 'off') return this.result(op, 'off', true, 'none');
      if (opts?.force !== true) {
        const gracefulEnd = Date.now() + (opts?.gracefulTimeoutMs ?? this.gracefulTimeoutMs);
        await this.control(op, 'soft');
        if (await this.waitFor(op, 'off', gracefulEnd)) return this.result(op, 'off', false, 'chassis power soft');
        this.log.info({ gracefulMs: op.elapsedMs }, 'the soft power off did not finish in time; forcing the power off');
      }
      await this.control(op, 'off');
      await this.waitFor(op, 'off');
      return this.result(op, 'off', false, opts?.force === true ? 'chassis power off' : 'chassis power soft, chassis power off');
    });
  }

  /** Aborts the operation in flight (killing its ipmitool). IPMI keeps no session between commands. */
  close(): Promise<void> {
    this.closing.abort();
    return Promise.resolve();
  }

  private async run<T>(operation: string, opts: OperationOptions | undefined, fn: (op: IpmiOperation) => Promise<T>): Promise<T> {
    if (this.closing.signal.aborted) throw new Error(`the IPMI driver for ${this.endpoint} is closed`);
    const waiting = AbortSignal.any(opts?.signal === undefined ? [this.closing.signal] : [this.closing.signal, opts.signal]);
    const queued = operationsByEndpoint.run(this.endpoint, async () => {
      const op = new IpmiOperation({ operation, endpoint: this.endpoint, timeoutMs: this.timeouts.operationMs, signal: opts?.signal, closing: this.closing.signal });
      try {
        op.check();
        return await fn(op);
      } catch (err) {
        throw op.translate(err);
      } finally {
        op.dispose();
      }
    });
    // Another operation on this BMC may hold it for minutes (a graceful shutdown); a caller
    // that gives up meanwhile gets its answer now, and its turn then ends at once.
    return raceAbort(queued, waiting, () => {
      const reason: unknown = opts?.signal?.aborted === true ? opts.signal.reason : undefined;
      return reason instanceof Error ? reason : new DOMException(`${operation} on ${this.endpoint} was aborted while waiting for another operation on this BMC`, 'AbortError');
    });
  }

  private async readPower(op: IpmiOperation): Promise<PowerState> {
    const stdout = await this.command(op, ['chassis', 'power', 'status']);
    const state = parsePowerStatus(stdout, { address: this.endpoint, operation: op.operation }, (text) => this.redact(text));
    op.lastState = state;
    return state;
  }

  private async control(op: IpmiOperation, action: ControlAction): Promise<void> {
    const stdout = await this.command(op, ['chassis', 'power', action]);
    if (stdout.trim() !== CONTROL_CONFIRMATION[action]) {
      throw new BmcProtocolError(`unexpected answer to "chassis power ${action}": ${quote(this.redact(stdout))}`, { address: this.endpoint, operation: op.operation, hint: `expected "${CONTROL_CONFIRMATION[action]}"` });
    }
    this.log.info({ operation: op.operation, command: `chassis power ${action}` }, 'power command accepted');
  }

  /**
   * Polls the power state with backoff until it is `target` (true) or `until` passes
   * (false). Without `until`, the operation deadline ends it with a timeout.
   */
  private async waitFor(op: IpmiOperation, target: PowerState, until = Infinity): Promise<boolean> {
    op.phase = `waiting for the BMC to report ${target}`;
    let delay = this.pollIntervalMs;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return false;
      await op.sleep(Math.min(delay, left));
      delay = Math.min(delay * 1.5, this.maxPollIntervalMs);
      if ((await this.readPower(op)) === target) return true;
    }
  }

  /**
   * One ipmitool command, with the cipher-suite fallback and the retries; the stdout of
   * the run that succeeded.
   */
  private async command(op: IpmiOperation, command: readonly string[]): Promise<string> {
    this.checkCredentialLimits(op);
    const known = workingSuites.get(this.endpoint);
    const suites: CipherSuite[] = known === undefined ? [...CIPHER_SUITES] : [known, ...CIPHER_SUITES.filter((s) => s !== known)];
    const name = command.join(' ');
    let suiteIndex = 0;
    let attempt = 0;
    for (;;) {
      const suite = suites[suiteIndex] ?? CIPHER_SUITES[0];
      attempt++;
      const outcome = await this.runIpmitool(op, command, suite);
      if (outcome.kind === 'exited' && outcome.exitCode === 0) {
        if (known !== suite) this.log.info({ cipherSuite: suite }, 'using IPMI cipher suite');
        workingSuites.set(this.endpoint, suite);
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

  private async runIpmitool(op: IpmiOperation, command: readonly string[], suite: CipherSuite): Promise<RunOutcome> {
    await this.waitForGap(op);
    op.check();
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
      lastRunEndedAt.set(this.endpoint, Date.now());
    }
  }

  private attemptTimeoutMs(op: IpmiOperation): number {
    return Math.max(1, Math.min(this.timeouts.requestMs, op.remainingMs));
  }

  private async waitForGap(op: IpmiOperation): Promise<void> {
    const last = lastRunEndedAt.get(this.endpoint);
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
    const ctx = { address: this.endpoint, operation: op.operation, ...(exitCode === undefined ? {} : { status: exitCode }) };
    const said = `ipmitool said ${quote(this.redact(failure.detail))}`;
    switch (failure.kind) {
      case 'busy':
        return new BmcRefusedError(`the BMC is busy (${said})`, { ...ctx, transient: true, hint: 'the BMC may have too many open sessions; it usually recovers by itself' });
      case 'auth':
        return /privilege|role/i.test(failure.detail)
          ? new BmcAuthError(`the BMC refused the ADMINISTRATOR privilege (${said})`, { ...ctx, hint: "give the BMC user the ADMINISTRATOR privilege, on the user and on the LAN channel's limit" })
          : new BmcAuthError(`the BMC refused the login (${said})`, ctx);
      case 'unresolved':
        return new BmcUnreachableError(`cannot resolve ${this.host} (${said})`, ctx);
      case 'no-v2':
        return new BmcProtocolError(`the BMC does not speak IPMI 2.0 / RMCP+ (${said})`, { ...ctx, hint: 'enable IPMI 2.0 (lanplus) on the BMC; IPMI 1.5 is not used' });
      case 'refused':
        return new BmcRefusedError(`the BMC refused "${command}" (${said})`, ctx);
      case 'no-answer':
        return this.silenceError(op, outcome.kind === 'timed-out' ? failure.detail : `no answer (${said})`, ctx);
      case 'cipher':
      case 'unknown':
        return new BmcProtocolError(`ipmitool failed on "${command}" with exit code ${exitCode ?? 'none'} (${said})`, ctx);
    }
  }

  /** ipmitool got nothing back; a presence ping says whether anything is there at all. */
  private async silenceError(op: IpmiOperation, what: string, ctx: { address: string; operation: string; status?: number }): Promise<BmcError> {
    const probe = await rmcpPresencePing(this.host, this.port, Math.min(PROBE_TIMEOUT_MS, op.remainingMs), op.signal);
    op.check();
    switch (probe) {
      case 'refused':
        return new BmcUnreachableError(`${what}; UDP port ${this.port} is closed (ICMP port unreachable): no BMC listens there`, ctx);
      case 'no-route':
        return new BmcUnreachableError(`${what}; there is no route to ${this.host}`, ctx);
      case 'unresolved':
        return new BmcUnreachableError(`${what}; cannot resolve ${this.host}`, ctx);
      case 'answered':
        return new BmcTimeoutError(`${what}; the BMC answers an RMCP ping, so its IPMI service is busy or hung`, { ...ctx, hint: 'if this lasts, reset the BMC (ipmitool mc reset cold from a working host, or its web UI)' });
      case 'silent':
        return new BmcTimeoutError(`${what}; not even an RMCP ping is answered`, {
          ...ctx,
          hint: `the BMC is hung or unpowered, or packets to UDP port ${this.port} are dropped; check the address and the BMC network`,
        });
    }
  }

  // ipmitool does not echo the password, but the text it prints ends up in errors and logs:
  // a password that turns up there anyway (a BMC message that quotes it) is cut out.
  private redact(text: string): string {
    return text.split(this.credentials.reveal()).join('[redacted]');
  }

  private result(op: IpmiOperation, state: PowerState, alreadyInState: boolean, method: string): PowerResult {
    this.log.info({ operation: op.operation, state, alreadyInState, method, ms: op.elapsedMs }, 'power operation done');
    return { state, alreadyInState, method, durationMs: op.elapsedMs };
  }
}

interface ExecError extends Error {
  code?: string | number | null | undefined;
  signal?: NodeJS.Signals | null | undefined;
}

/**
 * An IPMI call: the shared operation deadline, plus what the call was doing and what the
 * BMC last said, for the timeout message.
 */
class IpmiOperation extends Operation {
  phase: string | undefined;
  lastState: PowerState | undefined;
  lastFailure: string | undefined;

  protected override deadlineError(err: unknown): unknown {
    // A silence already diagnosed says more than the deadline that followed it.
    if (err instanceof BmcTimeoutError) return err;
    const doing = this.phase === undefined ? '' : ` while ${this.phase}${this.lastState === undefined ? '' : ` (it last reported ${this.lastState})`}`;
    const last = this.lastFailure === undefined ? '' : `; last failure: ${this.lastFailure}`;
    // No cause: an ipmitool failure carries its argv and environment.
    return new BmcTimeoutError(`did not finish within ${this.timeoutMs} ms${doing}${last}`, {
      address: this.endpoint,
      operation: this.operation,
      hint: 'the BMC may be slow or stuck; raise the operation timeout if it is only slow',
    });
  }
}

async function raceAbort<T>(work: Promise<T>, signal: AbortSignal, reason: () => Error): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    throw reason();
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(reason());
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    work.catch(() => undefined);
    aborted.catch(() => undefined);
  }
}

// RMCP (version 6, no ACK, class ASF) carrying an ASF Presence Ping (IANA 4542, type 0x80):
// the packet ipmitool's "lan" interface sends first, answered by the BMC's network stack.
const PRESENCE_PING = Buffer.from([0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x00, 0x00, 0x00]);

/**
 * Sends one presence ping from a connected UDP socket, which (unlike ipmitool's) reports
 * the ICMP errors that tell "nothing listens" from "nothing answers".
 */
function rmcpPresencePing(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      try {
        socket.close();
      } catch {
        // already closed
      }
      resolve(result);
    };
    const onAbort = (): void => finish('silent');
    const timer = setTimeout(() => finish('silent'), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('message', () => finish('answered'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      if (code === 'ECONNREFUSED') finish('refused');
      else if (['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL'].includes(code)) finish('no-route');
      else if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME'].includes(code)) finish('unresolved');
      else finish('silent');
    });
    socket.connect(port, host, () => {
      socket.send(PRESENCE_PING, (err) => {
        if (err) socket.emit('error', err);
      });
    });
  });
}

function quote(text: string): string {
  const oneLine = text.trim().replace(/\s*\n\s*/g, ' | ');
  return JSON.stringify(oneLine.length > 200 ? `${oneLine.slice(0, 200)}...` : oneLine);
}
