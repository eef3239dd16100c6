/**
 * The RMCP presence ping. ipmitool says the same thing ("Get Auth Capabilities error") for a
 * closed port and for a hung BMC, because its socket ignores ICMP errors; one ping from a
 * connected socket of our own tells "nothing listens" (unreachable) from "something is
 * there but does not answer" (a timeout, worth retrying).
 */
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

export type ProbeResult = 'answered' | 'refused' | 'no-route' | 'unresolved' | 'silent';

// RMCP (version 6, no ACK, class ASF) carrying an ASF Presence Ping (IANA 4542, type 0x80):
// the packet ipmitool's "lan" interface sends first, answered by the BMC's network stack.
const PRESENCE_PING = Buffer.from([0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x00, 0x00, 0x00]);

/**
 * Sends one presence ping from a connected UDP socket, which (unlike ipmitool's) reports
 * the ICMP errors that tell "nothing listens" from "nothing answers".
 */
export function rmcpPresencePing(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
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
