/**
 * Cloudflare adapter: `cloudflare(edgewire)` makes the Worker handler and the
 * Durable Object class for an edgewire. The Worker runs the app in "worker"
 * mode: it admits every connection (admission runs here, once) and forwards
 * each room to its own object (`idFromName(route:room)`) and each plain route's
 * polling session to a shard's object. Every object runs the same assembly in
 * "object" mode, with sockets accepted through the Hibernation API: a woken
 * object rebuilds its rooms from the sockets' attachments, and sequence
 * numbers and history live in its SQLite storage. Nothing happens on import.
 */
import { DurableObject } from "cloudflare:workers";
import type { Hono } from "hono";
import type { Edgewire, Instance } from "../src/assemble.ts";
import { historyBounds } from "../src/config.ts";
import type { ConnRecord, Frame, Peer, Runtime } from "../src/core/ports.ts";
import type { Forward } from "../src/http/placement.ts";
import { CloseCode } from "../src/protocol.ts";
import { MemoryBroker } from "../src/pubsub/memory.ts";
import { PresencePolicy } from "../src/pubsub/presence.ts";
import { SqlHistory } from "../src/pubsub/sql-history.ts";
import { SqlTimers } from "../src/pubsub/sql-timers.ts";

/** Bindings and variables from wrangler.toml. */
export interface Env {
  [binding: string]: unknown;
}

/** Options of `cloudflare()`. */
export interface CloudflareOptions {
  /** your Hono app with the edgewire mounted in it (default: the edgewire's own app) */
  app?: Hono;
  /** the Durable Object namespace binding in wrangler.toml (default "ROOMS") */
  binding?: string;
}

/** A workerd WebSocket seen as an engine Peer. */
class CfPeer implements Peer {
  context: unknown;
  /** when a frame last arrived (in memory only: after a wake-up, the wake-up counts) */
  seen = Date.now();
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

// The Close frame answering a client's: its own code when valid (RFC 6455 §7.4), 1000 for none
// (1005; workerd throws on sending it), 1002 for a code no endpoint may send (0, 999, 1004, 1006, 1016…).
const echoable = (code: number): number => {
  if (code === 1005) return CloseCode.normal;
  const valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
  return valid ? code : 1002;
};

// Handlers always get binary as bytes (recent compatibility dates default plain sockets to Blob; see binaryType below).
const toFrame = (message: string | ArrayBuffer): Frame =>
  typeof message === "string" ? message : new Uint8Array(message);

/** A fresh socket pair answering an accepted upgrade with its subprotocol. */
function upgradeResponse(client: WebSocket, record: ConnRecord): Response {
  const headers = record.protocol ? { "Sec-WebSocket-Protocol": record.protocol } : undefined;
  return new Response(null, { status: 101, webSocket: client, ...(headers ? { headers } : {}) });
}

const pair = () => Object.values(new WebSocketPair()) as [WebSocket, WebSocket];

// Rooms and plain routes' polling shards live in objects; ':' and the "poll/" prefix keep the names apart.
function forwardTo(binding: string): Forward {
  return (target, request, env) => {
    const ns = (env as Env)[binding] as DurableObjectNamespace | undefined;
    if (!ns) throw new Error(`edgewire: no Durable Object binding "${binding}" in wrangler.toml`);
    const name = target.kind === "room" ? `${target.route}:${target.room}` : `poll/${target.route}:${target.shard}`;
    // A response fetched from an object has immutable headers, so a user's middleware that sets one
    // after next() (secureHeaders(), timing()) threw. A copy is mutable, and keeps a 101's webSocket.
    return ns
      .get(ns.idFromName(name))
      .fetch(request)
      .then((response) => new Response(response.body, response));
  };
}

// The Worker serves plain routes' sockets itself (accepted, not hibernatable) and forwards the rest.
const workerRuntime: Runtime = {
  name: "workerd",
  upgrade: (_c, record, events) => {
    const [client, server] = pair();
    server.accept();
    // Recent compatibility dates deliver binary as Blob; handlers get bytes on every runtime.
    (server as WebSocket & { binaryType: string }).binaryType = "arraybuffer";
    const peer = new CfPeer(server, record);
    server.addEventListener("message", (m) => events.message(peer, toFrame(m.data as string | ArrayBuffer)));
    server.addEventListener("close", (m) => {
      peer.close(echoable(m.code), m.reason);
      events.closed(peer, m.code, m.reason);
    });
    events.opened(peer);
    return upgradeResponse(client, record);
  },
  address: (c) => c.req.header("cf-connecting-ip"),
};

/**
 * One room (or one polling shard): its members' sockets (hibernatable), presence and sequenced
 * history. `cloudflare()` subclasses it with its edgewire, as the runtime constructs the class
 * itself with only (ctx, env).
 */
class EdgewireObject extends DurableObject<Env> {
  /** this incarnation's id: a new one after every wake-up or eviction */
  readonly incarnation = crypto.randomUUID();
  readonly #instance: Instance;
  readonly #peers = new WeakMap<WebSocket, CfPeer>();
  readonly #heartbeatMs: number;
  readonly #timers: SqlTimers;

