/**
 * The way into the simulator from ipmi_sim. ipmi_sim keeps no power state of its own: for
 * every power read and change it runs a chassis control program. That program (a shell
 * script written here) posts the request to a small HTTP server of the simulator, which
 * answers from the machine's chassis. The token keeps a script of a stopped simulator from
 * changing one that reuses the port.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One call of the chassis-control hook, as ipmi_sim made it ("get power", "set power 1", ...). */
export interface ChassisRequest {
  op: 'get' | 'set';
  args: string[];
  /** Date.now() when the simulator received it. */
  at: number;
}

/** The hook's answer: 200 and the lines ipmi_sim reads, or an error status and its text. */
export interface HookReply {
  status: number;
  text: string;
}

const HOOK_TOKEN_HEADER = 'x-bamel-sim-token';

/** The HTTP server on 127.0.0.1 that the chassis control program of one ipmi_sim calls. */
export class ChassisHookServer {
  private readonly token = randomBytes(16).toString('hex');
  private server: Server | undefined;
  private port = 0;

  constructor(private readonly handle: (request: ChassisRequest) => HookReply) {}

  async listen(): Promise<void> {
    const server = createServer((req, res) => this.receive(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
  }

  /** The chassis control program: a shell script that forwards its arguments to this server. */
  script(): string {
    // ipmi_sim popen()s this for every power read and change and waits for it, with the
    // whole BMC blocked meanwhile: a shell and curl start in milliseconds, node would not.
    return [
      '#!/bin/sh',
      '# Written by IpmiSimBmc: ipmi_sim runs "<this> <tag> get power" or "<this> <tag> set power 1";',
      '# the arguments after the tag go, one per line, to the simulator that owns the power state.',
      'shift',
      `printf '%s\\n' "$@" | curl --silent --show-error --fail-with-body --noproxy '*' --max-time 10 \\`,
      `  -H '${HOOK_TOKEN_HEADER}: ${this.token}' --data-binary @- 'http://127.0.0.1:${this.port}/chassis'`,
      '',
    ].join('\n');
  }

  async close(): Promise<void> {
    if (this.server === undefined) return;
    const server = this.server;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    };
    if (req.method !== 'POST' || req.url !== '/chassis' || req.headers[HOOK_TOKEN_HEADER] !== this.token) {
      reply(403, 'not this simulator\n');
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 4096) req.destroy();
    });
    req.on('end', () => {
      const [op, ...args] = body.split('\n').filter((line) => line !== '');
      if (op !== 'get' && op !== 'set') {
        reply(400, `unknown operation: ${op ?? '(none)'}\n`);
        return;
      }
      const { status, text } = this.handle({ op, args, at: Date.now() });
      reply(status, text);
    });
  }
}
