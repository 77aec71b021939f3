/**
 * edgewire/client: the WebSocket-compatible EdgewireSocket (reconnect, bounded
 * queue, long-polling fallback) and the typed room client. Runtime-free: it
 * runs in browsers, Node (pass `ws` as `WebSocket` on Node 20), Deno and Bun.
 */

/** A room's path parameters, typed from its route's path. */
export type { ParamNames, RoomParams } from "../core/room-path.ts";
/** Protocol types a client works with, re-exported from the server's own definitions. */
export {
  type BroadcastFrame,
  type ErrorFrame,
  type Member,
  type MessageFrame,
  MSGPACK_SUBPROTOCOL,
  type PresenceFrame,
  type ResyncFrame,
  SUBPROTOCOL,
  type WelcomeFrame,
} from "../protocol.ts";
/** Event classes and types dispatched by EdgewireSocket. */
export { type CloseInfo, ReconnectingEvent, TransportEvent, type TransportKind } from "./events.ts";
/** Handshake pacing: how many WebSocket handshakes may be in flight per host, page-wide. */
export { DEFAULT_MAX_HANDSHAKES_PER_HOST, maxHandshakesPerHost, setMaxHandshakesPerHost } from "./pacing.ts";
/** Long-polling wire types, and how a ws URL maps to its polling route. */
export {
  type FetchLike,
  POLL_PROTOCOL_HEADER,
  type PollFrame,
  type PollOpenReply,
  type PollReply,
  pollUrl,
} from "./polling.ts";
/** The reconnect policy, its options and the close codes that stop it. */
export {
  backoffDelay,
  ClientCloseCode,
  HTTP_REFUSAL_CLOSE_BASE,
  isTerminalCloseCode,
  type ReconnectOptions,
  type ReconnectPolicy,
  reconnectPolicy,
} from "./reconnect.ts";
/** The typed room client. */
export {
  type DataOf,
  type InfoOf,
  type InputOf,
  type InvalidFrame,
  joinRoom,
  type NotARoomRoute,
  type PublishResult,
  type RoomArg,
  type RoomArgFor,
  RoomClient,
  type RoomCodec,
  RoomError,
  type RoomEventMap,
  type RoomGap,
  type RoomHistory,
  type RoomMessage,
  type RoomOptions,
  type RoomOptionsFor,
  type RoomStateChange,
  resumeUrl,
  roomNameOf,
  roomUrl,
  type ViewOf,
} from "./room.ts";
/** The WebSocket-compatible socket. */
export {
  DEFAULT_MAX_QUEUE_BYTES,
  EdgewireSocket,
  type EdgewireSocketEventMap,
  type EdgewireSocketOptions,
  reconnectHint,
  type SendData,
} from "./socket.ts";
/** What an injectable WebSocket constructor must provide. */
export type { WebSocketConstructor, WebSocketLike } from "./transport.ts";
