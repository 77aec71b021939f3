/**
 * Bun adapter: `serve(edgewire)` on `Bun.serve` with its native WebSocket
 * handlers. Room delivery uses Bun's topic pub/sub (`ws.subscribe` +
 * `server.publish`), which fans out in native code: the hub hands it one frame
 * per broadcast. Nothing happens on import.
 */
import type { Server, ServerWebSocket } from "bun";
import type { Edgewire } from "../src/assemble.ts";
import type { ConnRecord, Frame, Peer, Runtime } from "../src/core/contract.ts";
import { type EdgewireServer, type ServeOptions, serveWith } from "../src/serving.ts";

/** A Bun socket seen as an engine Peer; it is also the socket's `data`. */
class BunPeer implements Peer {
  ws!: ServerWebSocket<BunPeer>;
  context: unknown;
  constructor(readonly record: ConnRecord) {}
  send(frame: Frame): void {
    this.ws.send(frame);
  }
  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }
  ping(): void {
    this.ws.ping();
  }
  terminate(): void {
    this.ws.terminate();
  }
  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }
  publishOthers(topic: string, frame: Frame): void {
    this.ws.publish(topic, frame);
  }
}

/** Serve `edgewire` on Bun; resolves once listening. */
export function serve(edgewire: Edgewire, options: ServeOptions = {}): Promise<EdgewireServer> {
  let server: Server<BunPeer> | undefined;
  const runtime: Runtime = {
    name: "bun",
    upgrade(c, record) {
      // Always set: left unset, Bun answers the first offered protocol itself — a token-only offer
      // (`edgewire.bearer.<jwt>`) came back as the protocol. An empty value makes it send none.
      const headers = { "Sec-WebSocket-Protocol": record.protocol };
      // Bun answers the upgrade itself; the response returned here is ignored.
      if (server?.upgrade(c.req.raw, { data: new BunPeer(record), headers })) return new Response(null);
      return c.json({ error: { code: "upgrade_failed", message: "not a valid WebSocket handshake" } }, 400);
    },
    publish(topic, frame) {
      server?.publish(topic, frame);
    },
    address: (c) => server?.requestIP(c.req.raw)?.address,
    memory: () => process.memoryUsage(),
  };
  return serveWith(edgewire, options, Bun.env, {
    runtime,
    onSignal: (handler) => {
      for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, handler);
    },
    exit: (code) => process.exit(code),
    readText: (path) => Bun.file(path).text(),
    async listen(instance, app, port, hostname, tls) {
      const { engine, config } = instance;
      const bun = Bun.serve<BunPeer>({
        port,
        hostname,
        ...(tls ? { tls } : {}),
        // `{ server }`, as hono/bun's getBunServer expects to find it in c.env.
        fetch: (request, srv) => instance.fetch(request, { server: srv }, undefined, app),
        // Bun closes idle HTTP connections after 10 s by default: a long-poll GET is held longer.
        idleTimeout: Math.min(255, Math.ceil(config.pollTimeoutMs / 1000) + 10),
        websocket: {
          maxPayloadLength: config.maxMessageBytes,
          perMessageDeflate: false,
          // Slow consumers: Bun buffers up to the limit per socket (its native publish too), then closes it.
          backpressureLimit: config.maxBufferedBytes,
          closeOnBackpressureLimit: true,
          // The engine pings every heartbeat; Bun's own timeout stays as a backstop past two missed ones.
          idleTimeout: Math.min(960, Math.max(8, Math.ceil((3 * config.heartbeatMs) / 1000))),
          pong(ws) {
            engine.pong(ws.data);
          },
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
      server = bun;
      return { port: bun.port ?? port, close: () => bun.stop(true) };
    },
  });
}
