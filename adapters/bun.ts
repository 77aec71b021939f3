/**
 * Bun adapter: `Bun.serve` with its native WebSocket handlers. Room delivery
 * uses Bun's topic pub/sub (`ws.subscribe` + `server.publish`), which fans out
 * in native code: the engine hands it one frame per broadcast.
 */
import type { Server, ServerWebSocket } from "bun";
import { getBunServer } from "hono/bun";
import type { Runtime } from "../src/runtime.ts";
import { createEdgewire, listeningLine } from "../src/server.ts";
import type { ConnRecord, Frame, Peer } from "../src/transports/peer.ts";

/** A Bun socket seen as an engine Peer; it is also the socket's `data`. */
class BunPeer implements Peer {
  ws!: ServerWebSocket<BunPeer>;
  constructor(readonly record: ConnRecord) {}
  send(frame: Frame): void {
    this.ws.send(frame);
  }
  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }
  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }
  publishOthers(topic: string, frame: Frame): void {
    this.ws.publish(topic, frame);
  }
}

let server: Server<BunPeer> | undefined;

const runtime: Runtime = {
  name: "bun",
  upgrade(c, record) {
    const target = (getBunServer(c) as Server<BunPeer> | undefined) ?? server;
    const headers = record.protocol ? { "Sec-WebSocket-Protocol": record.protocol } : undefined;
    if (target?.upgrade(c.req.raw, { data: new BunPeer(record), headers })) {
      // Bun answers the upgrade itself; this response is ignored.
      return new Response(null);
    }
    return c.json({ error: { code: "upgrade_failed", message: "not a valid WebSocket handshake" } }, 400);
  },
  publish(topic, frame) {
    server?.publish(topic, frame);
  },
};

const { config, engine, app } = createEdgewire(Bun.env, runtime);

server = Bun.serve<BunPeer>({
  port: config.port,
  hostname: config.host,
  fetch: (request, srv) => app.fetch(request, srv),
  // Bun closes idle HTTP connections after 10 s by default: a long-poll GET is held longer.
  idleTimeout: Math.min(255, Math.ceil(config.pollTimeoutMs / 1000) + 10),
  websocket: {
    maxPayloadLength: config.maxMessageBytes,
    perMessageDeflate: false,
    open(ws) {
      ws.data.ws = ws;
      engine.open(ws.data);
    },
    message(ws, message) {
      // Binary arrives as a Buffer (a Uint8Array); text as a string.
      engine.message(ws.data, message);
    },
    close(ws, code, reason) {
      engine.close(ws.data, code, reason);
    },
  },
});
console.log(listeningLine("bun", config.host, server.port ?? config.port));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server?.stop(true);
    process.exit(0);
  });
}
