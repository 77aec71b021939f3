/**
 * Node adapter: @hono/node-server for HTTP, `ws` for WebSockets. The upgrade
 * goes through the Hono app first (routing, room names, subprotocol), then `ws`
 * completes it. The socket itself is the engine's Peer (a `ws` subclass with
 * the record as a field), so a connection costs no wrapper objects or closures.
 */
import type { IncomingMessage } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { createAdaptorServer } from "@hono/node-server";
import { WebSocket, WebSocketServer } from "ws";
import type { Runtime } from "../src/runtime.ts";
import { createEdgewire, listeningLine } from "../src/server.ts";
import type { ConnRecord, Frame, Peer } from "../src/transports/peer.ts";

// A broadcast sends one string to every member in a row: encode it once (ws would per member).
let lastText = "";
let lastBytes: Buffer = Buffer.alloc(0);

// A socket written to stays corked until the tick ends (one shared nextTick), so
// the frames of a batched read or a burst leave in one writev, not one each.
let corked: Duplex[] = [];
let generation = 0;
function uncorkAll(): void {
  const sockets = corked;
  corked = [];
  generation++;
  for (const socket of sockets) socket.uncork();
}

/** A `ws` socket that is also the engine's Peer. */
class NodePeer extends WebSocket implements Peer {
  record!: ConnRecord;
  #corkedAt = -1;
  // `unknown`, not boolean: the override must stay assignable to ws's own send(data, cb?).
  override send(frame: Frame, text?: unknown): void {
    const socket = (this as unknown as { _socket?: Duplex })._socket;
    if (socket && this.#corkedAt !== generation) {
      this.#corkedAt = generation;
      if (corked.length === 0) process.nextTick(uncorkAll);
      socket.cork();
      corked.push(socket);
    }
    if (typeof frame !== "string") super.send(frame, { binary: text !== true });
    else {
      if (frame !== lastText) {
        lastText = frame;
        lastBytes = Buffer.from(frame, "utf8");
      }
      super.send(lastBytes, { binary: false });
    }
  }
}

type Upgrading = IncomingMessage & { edgewire?: ConnRecord };

const runtime: Runtime = {
  name: "node",
  upgrade(c, record) {
    // The app accepted the upgrade: leave the record on the request for `ws`.
    (c.env as { incoming: Upgrading }).incoming.edgewire = record;
    return new Response(null);
  },
};
const { config, engine, app } = createEdgewire(process.env, runtime);

const wss = new WebSocketServer({
  noServer: true,
  WebSocket: NodePeer,
  maxPayload: config.maxMessageBytes,
  perMessageDeflate: false,
  handleProtocols: (_offered, request: Upgrading) => request.edgewire?.protocol || false,
});

// Shared listeners (`this` is the socket): no per-connection closures.
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const peer = this as NodePeer;
  if (isBinary || !engine.readsText(peer))
    engine.message(peer, data, !isBinary); // echo: no decode
  else engine.message(peer, data.toString("utf8"));
}
function onClose(this: WebSocket, code: number, reason: Buffer): void {
  engine.close(this as NodePeer, code, reason.toString("utf8"));
}
function onError(this: WebSocket, error: Error): void {
  // `ws` already closed the socket with the right code (1009, 1002, ...); a
  // listener must exist or EventEmitter would throw and kill the process.
  if (process.env.EDGEWIRE_DEBUG) console.error("edgewire: socket error", error.message);
}

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers))
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(", ") : value);
  return new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, { headers });
}

async function reject(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  let head = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}\r\n`;
  response.headers.forEach((value, key) => {
    if (key !== "content-length" && key !== "connection") head += `${key}: ${value}\r\n`;
  });
  socket.end(Buffer.concat([Buffer.from(`${head}content-length: ${body.length}\r\nconnection: close\r\n\r\n`), body]));
}

// Top-level, not a closure: a closure would share the upgrade's scope and keep the
// request and `head` alive as long as the socket (measured: +1.6 KB heap/connection).
function destroyOnError(this: Duplex): void {
  this.destroy();
}

async function onUpgrade(req: Upgrading, socket: Duplex, head: Buffer): Promise<void> {
  socket.on("error", destroyOnError);
  try {
    const response = await app.fetch(toRequest(req), { incoming: req });
    const record = req.edgewire;
    if (!record) return await reject(socket, response);
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off("error", destroyOnError); // ws handles the socket's errors from here on
      req.edgewire = undefined;
      const peer = ws as NodePeer;
      peer.record = record;
      peer.on("message", onMessage).on("close", onClose).on("error", onError);
      engine.open(peer);
    });
  } catch (error) {
    console.error("edgewire: upgrade failed", error);
    socket.destroy();
  }
}

const server = createAdaptorServer({ fetch: app.fetch });
server.on("upgrade", onUpgrade);
server.listen(config.port, config.host, () => {
  const address = server.address();
  console.log(listeningLine("node", config.host, typeof address === "object" && address ? address.port : config.port));
});

// Graceful shutdown: tell every client "going away" (1001) before exiting.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const ws of wss.clients) ws.close(1001, "server shutting down");
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
