/**
 * Bun adapter: `serve(edgewire)` on `Bun.serve` with its native WebSocket
 * handlers. Room delivery uses Bun's topic pub/sub (`ws.subscribe` +
 * `server.publish`), which fans out in native code: the hub hands it one frame
 * per broadcast. Nothing happens on import.
 */
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { Edgewire, Instance } from "../src/assemble.ts";
import type { ConnectionEvents, ConnRecord, Frame, Peer, Runtime } from "../src/core/ports.ts";
import { CloseCode } from "../src/protocol.ts";
import { type EdgewireServer, type ServeOptions, serveWith, upgradeHeaders } from "../src/serving.ts";

/** The reason uWS gives a frame over maxPayloadLength (fixed in its source; no option changes it). */
const BUN_TOO_BIG = "Received too big message";

/** The env of one request: the server (for hono/bun), and the record of an upgrade the app admitted. */
interface BunEnv {
  server: Server<BunPeer>;
  edgewire: ConnRecord | undefined;
}

/** A Bun socket seen as an engine Peer; it is also the socket's `data`. */
class BunPeer implements Peer {
  ws!: ServerWebSocket<BunPeer>;
  context: unknown;
  constructor(
    readonly record: ConnRecord,
    readonly closeTimeoutMs: number,
  ) {}
  send(frame: Frame): void {
    this.ws.send(frame);
  }
  /** the socket's close handler ran */
  closed = false;
  close(code: number, reason: string): void {
    this.ws.close(code, reason);
    // A peer that never answers the Close is dropped after the close timeout, as on every runtime.
    setTimeout(() => this.closed || this.ws.terminate(), this.closeTimeoutMs);
  }
  ping(): void {
    this.ws.ping();
  }
  terminate(): void {
    this.ws.terminate();
  }
  get bufferedAmount(): number {
    return this.ws.getBufferedAmount();
  }
  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }
  publishOthers(topic: string, frame: Frame): void {
    this.ws.publish(topic, frame);
  }
}

/** Bun's WebSocket handlers: every event reported to the kit, with Bun's own limits as backstops. */
function websocketHandlers(events: ConnectionEvents, config: Instance["config"]): WebSocketHandler<BunPeer> {
  return {
    maxPayloadLength: config.maxMessageBytes,
    perMessageDeflate: false,
    // Slow consumers: the engine finds them past maxBufferedBytes (bufferedAmount, checked every half
    // second) and counts them as on every runtime; Bun's own close, which its handler hears as a plain
    // 1006, is the backstop at twice that.
    backpressureLimit: 2 * config.maxBufferedBytes,
    closeOnBackpressureLimit: true,
    // The engine pings every heartbeat; Bun's own timeout stays as a backstop past two missed ones.
    idleTimeout: Math.min(960, Math.max(8, Math.ceil((3 * config.heartbeatMs) / 1000))),
    pong(ws) {
      events.pong(ws.data);
    },
    open(ws) {
      ws.data.ws = ws;
      events.opened(ws.data);
    },
    message(ws, message) {
      // Binary arrives as a Buffer (a Uint8Array); text as a string.
      events.message(ws.data, message);
    },
    close(ws, code, reason) {
      ws.data.closed = true;
      // Bun (uWS) refuses a frame over maxPayloadLength itself, closing with 1009 and its own fixed
      // text; its handler hears 1006. The room is told what the client was: 1009, edgewire's reason.
      if (reason === BUN_TOO_BIG) events.closed(ws.data, CloseCode.tooBig, events.limits.tooBigReason);
      else events.closed(ws.data, code, reason);
    },
  };
}

/** Serve `edgewire` on Bun; resolves once listening. */
export function serve(edgewire: Edgewire, options: ServeOptions = {}): Promise<EdgewireServer> {
  let server: Server<BunPeer> | undefined;
  const runtime: Runtime = {
    name: "bun",
    upgrade(c, record) {
      // Admitted: the upgrade happens once the app (and the user's middleware after next()) answered.
      (c.env as BunEnv).edgewire = record;
      return new Response(null);
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
      const { events, config } = instance;
      const bun = Bun.serve<BunPeer>({
        port,
        hostname,
        ...(tls ? { tls } : {}),
        async fetch(request, srv) {
          // `{ server }`, as hono/bun's getBunServer expects to find it in c.env.
          const env: BunEnv = { server: srv, edgewire: undefined };
          const response = await instance.fetch(request, env, undefined, app);
          const record = env.edgewire;
          if (!record) return response;
          // Bun writes the 101 itself: what the app's middleware set goes on it. The protocol is always
          // set: left unset, Bun answers the first offer itself — a token-only offer (`edgewire.bearer.<jwt>`)
          // came back as the protocol. An empty value makes it send none.
          const headers = new Headers(upgradeHeaders(response));
          headers.set("Sec-WebSocket-Protocol", record.protocol);
          if (srv.upgrade(request, { data: new BunPeer(record, events.limits.closeTimeoutMs), headers }))
            return undefined;
          instance.admission.release(record);
          return Response.json(
            { error: { code: "bad_handshake", message: "not a valid WebSocket handshake" } },
            { status: 400 },
          );
        },
        // Bun closes idle HTTP connections after 10 s by default: a long-poll GET is held longer.
        idleTimeout: Math.min(255, Math.ceil(config.pollTimeoutMs / 1000) + 10),
        websocket: websocketHandlers(events, config),
      });
      server = bun;
      return { port: bun.port ?? port, close: () => bun.stop(true) };
    },
  });
}
