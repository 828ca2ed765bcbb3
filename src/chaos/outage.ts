/**
 * A target's outage that keeps its data: a loopback TCP proxy in front of the target, which
 * the workers are pointed at. While it is down, every open connection is reset and every new
 * one is reset as soon as it is accepted (the port stays ours, so nothing else can take it);
 * up again, connections pass through to the target as before. scim2-server keeps its data in
 * memory, so stopping it would lose the accounts; PostgreSQL also holds amendctl's own store,
 * which an outage of the warehouse target must not take down.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface OutageProxy {
  port: number;
  /** Whether connections are being reset. */
  readonly down: boolean;
  /** Milliseconds spent down so far. */
  readonly downMs: number;
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startOutageProxy(upstream: { host: string; port: number }): Promise<OutageProxy> {
  const open = new Set<Socket>();
  let down = false;
  let downSince = 0;
  let downMs = 0;
  const track = (s: Socket): void => {
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => undefined); // a reset peer is what an outage is
  };
  const server: Server = createServer((client) => {
    track(client);
    if (down) {
      client.resetAndDestroy();
      return;
    }
    const target = connect(upstream);
    track(target);
    client.pipe(target);
    target.pipe(client);
    const both = (): void => {
      client.destroy();
      target.destroy();
    };
    client.once('close', both);
    target.once('close', both);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    get down() {
      return down;
    },
    get downMs() {
      return downMs + (down ? Date.now() - downSince : 0);
    },
    setDown(value: boolean) {
      if (value === down) return;
      down = value;
      if (down) {
        downSince = Date.now();
        for (const s of open) s.resetAndDestroy();
      } else downMs += Date.now() - downSince;
    },
    close: () =>
      new Promise<void>((res) => {
        for (const s of open) s.destroy();
        server.close(() => res());
      }),
  };
}
