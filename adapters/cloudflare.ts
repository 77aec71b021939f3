/**
 * Cloudflare adapter: the Worker validates room routes and hands each room to
 * its own Durable Object (`idFromName(room)`); the object runs the same app and
 * engine as every other runtime, with sockets accepted through the Hibernation
 * API. A woken object rebuilds its rooms from the sockets' attachments, and its
 * sequence numbers live in the object's SQLite storage.
 */
import { DurableObject } from "cloudflare:workers";
import type { Hono } from "hono";
import { createApp } from "../src/app.ts";
import { MemoryBroker } from "../src/brokers/memory.ts";
import { loadConfig } from "../src/config.ts";
import { Engine } from "../src/engine.ts";
import { CloseCode } from "../src/protocol.ts";
import { SqlHistory } from "../src/rooms/sql-history.ts";
import type { Runtime } from "../src/runtime.ts";
import { appOptions } from "../src/server.ts";
import type { ConnRecord, Frame, Peer } from "../src/transports/peer.ts";

/** Bindings and variables from wrangler.toml. */
export interface Env {
  ROOMS: DurableObjectNamespace<RoomObject>;
  [variable: string]: unknown;
}

/** A workerd WebSocket seen as an engine Peer. */
class CfPeer implements Peer {
  constructor(
    readonly ws: WebSocket,
    readonly record: ConnRecord,
  ) {}
  send(frame: Frame): void {
    // workerd throws when sending on a socket that is already closing.
    try {
      this.ws.send(frame);
    } catch {}
  }
  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch {}
  }
  save(): void {
    this.ws.serializeAttachment(this.record);
  }
}

// 1005 (no code) and 1006 (abnormal) may not be sent in a Close frame, and
// workerd throws if a handler echoes them: answer with a plain 1000.
const echoable = (code: number): number => (code === 1005 || code === 1006 || code === 1015 ? CloseCode.normal : code);

// Handlers always get binary as bytes (recent compatibility dates default plain sockets to Blob; see binaryType below).
const toFrame = (message: string | ArrayBuffer): Frame =>
  typeof message === "string" ? message : new Uint8Array(message);

/** A fresh socket pair answering an accepted upgrade with its subprotocol. */
function upgradeResponse(client: WebSocket, record: ConnRecord): Response {
  const headers = record.protocol ? { "Sec-WebSocket-Protocol": record.protocol } : undefined;
  return new Response(null, { status: 101, webSocket: client, ...(headers ? { headers } : {}) });
}

/** One room: its members' sockets (hibernatable), presence and sequenced history. */
export class RoomObject extends DurableObject<Env> {
  /** this incarnation's id: a new one after every wake-up or eviction */
  readonly instance = crypto.randomUUID();
  readonly #engine: Engine;
  readonly #app: Hono;
  readonly #peers = new WeakMap<WebSocket, CfPeer>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const config = loadConfig(env);
    const broker = new MemoryBroker({
      history: new SqlHistory(ctx.storage.sql, config.historyLimit),
      presenceLimit: config.presenceLimit,
    });
    this.#engine = new Engine({ broker, maxMessageBytes: config.maxMessageBytes });
    const runtime: Runtime = {
      name: "workerd",
      instance: this.instance,
      upgrade: (_c, record) => {
        const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
        this.ctx.acceptWebSocket(server);
        const peer = new CfPeer(server, record);
        peer.save();
        this.#peers.set(server, peer);
        this.#engine.open(peer);
        return upgradeResponse(client, record);
      },
    };
    this.#app = createApp({ runtime, engine: this.#engine, ...appOptions(config) });
    // Pings are answered by the runtime, so they do not wake a hibernated object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    // Woken or rebuilt: every socket still open comes back with its record.
    for (const ws of ctx.getWebSockets()) this.#engine.restore(this.#peer(ws));
  }

  #peer(ws: WebSocket): CfPeer {
    let peer = this.#peers.get(ws);
    if (!peer) {
      peer = new CfPeer(ws, ws.deserializeAttachment() as ConnRecord);
      this.#peers.set(ws, peer);
    }
    return peer;
  }

  override fetch(request: Request): Response | Promise<Response> {
    return this.#app.fetch(request);
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    this.#engine.message(this.#peer(ws), toFrame(message));
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    // Reciprocate, or the client sees 1006 instead of its own code.
    try {
      ws.close(echoable(code), reason);
    } catch {}
    this.#engine.close(this.#peer(ws), code, reason);
  }

  override webSocketError(ws: WebSocket): void {
    this.#engine.close(this.#peer(ws));
  }
}

// The Worker itself serves /echo (a plain accepted socket) and forwards rooms.
let worker: Hono | undefined;

function workerApp(env: Env): Hono {
  if (worker) return worker;
  const config = loadConfig(env);
  const engine = new Engine({ broker: new MemoryBroker(), maxMessageBytes: config.maxMessageBytes });
  const runtime: Runtime = {
    name: "workerd",
    upgrade: (_c, record) => {
      const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
      server.accept();
      // Recent compatibility dates deliver binary as Blob; handlers get bytes on every runtime.
      (server as WebSocket & { binaryType: string }).binaryType = "arraybuffer";
      const peer = new CfPeer(server, record);
      server.addEventListener("message", (e) => engine.message(peer, toFrame(e.data as string | ArrayBuffer)));
      server.addEventListener("close", (e) => {
        peer.close(echoable(e.code), e.reason);
        engine.close(peer, e.code, e.reason);
      });
      engine.open(peer);
      return upgradeResponse(client, record);
    },
  };
  const app = createApp({
    runtime,
    engine,
    // Rooms and echo polling sessions live in objects; ':' keeps the two name spaces apart.
    forward: (target, request, bindings) => {
      const rooms = (bindings as Env).ROOMS;
      const name = target.kind === "room" ? target.room : `echo-poll:${target.shard}`;
      return rooms.get(rooms.idFromName(name)).fetch(request);
    },
  });
  worker = app;
  return app;
}

export default {
  fetch(request, env, ctx) {
    return workerApp(env).fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
