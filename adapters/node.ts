/**
 * Node adapter: `serve(edgewire)` on @hono/node-server and `ws`. An upgrade passes the Hono app first
 * (routing, admission, the user's middleware), then `ws` completes it. The socket is itself the
 * engine's Peer (a `ws` subclass carrying its record): no wrappers or closures per connection.
 */
import { readFile } from "node:fs/promises";
import { type IncomingMessage, STATUS_CODES } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Duplex } from "node:stream";
import { createAdaptorServer } from "@hono/node-server";
import { WebSocket, WebSocketServer } from "ws";
import type { Edgewire } from "../src/assemble.ts";
import type { ConnectionEvents, ConnRecord, Frame, Peer, Runtime } from "../src/core/ports.ts";
import { CloseCode } from "../src/protocol.ts";
import type { EdgewireServer, ServeOptions } from "../src/serving.ts";
import { refusalHead, serveWith, upgradeHeaders, upgradeRequest } from "../src/serving.ts";

// A broadcast sends one frame to every member in a row: one Buffer for all (ws would encode a
// string, or wrap a Uint8Array that is not a Buffer, per member: MessagePack fan-out read 0.90× JSON).
let lastFrame: Frame = "";
let lastBytes: Buffer = Buffer.alloc(0);

// A socket written to stays corked until the tick ends (one shared nextTick): a burst leaves in one writev.
let corked: Duplex[] = [];
let generation = 0;
function uncorkAll(): void {
  const sockets = corked;
  [corked, generation] = [[], generation + 1];
  for (const socket of sockets) socket.uncork();
}

/** A `ws` socket that is also the engine's Peer. */
class NodePeer extends WebSocket implements Peer {
  record!: ConnRecord;
  events!: ConnectionEvents;
  context: unknown;
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
    if (frame !== lastFrame) {
      lastFrame = frame;
      if (typeof frame === "string") lastBytes = Buffer.from(frame, "utf8");
      else lastBytes = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    }
    super.send(lastBytes, { binary: typeof frame !== "string" && text !== true });
    // A member that stopped reading must not grow this process without bound.
    if (this.bufferedAmount > this.events.limits.maxBufferedBytes) this.events.slow(this);
  }
  // ws closes a frame over maxPayload itself, 1009 without a reason (then reports 1006): end it as the engine
  // does (no other ws close lacks a reason). ws waits 30 s, a constant, for the peer's Close: we drop sooner.
  override close(code?: number, reason?: string | Buffer): void {
    if (code === CloseCode.tooBig && reason === undefined) this.events.end(this, code, this.events.limits.tooBigReason);
    else super.close(code, reason);
    setTimeout(dropUnanswered, this.events.limits.closeTimeoutMs, this).unref();
  }
}
const dropUnanswered = (peer: NodePeer) => peer.readyState === WebSocket.CLOSED || peer.terminate();

type Upgrading = IncomingMessage & { edgewire?: ConnRecord; headers101?: [string, string][] };
// Shared listeners (`this` is the socket): no per-connection closures.
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const peer = this as NodePeer;
  if (isBinary || !peer.events.readsText(peer)) peer.events.message(peer, data, !isBinary);
  else peer.events.message(peer, data.toString("utf8"));
}
function onPong(this: WebSocket): void {
  (this as NodePeer).events.pong(this as NodePeer);
}
function onClose(this: WebSocket, code: number, reason: Buffer): void {
  (this as NodePeer).events.closed(this as NodePeer, code, reason.toString("utf8"));
}
function onError(): void {} // ws already closed with the right code; without a listener EventEmitter throws
// Top-level: a closure would keep the request and `head` alive with the socket (measured +1.6 KB/connection).
function destroyOnError(this: Duplex): void {
  this.destroy();
}

async function reject(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  socket.end(
    Buffer.concat([Buffer.from(refusalHead(response, STATUS_CODES[response.status] ?? "", body.length)), body]),
  );
}

/** Serve `edgewire` on Node; resolves once listening. */
export function serve(edgewire: Edgewire, options: ServeOptions = {}): Promise<EdgewireServer> {
  const runtime: Runtime = {
    name: "node",
    upgrade(c, record) {
      (c.env as { incoming: Upgrading }).incoming.edgewire = record; // admitted: for `ws`, on its request
      return new Response(null);
    },
    address: (c) => (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
    memory: () => process.memoryUsage(),
  };
  return serveWith(edgewire, options, process.env, {
    runtime,
    onSignal: (handler) => process.on("SIGINT", handler).on("SIGTERM", handler),
    exit: (code) => process.exit(code),
    readText: (path) => readFile(path, "utf8"),
    async listen(instance, app, port, hostname, tls) {
      const { engine: events, config } = instance;
      const wss = new WebSocketServer({
        noServer: true,
        clientTracking: false, // the engine tracks open connections; permessage-deflate stays off (ws's default)
        WebSocket: NodePeer,
        maxPayload: config.maxMessageBytes,
        handleProtocols: (_offered, request: Upgrading) => request.edgewire?.protocol || false,
      });
      // ws writes the 101 itself: what the app's middleware set on its answer goes on it too.
      wss.on("headers", (lines: string[], req: Upgrading) => {
        for (const [name, value] of req.headers101 ?? []) lines.push(`${name}: ${value}`);
      });
      const fetch = (request: Request, env: unknown) => instance.fetch(request, env, undefined, app);
      const server = createAdaptorServer({ fetch, ...(tls && { createServer: createTlsServer, serverOptions: tls }) });
      server.on("upgrade", async (req: Upgrading, socket: Duplex, head: Buffer) => {
        socket.on("error", destroyOnError);
        try {
          const response = await fetch(upgradeRequest(req, tls ? "https" : "http"), { incoming: req });
          const record = req.edgewire;
          if (!record) return await reject(socket, response);
          req.headers101 = upgradeHeaders(response);
          wss.handleUpgrade(req, socket, head, (ws) => {
            socket.off("error", destroyOnError); // ws handles the socket's errors from here on
            req.edgewire = undefined;
            const peer = Object.assign(ws as NodePeer, { record, events });
            peer.on("message", onMessage).on("close", onClose).on("error", onError).on("pong", onPong);
            events.opened(peer);
          });
        } catch (error) {
          console.error("edgewire: upgrade failed", error);
          socket.destroy();
        }
      });
      await new Promise<void>((ready) => server.listen(port, hostname, ready));
      const address = server.address();
      // Since Node 19, close() also ends idle keep-alive connections.
      const bound = typeof address === "object" && address ? address.port : port;
      return { port: bound, close: () => new Promise<void>((done) => server.close(() => done())) };
    },
  });
}
