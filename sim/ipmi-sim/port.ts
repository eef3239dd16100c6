/**
 * UDP ports for simulated IPMI BMCs. ipmi_sim binds with SO_REUSEADDR, so it does not fail
 * on a port another ipmi_sim holds: the two would share it silently. Ports are therefore
 * picked here, checked free, and never handed out twice in one process.
 */
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

const handedOutPorts = new Set<number>();

/**
 * A UDP port nothing is bound to on `host`. ipmi_sim binds with SO_REUSEADDR, so a port
 * in use by another ipmi_sim would not make it fail: the kernel's choice is checked here,
 * and never handed out twice in one process.
 */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    const port = await new Promise<number>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => resolve(socket.address().port));
    });
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
}
