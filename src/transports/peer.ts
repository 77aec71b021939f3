/**
 * What a connection is, for the engine: a serialisable record plus a sink for
 * frames. WebSocket adapters and (later) the long-polling transport both give
 * the engine a Peer, so the same handlers serve every transport.
 */

/** The routes a connection can be on; the handler table is keyed by these. */
export type RouteName = "echo" | "room";

/**
 * Everything the server knows about a connection, as plain JSON. It must stay
 * small (a Durable Object attachment holds at most 16 KiB) because a
 * hibernated Durable Object wakes with nothing but the socket and this record.
 */
export interface ConnRecord {
  /** record format version, so a rolling deploy can read older attachments */
  v: 1;
  /** connection id, also the member id in a room */
  id: string;
  route: RouteName;
  /** the room joined, for the `room` route */
  room: string | null;
  /** negotiated subprotocol ("" when the client offered none) */
  protocol: string;
  /** the room's last sequence number when this connection was welcomed */
  seq: number;
  /** when the connection was accepted (ms since epoch) */
  at: number;
}

/** A frame on the wire: text, or binary bytes. */
export type Frame = string | Uint8Array;

/** A live connection as the engine drives it. */
export interface Peer {
  /** the connection's state; the engine may update it and call `save()` */
  readonly record: ConnRecord;
  /**
   * Queue one frame; never throws on a closed connection. Bytes go out as a
   * binary frame unless `text` is true: UTF-8 text the adapter handed over
   * undecoded (see `Engine.message`), which only that adapter's peers get back.
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
}