  constructor(ctx: DurableObjectState, env: Env, edgewire: Edgewire) {
    super(ctx, env);
    const runtime: Runtime = {
      name: "workerd",
      instance: this.incarnation,
      upgrade: (_c, record, events) => {
        const [client, server] = pair();
        this.ctx.acceptWebSocket(server);
        const peer = new CfPeer(server, record);
        peer.save();
        this.#peers.set(server, peer);
        events.opened(peer);
        void this.#sweepLater();
        return upgradeResponse(client, record);
      },
    };
    // Room timers in the object's SQLite, fired by its one alarm (shared with the ghost-socket sweep).
    const timers = new SqlTimers(ctx.storage.sql, { wakeBy: (at) => this.#wakeBy(at) }, Date.now, (fn) =>
      ctx.storage.transactionSync(fn),
    );
    this.#timers = timers;
    this.#instance = edgewire.assemble({
      runtime,
      env,
      mode: "object",
      broker: (config) =>
        new MemoryBroker({
          // One transaction per write, so a message and its key (or its room state) commit together or not at all.
          history: new SqlHistory(ctx.storage.sql, {
            ...historyBounds(config),
            transaction: (fn) => ctx.storage.transactionSync(fn),
          }),
          presence: new PresencePolicy({ limit: config.presenceLimit }),
          timers,
        }),
    });
    void this.#instance.start(); // object mode: nothing that keeps the object awake
    this.#heartbeatMs = this.#instance.config.heartbeatMs;
    // Pings are answered by the runtime, so they do not wake a hibernated object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    // Woken or rebuilt: every socket still open comes back with its record.
    for (const ws of ctx.getWebSockets()) this.#instance.events.restored(this.#peer(ws));
  }

  #peer(ws: WebSocket): CfPeer {
    let peer = this.#peers.get(ws);
    if (!peer) {
      peer = new CfPeer(ws, ws.deserializeAttachment() as ConnRecord);
      this.#peers.set(ws, peer);
    }
    return peer;
  }

  override fetch(request: Request): Promise<Response> {
    return this.#instance.fetch(request, this.env);
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const peer = this.#peer(ws);
    peer.seen = Date.now();
    this.#instance.events.message(peer, toFrame(message));
  }

  // Pings are answered without waking the object (setWebSocketAutoResponse), so dead peers are found
  // from an alarm: a socket with no frame and no auto-answered ping for two heartbeats is a ghost
  // (workerd#1187) and is closed, 1006 to the room. One alarm per object, only while sockets exist.
  async #sweepLater(): Promise<void> {
    await this.#wakeBy(Date.now() + this.#heartbeatMs);
  }

  // One alarm per object, for the sweep and the room's timers: set no later than `at`.
  async #wakeBy(at: number): Promise<void> {
    const set = await this.ctx.storage.getAlarm();
    if (set === null || set > at) await this.ctx.storage.setAlarm(at);
  }

  override async alarm(): Promise<void> {
    await this.#timers.fire();
    const next = this.#timers.next();
    const now = Date.now();
    for (const ws of this.ctx.getWebSockets()) {
      const peer = this.#peer(ws);
      const pinged = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      if (now - Math.max(pinged, peer.seen, peer.record.at) <= 2 * this.#heartbeatMs) continue;
      this.#instance.events.timedOut(peer);
    }
    const sweep = this.ctx.getWebSockets().length > 0 ? now + this.#heartbeatMs : Number.POSITIVE_INFINITY;
    const wake = Math.min(sweep, next ?? Number.POSITIVE_INFINITY);
    if (Number.isFinite(wake)) await this.ctx.storage.setAlarm(wake);
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    // Reciprocate, or the client sees 1006 instead of its own code.
    try {
      ws.close(echoable(code), reason);
    } catch {}
    this.#instance.events.closed(this.#peer(ws), code, reason);
  }

  override webSocketError(ws: WebSocket): void {
    this.#instance.events.closed(this.#peer(ws));
  }
}

/** The Worker handler and the Durable Object class that serve `edgewire` on Cloudflare. */
export function cloudflare(edgewire: Edgewire, options: CloudflareOptions = {}) {
  const app = options.app ?? edgewire.app;
  const forward = forwardTo(options.binding ?? "ROOMS");
  let worker: Instance | undefined;
  const workerInstance = (env: Env): Instance => {
    if (worker) return worker;
    worker = edgewire.assemble({ runtime: workerRuntime, env, mode: "worker", forward });
    void worker.start(); // nothing runs by itself in a Worker: no timers, a memory broker
    return worker;
  };
  /** The Durable Object class to export: one room, or one polling shard, of this edgewire. */
  class RoomObject extends EdgewireObject {
    constructor(ctx: DurableObjectState, env: Env) {
      super(ctx, env, edgewire);
    }
  }
  const handler: ExportedHandler<Env> = {
    fetch: (request, env, ctx) => workerInstance(env).fetch(request, env, ctx, app),
  };
  return { worker: handler, RoomObject };
}
