/**
 * The contract between the runtime-agnostic kit and an adapter: what a
 * connection is (a small serialisable record plus a sink for frames) and what
 * the kit asks of a runtime (complete an upgrade, publish natively). WebSocket
 * adapters and the long-polling transport both hand the engine a Peer, so the
 * same handlers serve every transport.
 */
import type { Context } from "hono";

/** A frame on the wire: text, or binary bytes. */
export type Frame = string | Uint8Array;

/** What admission attached to a connection before it existed; handlers read it as `ctx.auth`. */
export interface Admitted {
  /** verified token claims, when the connection presented a credential */
  claims?: Record<string, unknown>;
  /** the client's address as the runtime (or a trusted proxy) reports it */
  address?: string;
}

/**
 * Everything the server knows about a connection, as plain JSON. It must stay
 * small (a Durable Object attachment holds at most 16 KiB) because a
 * hibernated Durable Object wakes with nothing but the socket and this record;
 * the handlers are found again from `route`.
 */
export interface ConnRecord {
  /** record format version, so a rolling deploy can read older attachments */
  v: 1;
  /** connection id, also the member id in a room */
  id: string;
  /** the route's name: the key the handlers are looked up by */
  route: string;
  /** the room joined, for room routes */
  room: string | null;
  /** negotiated subprotocol ("" when the client offered none) */
  protocol: string;
  /** the room's last sequence number when this connection was welcomed */
  seq: number;
  /** when the connection was accepted (ms since epoch) */
  at: number;
  /** the route's per-connection state (validated by the route's state schema) */
  state?: unknown;
  /** what admission attached (claims, address) */
  auth?: Admitted;
  /** a room connection asked to resume after this `seq` of this epoch (until its welcome) */
  resume?: { seq: number; epoch: string };
}

/** A live connection as the engine drives it. */
export interface Peer {
  /** the connection's state; the engine may update it and call `save()` */
  readonly record: ConnRecord;
  /**
   * Queue one frame; never throws on a closed connection. Bytes go out as a
   * binary frame unless `text` is true: UTF-8 text the adapter handed over
   * undecoded (routes with `text: "bytes"`), which only that adapter's peers get back.
   */
  send(frame: Frame, text?: boolean): void;
  /** close with a code and a reason (≤123 bytes) */
  close(code: number, reason: string): void;
  /** persist `record` where the runtime keeps it (Durable Object attachment) */
  save?(): void;
  /** join a native pub/sub topic (Bun), so `Runtime.publish` reaches this peer */
  subscribe?(topic: string): void;
  /** publish to a native topic, excluding this peer */
  publishOthers?(topic: string, frame: Frame): void;
  /** the engine's per-connection context, kept on the peer so no lookup or allocation happens per message */
  context?: unknown;
  /** how the connection travels (default "websocket") */
  readonly transport?: "websocket" | "polling";
  /** send a protocol ping (runtimes that can: Node, Bun); the adapter reports the pong to `Engine.pong` */
  ping?(): void;
  /** drop the connection without a closing handshake (a peer that stopped reading) */
  terminate?(): void;
}

/** What the kit asks of an adapter. */
export interface Runtime {
  /** short runtime name, shown by `/healthz` ("node", "deno", "bun", "workerd") */
  readonly name: string;
  /** id of this server instance (a Durable Object's incarnation), shown with a room's presence */
  readonly instance?: string;
  /**
   * Complete a WebSocket upgrade already admitted by the kit; the adapter
   * later reports the connection's events to the engine with a Peer built
   * around `record`. The subprotocol to answer with is `record.protocol`.
   */
  upgrade(c: Context, record: ConnRecord): Response | Promise<Response>;
  /**
   * Native topic publish (Bun's `server.publish`): one call reaches every
   * subscribed socket at the runtime's speed. Absent where the runtime has none;
   * the hub then sends one pre-encoded frame to each member.
   */
  publish?(topic: string, frame: Frame): void;
  /** the client's address for a request, where the runtime knows it */
  address?(c: Context): string | undefined;
  /** the process's memory (resident set, JS heap used), where the runtime reports it */
  memory?(): { rss: number; heapUsed: number };
}
