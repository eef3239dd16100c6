import type { RunningManager } from './manager.js';

/**
 * Manager replicas kept at a count, as a Deployment keeps its pods: a replica that exits
 * (it lost its lease, it was killed) is replaced by a new one with a new identity. Tests
 * pause (SIGSTOP), resume (SIGCONT) and kill them at will.
 */
export class Replicas {
  private readonly running = new Map<string, RunningManager>();
  private serial = 0;
  private stopping = false;
  /** Identity → exit code, of every replica that exited. */
  readonly exits = new Map<string, number | null>();

  constructor(
    private readonly launch: (identity: string) => RunningManager,
    count: number,
    private readonly prefix = 'mgr',
    private readonly restartDelayMs = 300,
  ) {
    for (let i = 0; i < count; i++) this.add();
  }

  private add(): void {
    const id = `${this.prefix}-${this.serial++}`;
    const m = this.launch(id);
    this.running.set(id, m);
    void m.exited.then((code) => {
      this.exits.set(id, code);
      this.running.delete(id);
      if (!this.stopping) setTimeout(() => !this.stopping && this.add(), this.restartDelayMs);
    });
  }

  get(identity: string): RunningManager | undefined {
    return this.running.get(identity);
  }

  identities(): string[] {
    return [...this.running.keys()];
  }

  pause(identity: string): void {
    this.running.get(identity)?.child.kill('SIGSTOP');
  }

  resume(identity: string): void {
    this.running.get(identity)?.child.kill('SIGCONT');
  }

  async kill(identity: string): Promise<void> {
    await this.running.get(identity)?.kill();
  }

  /** Stops every replica (SIGTERM; resumed first if paused); none is replaced any more. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.running.values()].map(async (m) => {
        m.child.kill('SIGCONT');
        await m.stop();
      }),
    );
  }
}
