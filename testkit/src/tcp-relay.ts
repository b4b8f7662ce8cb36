import net from "node:net";
import type { AddressInfo } from "node:net";

/**
 * A loopback TCP relay in front of `targetPort` that can freeze: while frozen it forwards
 * nothing either way but keeps both sockets open, like a peer whose process is stopped or a
 * network partition that sends no reset. Thawing forwards what waited.
 */
export interface TcpRelay {
  port: number;
  /** Connections relayed and still open on the target's side. */
  readonly open: number;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number, host = "127.0.0.1"): Promise<TcpRelay> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let frozen = false;
  const server = net.createServer((client) => {
    const target = net.connect(targetPort, host);
    const pair: [net.Socket, net.Socket] = [client, target];
    pairs.add(pair);
    client.pipe(target);
    target.pipe(client);
    if (frozen) for (const s of pair) s.pause();
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      target.destroy();
    };
    client.on("error", end).on("close", end);
    target.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get open() {
      return pairs.size;
    },
    freeze() {
      frozen = true;
      for (const pair of pairs) for (const s of pair) s.pause();
    },
    thaw() {
      frozen = false;
      for (const pair of pairs) for (const s of pair) s.resume();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
