/**
 * The ipmi_sim process of one simulated BMC: its files (the LAN config holds the password,
 * so everything is private to the user), starting it until it answers a session, freezing
 * it (the hang fault) and killing it with the hook children it may have running. The
 * simulator restarts it for some faults; the power state is not in it, so nothing is lost.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';

export interface IpmiSimProcessOptions {
  machine: string;
  host: string;
  port: number;
  username: string;
  workDir: string;
  /** Default 'ipmi_sim'. */
  ipmiSimPath?: string | undefined;
  /** Default 'ipmitool'. */
  ipmitoolPath?: string | undefined;
  /** Default 10000. */
  startTimeoutMs?: number | undefined;
  log: Logger;
  /** Whether the simulator is being stopped: ipmi_sim exiting is then no news. */
  stopping: () => boolean;
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const MAX_STDERR_CHARS = 8_192;

// ipmi_sim runs in its own process group (so that stop() takes its hook children too); if
// the test or `bamel sim` dies without stop(), these are killed on the way out.
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const group of liveGroups) killGroup(group, 'SIGKILL');
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export class IpmiSimProcess {
  private readonly opts: IpmiSimProcessOptions;
  private readonly log: Logger;
  private readonly files: string[] = [];
  private child: ChildProcess | undefined;
  private childExited: Promise<void> = Promise.resolve();
  private childStderr = '';
  private runningPassword: string | undefined;
  private frozen = false;

  constructor(opts: IpmiSimProcessOptions) {
    this.opts = opts;
    this.log = opts.log;
  }

  /** The ipmi_sim process, while one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The password ipmi_sim runs with, while it runs. */
  get password(): string | undefined {
    return this.runningPassword;
  }

  private get stateDir(): string {
    return join(this.opts.workDir, 'state');
  }

  private get configPath(): string {
    return join(this.opts.workDir, 'lan.conf');
  }

  private get hookPath(): string {
    return join(this.opts.workDir, 'chassis-control.sh');
  }

  private get emuPath(): string {
    return join(this.opts.workDir, 'bmc.emu');
  }

  /** The files that stay the same across restarts: the chassis control program, the emulated BMC, the state directory. */
  async writeStaticFiles(hookScript: string): Promise<void> {
    await this.writePrivate(this.hookPath, hookScript, 0o700);
    // One BMC at IPMB 0x20 with no sensors: the chassis commands are all the driver uses.
    await this.writePrivate(this.emuPath, ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02', 'mc_enable 0x20', ''].join('\n'), 0o600);
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    this.files.push(this.stateDir);
  }

  /** Starts ipmi_sim with this password and resolves once it answers a session. */
  async start(password: string): Promise<void> {
    await this.writePrivate(this.configPath, this.lanConfig(password), 0o600);
    // -n: no console on stdin; -p: nothing persisted (users come from the config every time).
    const args = ['-c', this.configPath, '-f', this.emuPath, '-s', this.stateDir, '-n', '-p'];
    const child = spawn(this.opts.ipmiSimPath ?? 'ipmi_sim', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
    this.child = child;
    this.frozen = false;
    this.runningPassword = password;
    this.childStderr = '';
    const collect = (chunk: Buffer): void => {
      this.childStderr = (this.childStderr + chunk.toString('utf8')).slice(-MAX_STDERR_CHARS);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let exited = false;
    let exitDescription = '';
    this.childExited = new Promise<void>((resolve) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        exited = true;
        exitDescription = `could not be started: ${err.code ?? err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exited = true;
        exitDescription = signal === null ? `exited with code ${String(code)}` : `was killed by ${signal}`;
        if (child.pid !== undefined) liveGroups.delete(child.pid);
        if (this.child === child && !this.opts.stopping()) this.log.warn({ code, signal, stderr: this.childStderr.trim() }, 'ipmi_sim exited');
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
    if (child.pid !== undefined) trackGroup(child.pid);

    const { machine, host, port } = this.opts;
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    const probing = new AbortController();
    void this.childExited.then(() => probing.abort());
    for (;;) {
      if (!exited && (await this.answers(password, probing.signal))) break;
      if (exited) throw new Error(`ipmi_sim for ${machine} (${host}:${port}) ${exitDescription}: ${this.childStderr.trim() || '(no output)'}`);
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`ipmi_sim for ${machine} (${host}:${port}) did not answer within ${this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms: ${this.childStderr.trim() || '(no output)'}`);
      }
      await sleep(50);
    }
    this.log.info({ pid: child.pid }, 'ipmi_sim answers');
  }

  /** The hang fault: SIGSTOP (or SIGCONT), once the kernel shows it done. */
  async freeze(frozen: boolean): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    if (frozen && !this.frozen) {
      process.kill(pid, 'SIGSTOP');
      this.frozen = true;
      await untilStopped(pid, true);
    } else if (!frozen && this.frozen) {
      process.kill(pid, 'SIGCONT');
      this.frozen = false;
      await untilStopped(pid, false);
    }
  }

  /** Kills ipmi_sim and the hook children it has running. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (child.pid !== undefined) {
      // SIGKILL works on a stopped process too, and the group takes a hook still running.
      killGroup(child.pid, 'SIGKILL');
    }
    await this.childExited;
    this.child = undefined;
    this.frozen = false;
    this.runningPassword = undefined;
  }

  /** Removes the files written here, and the work directory if nothing else is left in it. */
  async removeFiles(): Promise<void> {
    await Promise.all(this.files.map((f) => rm(f, { recursive: true, force: true })));
    // Only if nothing else lives there: the directory may be the caller's.
    await rmdir(this.opts.workDir).catch(() => undefined);
  }

  private lanConfig(password: string): string {
    const guid = randomBytes(16).toString('hex');
    return [
      `name "${this.opts.machine.replace(/[^A-Za-z0-9_.-]/g, '_')}"`,
      'set_working_mc 0x20',
      '  startlan 1',
      `    addr ${this.opts.host} ${this.opts.port}`,
      '    priv_limit admin',
      // Only the RMCP+ (IPMI 2.0) path is exercised; 1.5 auth types stay for ipmitool -I lan.
      '    allowed_auths_callback md5',
      '    allowed_auths_user md5',
      '    allowed_auths_operator md5',
      '    allowed_auths_admin md5',
      `    guid ${guid}`,
      '  endlan',
      `  chassis_control "${this.hookPath} 0x20"`,
      `  user 2 true "${this.opts.username}" "${password}" admin 10 md5`,
      '',
    ].join('\n');
  }

  private async writePrivate(path: string, content: string, mode: number): Promise<void> {
    await writeFile(path, content, { mode });
    // writeFile's mode only applies to a new file and goes through the umask.
    await chmod(path, mode);
    if (!this.files.includes(path)) this.files.push(path);
  }

  /**
   * One quick session with the password ipmi_sim runs with. Get Device ID (`mc info`),
   * not a power read: the hook sees only the requests of the code under test.
   */
  private answers(password: string, signal: AbortSignal): Promise<boolean> {
    const { host, port, username } = this.opts;
    const args = ['-I', 'lanplus', '-H', host, '-p', String(port), '-U', username, '-L', 'ADMINISTRATOR', '-R', '1', '-N', '1', '-C', '3', '-E', 'mc', 'info'];
    return new Promise((resolve) => {
      execFile(
        this.opts.ipmitoolPath ?? 'ipmitool',
        args,
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', IPMI_PASSWORD: password }, timeout: 3_000, killSignal: 'SIGKILL', signal },
        (err) => resolve(err === null),
      );
    });
  }
}

/**
 * Waits until the kernel shows the process stopped (or running again): SIGSTOP lands when
 * the process is next scheduled, and a request sent before that would still be answered.
 */
async function untilStopped(pid: number, stopped: boolean): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (Date.now() < deadline) {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (text === undefined) return;
    const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
    if ((state === 'T') === stopped) return;
    await sleep(5);
  }
}
