/**
 * A TCP relay between a client and a server, for cutting connections the way
 * networks do: `cut()` destroys every relayed connection at once, with no
 * Close frame on either side (a phone changing networks, a proxy dropping
 * sockets). New connections are relayed again right away, or refused while `down`.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

/** A running relay. */
export interface Relay {
  /** the relay's port on 127.0.0.1 */
  port: number;
  /** destroy every connection now */
  cut(): void;
  /** refuse (reset) new connections while true */
  down: boolean;
  /** the port new connections are relayed to (switch it to fail over) */
  target: number;
  /** connections relayed so far */
  readonly accepted: number;
  close(): Promise<void>;
}

/** Relay 127.0.0.1:<new port> to 127.0.0.1:`target`. */
export async function startRelay(target: number): Promise<Relay> {
  const live = new Set<Socket>();
  let accepted = 0;
  const relay: Relay = {
    port: 0,
    down: false,
    target,
    get accepted() {
      return accepted;
    },
    cut() {
      for (const s of live) s.destroy();
      live.clear();
    },
    close: () =>
      new Promise<void>((done) => {
        relay.cut();
        server.close(() => done());
      }),
  };
  const server: Server = createServer((client) => {
    if (relay.down) {
      client.destroy();
      return;
    }
    accepted++;
    const upstream = connect(relay.target, "127.0.0.1");
    for (const s of [client, upstream]) {
      live.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        live.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  relay.port = (server.address() as { port: number }).port;
  return relay;
}

/** An HTTP proxy that sends each request to the next of `targets` in turn: a load balancer with no sticky sessions. */
export async function startRoundRobin(
  targets: number[],
): Promise<{ port: number; served: number[]; close(): Promise<void> }> {
  const { createServer: createHttp } = await import("node:http");
  const served = targets.map(() => 0);
  let next = 0;
  const server = createHttp(async (req, res) => {
    const i = next++ % targets.length;
    served[i] = (served[i] ?? 0) + 1;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === "string" && k !== "host" && k !== "connection") headers[k] = v;
    try {
      const upstream = await fetch(`http://127.0.0.1:${targets[i]}${req.url}`, {
        method: req.method ?? "GET",
        headers,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
      });
      const body = Buffer.from(await upstream.arrayBuffer());
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
      res.end(body);
    } catch {
      res.writeHead(502);
      res.end();
    }
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  return {
    port: (server.address() as { port: number }).port,
    served,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}
