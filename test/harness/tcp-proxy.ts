/**
 * A TCP proxy on loopback that a test can cut: what a network partition between a process and
 * a server looks like to that process (connections reset, new ones refused).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** host:port to connect to instead of the target. */
  address: string;
  /** Reset every connection and refuse new ones. */
  cut(): Promise<void>;
}

export async function tcpProxy(target: string): Promise<TcpProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host, port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port: own } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${own}`,
    async cut() {
      const closed = new Promise<void>((res) => server.close(() => res()));
      for (const s of sockets) s.resetAndDestroy();
      await closed;
    },
  };
}
