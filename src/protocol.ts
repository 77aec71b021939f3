/**
 * The edgewire wire protocol (`edgewire.v1`): valibot schemas of every frame a
 * client may send, the shapes the server sends, close codes and error codes.
 * Everything here is runtime-free so the client SDK can import it too.
 */
import * as v from "valibot";

/** The subprotocol of the JSON protocol (the default); offered in `Sec-WebSocket-Protocol`. */
export const SUBPROTOCOL = "edgewire.v1";

/** The same protocol with MessagePack frames (docs/protocol.md, src/msgpack.ts); the SDK's `edgewire/client/msgpack`. */
export const MSGPACK_SUBPROTOCOL = "edgewire.v1+msgpack";

/** Every subprotocol the server speaks. */
export const SUBPROTOCOLS: readonly string[] = [SUBPROTOCOL, MSGPACK_SUBPROTOCOL];

/** Close codes used by the server (RFC 6455 §7.4.1 plus the application range). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  invalidData: 1007,
  policy: 1008,
  tooBig: 1009,
  serverError: 1011,
  serviceRestart: 1012,
  tryAgainLater: 1013,
} as const;

/**
 * The reason of every close the server initiates, the same on every runtime: what the close
 * code means, then (after ": ") what a client may need to act on. docs/protocol.md lists them.
 */
export const CloseReason = {
  /** 1009: a frame over the limit */
  tooBig: (limit: number) => `message_too_large: limit is ${limit} bytes`,
  /** 1008: a client that kept sending past its rate limit */
  flooding: "rate_limited: flooding",
  /** 1011: a handler's fault */
  fault: "internal_error",
  /** 1013: a connection whose outbound buffer passed its limit */
  slowConsumer: "slow_consumer",
  /** 1013: the broker is unreachable */
  tryAgainLater: "try_again_later",
  /** 1012: a draining instance; the SDK waits `ms` before coming back */
  restart: (ms: number) => `service restart: reconnect in ${ms} ms`,
  /** 1001: the server stopped (serve().stop()) */
  goingAway: "server shutting down",
} as const;

/** Stable error codes carried by error frames and HTTP error bodies. */
export const ErrorCode = {
  invalidJson: "invalid_json",
  invalidMsgpack: "invalid_msgpack",
  invalidMessage: "invalid_message",
  messageTooLarge: "message_too_large",
  invalidRoom: "invalid_room",
  unsupportedProtocol: "unsupported_protocol",
  upgradeRequired: "upgrade_required",
  notFound: "not_found",
  invalidBody: "invalid_body",
  unauthorized: "unauthorized",
  sessionNotFound: "session_not_found",
  tryAgainLater: "try_again_later",
  internal: "internal_error",
  originNotAllowed: "origin_not_allowed",
  forbidden: "forbidden",
  rateLimited: "rate_limited",
  roomFull: "room_full",
  tooManyRooms: "too_many_rooms",
  tooManyConnections: "too_many_connections",
  slowConsumer: "slow_consumer",
  draining: "draining",
  heartbeatTimeout: "heartbeat_timeout",
  badHandshake: "bad_handshake",
  invalidState: "invalid_state",
  invalidIdempotencyKey: "invalid_idempotency_key",
  idempotencyKeyReused: "idempotency_key_reused",
  batchTooLarge: "batch_too_large",
} as const;

/** One of the stable error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A close code CLOSE_CODES describes: CloseCode's, 1002 (runtimes send it), 1005 and 1006 (reported, never sent). */
export type ListedCloseCode = (typeof CloseCode)[keyof typeof CloseCode] | 1002 | 1005 | 1006;

/** Where an error code shows (error frames, HTTP statuses, a close's reason) and what it means. */
export interface ErrorCodeInfo {
  /** sent in `{"type":"error"}` frames; the connection stays open */
  readonly frame?: true;
  /** the HTTP statuses whose error body carries it */
  readonly http?: readonly number[];
  /** the close code whose reason starts with it */
  readonly close?: ListedCloseCode;
  /** what it means */
  readonly meaning: string;
}

/**
 * Every error code, where it shows and what it means (close codes as
 * literals, not CloseCode's: a property read would keep this table in the
 * client bundle, which never uses it). Keyed by the codes
 * themselves, so a code added to ErrorCode does not compile until it is
 * described here; the AsyncAPI document is made from this table.
 */
export const ERROR_CODES: { readonly [K in ErrorCode]: ErrorCodeInfo } = {
  invalid_json: { frame: true, meaning: "the text frame is not JSON" },
  invalid_msgpack: {
    frame: true,
    meaning: "a binary frame on `edgewire.v1+msgpack` that is not exactly one MessagePack value",
  },
  invalid_message: {
    frame: true,
    meaning:
      "a frame that fails the schema (unknown `type`, missing `data`, …; `message` says which field), data nested deeper than 100 levels or holding what JSON cannot (bytes, extension types), or binary on a JSON-only route",
  },
  message_too_large: { http: [413], close: 1009, meaning: "a frame or push body over the size limit" },
  invalid_room: { http: [400], meaning: "a bad room name (characters, or too long)" },
  unsupported_protocol: { http: [400], meaning: "the subprotocol offer names nothing this server speaks" },
  upgrade_required: { http: [426], meaning: "a WebSocket route was requested without `Upgrade: websocket`" },
  not_found: { http: [404], meaning: "no such route" },
  invalid_body: { http: [400], meaning: "a push or long-polling body that is not JSON, or fails the route's schema" },
  unauthorized: { http: [401], meaning: "a missing, malformed, forged or expired token where one is required" },
  session_not_found: { http: [404], meaning: "a long-polling session that does not exist (closed or expired)" },
  try_again_later: {
    frame: true,
    http: [503],
    close: 1013,
    meaning:
      "the broker is unreachable (frame, or close 1013; a backend push it cannot store: 503, nothing published), or too many polling sessions (503)",
  },
  internal_error: {
    http: [500],
    close: 1011,
    meaning: "a server fault; only that connection is closed",
  },
  origin_not_allowed: { http: [403], meaning: "a browser `Origin` the policy does not admit" },
  forbidden: {
    frame: true,
    http: [403],
    meaning: "the token's claims do not cover this room (join, read, push, publish)",
  },
  rate_limited: {
    frame: true,
    close: 1008,
    meaning:
      "more frames than the rate limit; `retryAfterMs` says when; more than a burst of refusals within a second closes with 1008 (those are not answered)",
  },
  room_full: { http: [503], meaning: "the room has its most members" },
  too_many_rooms: { http: [503], meaning: "a new room on an instance holding its most rooms" },
  too_many_connections: { http: [429], meaning: "too many connections are open from this address" },
  slow_consumer: {
    close: 1013,
    meaning: "the connection's outbound buffer (or polling queue) passed its limit",
  },
  draining: {
    http: [503],
    meaning:
      "the instance is shutting down: connect again (elsewhere), or, on the memory broker, push again — after `Retry-After`",
  },
  heartbeat_timeout: { close: 1006, meaning: "no pong and no frame for two heartbeats: the connection was dropped" },
  invalid_state: {
    http: [400],
    meaning:
      "the connection's first state, made from the request (its query, claims), fails the route's state schema or size limit; `message` names the field",
  },
  invalid_idempotency_key: {
    http: [400],
    meaning:
      "a push's `Idempotency-Key` (or a batch message's `key`) that is empty, longer than 255 characters or not printable ASCII",
  },
  idempotency_key_reused: {
    http: [422],
    meaning:
      "a push repeating an idempotency key used in its room within the window, with other data: nothing was published (a retry must send the same data)",
  },
  batch_too_large: {
    http: [413],
    meaning:
      "a batch push with more messages than `EDGEWIRE_PUSH_BATCH_MAX_MESSAGES` or a body over `EDGEWIRE_PUSH_BATCH_MAX_BYTES`: nothing was published",
  },
  bad_handshake: {
    http: [426, 400],
    meaning: "`Sec-WebSocket-Version` is not 13 (426), or the key is not 16 bytes of base64 (400)",
  },
};

/**
 * Every close code a connection may end with, and why: those the server
 * sends (CloseCode, so one added there does not compile until it is
 * described here), 1002 which runtimes send, and 1005/1006 which are reported
 * but never sent (RFC 6455 §7.4.1). 4000–4999 are the application's own.
 */
export const CLOSE_CODES: { readonly [K in ListedCloseCode]: string } = {
  1000: "normal closure; also what a Durable Object answers to a Close without a code",
  1001: "going away: the server is shutting down (or a heartbeat timeout, where a runtime cannot drop a socket)",
  1002: "protocol error, sent by the runtime's WebSocket implementation (reserved bits, bad opcodes, unmasked frames)",
  1005: "(never sent) reported to handlers when a Close frame carried no code",
  1006: "(never sent) reported to handlers and in presence `leave` frames: the connection dropped or missed two heartbeats",
  1007: "invalid data: a text frame that is not UTF-8",
  1008: "policy: persistent flooding (`rate_limited`)",
  1009: "a frame over the size limit (`message_too_large`)",
  1011: "a server fault in a handler (`internal_error`), that connection only",
  1012: "service restart: the reason says `reconnect in N ms`",
  1013: "try again later: a slow consumer (`slow_consumer`) or an unreachable broker (`try_again_later`)",
};

/** Room names of at most `max` characters of letters, digits, `_`, `-`, `.`; checked before the upgrade. */
export const roomNameSchema = (max: number) =>
  v.pipe(
    v.string(),
    v.minLength(1),
    v.maxLength(max, `room names are at most ${max} characters`),
    v.regex(/^[A-Za-z0-9_.-]+$/, "room names use only letters, digits, '_', '-', '.'"),
  );

/** Room names: 1–64 characters (the default limit, `EDGEWIRE_MAX_ROOM_NAME`) of letters, digits, `_`, `-`, `.`. */
export const RoomNameSchema = roomNameSchema(64);
/** A valid room name. */
export type RoomName = v.InferOutput<typeof RoomNameSchema>;

/** Any JSON value (what a member may publish as `data`). */
export const JsonValueSchema: v.GenericSchema<unknown> = v.unknown();

/** Client → server: publish `data` to the room; `id` (optional) is echoed in the `ack`. */
export const PublishFrameSchema = v.object({
  type: v.literal("publish"),
  data: JsonValueSchema,
  id: v.optional(v.pipe(v.string(), v.maxLength(64))),
});
/** A publish frame. */
export type PublishFrame = v.InferOutput<typeof PublishFrameSchema>;

/** Client → server: an application-level ping, answered with `pong` (for clients that cannot send protocol pings, e.g. browsers). */
export const PingFrameSchema = v.object({
  type: v.literal("ping"),
  id: v.optional(v.pipe(v.string(), v.maxLength(64))),
});
/** A ping frame. */
export type PingFrame = v.InferOutput<typeof PingFrameSchema>;

/** Every text frame a room member may send: the envelope; a route's own schema checks `data`. */
export const ClientFrameSchema = v.variant("type", [PublishFrameSchema, PingFrameSchema]);
/** A frame from a room member. */
export type ClientFrame = v.InferOutput<typeof ClientFrameSchema>;

/** A member as other members see it. */
export interface Member<Info = unknown> {
  id: string;
  joinedAt: number;
  /** what the route shows of the member's state to others (its `member` option), if anything */
  info?: Info;
}

/** Server → client: first frame on a room connection. `seq` is the room's last sequence number. */
export interface WelcomeFrame<Info = unknown, View = unknown> {
  type: "welcome";
  id: string;
  room: string;
  protocol: string;
  seq: number;
  /** the members, oldest first, at most the room's presence limit of them (all of them when `count` is not larger) */
  members: Member<Info>[];
  /** how many members the room has, this one included */
  count: number;
  /** how often the client should ping (`{"type":"ping"}`) when it has nothing to send; the server's heartbeat */
  heartbeatMs?: number;
  /** the epoch of the room's history: a `seq` only means something within its epoch */
  epoch?: string;
  /** the client resumed: `seq` is the one it asked to resume after, and every message after it follows, in order, once */
  resumed?: boolean;
  /** the largest frame the server takes, in bytes: a larger one closes the connection with 1009 (the SDK refuses it first) */
  maxMessageBytes?: number;
  /**
   * A stateful room's view (what its route shows members of the room state) at this welcome's `seq`.
   * Absent on rooms without room state, and on an exact resume: the client holds the view at the
   * seq it resumed after, and the replayed frames carry every change since.
   */
  view?: View;
}

/**
 * Server → client, right after a welcome, when a resume could not be exact: the room's history
 * was lost (`epoch_changed`: a new epoch began) or no longer reaches back (`history_truncated`).
 * Messages `from`..`to` may never arrive; the stream continues with the messages after `seq`.
 * Never a silent gap. On `epoch_changed`, `from` is in the client's old epoch (the first it had
 * not seen) and `to` is absent (the old epoch's end was lost with it); the new epoch follows from
 * its start, as far as history keeps it (a `history_truncated` frame says where it does not).
 */
export interface ResyncFrame {
  type: "resync";
  room: string;
  epoch: string;
  /** the stream continues after this seq (of `epoch`) */
  seq: number;
  reason: "epoch_changed" | "history_truncated";
  /** the first message that may be lost (in the client's old epoch for `epoch_changed`) */
  from: number;
  /** the last message that may be lost; absent for `epoch_changed` (the old epoch's end is unknown) */
  to?: number;
}

/** Server → client: a room message, in the room's one order (`seq` only grows). */
export interface MessageFrame<Data = unknown, View = unknown> {
  type: "message";
  room: string;
  seq: number;
  from: string;
  data: Data;
  ts: number;
  /** the room's new view, on the last message of a transaction that changed it: the view as of this `seq` */
  view?: View;
}

/**
 * Server → client: a stateful room's view changed by a transaction that published no message. It is
 * sequenced and kept in history like a message, so a client holds the view at the last `seq` it saw,
 * also after a resume.
 */
export interface ViewFrame<View = unknown> {
  type: "view";
  room: string;
  seq: number;
  /** who committed it: a member's id, or `server` for a backend push or a timer */
  from: string;
  view: View;
  ts: number;
}

/** What a room's history holds, in its one order: messages, and view changes that came without one. */
export type SequencedFrame = MessageFrame | ViewFrame;

/**
 * Server → client: a member joined, left, or its info changed (`update`: what `member` shows of
 * its state, after the route's handler changed that state) — rooms within the presence limit.
 */
export interface PresenceChangeFrame<Info = unknown> {
  type: "presence";
  room: string;
  event: "join" | "leave" | "update";
  member: Member<Info>;
  count: number;
  /** on `leave`: the close code the member's connection ended with (1006: dropped) */
  code?: number;
  /** on `leave`: the close reason, if any */
  reason?: string;
}

/** Server → client: a room above the presence limit shrank back to it; `members` is the whole list again. */
export interface PresenceSyncFrame<Info = unknown> {
  type: "presence";
  room: string;
  event: "sync";
  members: Member<Info>[];
  count: number;
}

/**
 * Server → client: the member count of a room above the presence limit, where
 * single joins and leaves are not announced (that would cost members² frames);
 * coalesced to at most one per presence interval.
 */
export interface PresenceCountFrame {
  type: "presence";
  room: string;
  event: "count";
  count: number;
}

/** Server → client: every kind of presence frame (`Info`: what the route's `member` shows). */
export type PresenceFrame<Info = unknown> = PresenceChangeFrame<Info> | PresenceSyncFrame<Info> | PresenceCountFrame;

/**
 * Server → client: the publish with this `id` was handled; `seq` is the
 * sequence number it got when the route's handler published it (absent when
 * the handler only broadcast or answered).
 */
export interface AckFrame {
  type: "ack";
  id: string;
  seq?: number;
}

/** Server → client: an unsequenced room message (a route's `ctx.room.broadcast`): not in history, no `seq`. */
export interface BroadcastFrame<Data = unknown> {
  type: "broadcast";
  room: string;
  from: string;
  data: Data;
}

/** Server → client: reply to a ping (exactly `{"type":"pong"}` for `{"type":"ping"}`, so a Durable Object can answer it without waking). */
export interface PongFrame {
  type: "pong";
  id?: string;
}

/** Server → client: the last frame was refused; the connection stays open. */
export interface ErrorFrame {
  type: "error";
  /** one of ErrorCode, or a route's own code (a handler's ClientError) */
  code: ErrorCode | (string & {});
  message: string;
  id?: string;
  /** `rate_limited`: when sending again will be accepted */
  retryAfterMs?: number;
}

/** Every frame the server sends on a room connection. */
export type ServerFrame =
  | WelcomeFrame
  | ResyncFrame
  | MessageFrame
  | ViewFrame
  | BroadcastFrame
  | PresenceFrame
  | AckFrame
  | PongFrame
  | ErrorFrame;

/** Body of `POST /rooms/:room/messages` replies. */
export interface PushResult {
  room: string;
  /** the message's seq; absent when the route's push handler published nothing */
  seq?: number;
  /** the push repeated an idempotency key: nothing was published, `seq` is the first push's */
  repeated?: true;
}

/** One message of a batch push: the room's path as a client joins it, the data to publish, its idempotency key. */
export interface BatchPushMessage {
  to: string;
  data: unknown;
  key?: string;
}

/** Body of `POST /messages`: messages to any rooms of the edgewire's room routes. */
export interface BatchPush {
  messages: BatchPushMessage[];
}

/** Reply to `POST /messages`: each message's result in the order sent, its seq or its own error. */
export interface BatchPushReply {
  results: (PushResult | HttpError)[];
}

/** Request header of a backend push's idempotency key: a repeat within the window publishes nothing. */
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";

/** Response header of a push that repeated its idempotency key (`true`), as Stripe's API answers a replay. */
export const REPLAYED_HEADER = "idempotent-replayed";

/** HTTP error body shape used by every route. */
export interface HttpError {
  /** one of ErrorCode, or a route's own code (a ClientError thrown by its `initialState`) */
  error: { code: ErrorCode | (string & {}); message: string };
}

/** valibot issues as one readable line: "path: message; path: message". */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .map((issue) => {
      const path = v.getDotPath(issue);
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}

/** A long-polling frame, both directions: text as `t`, bytes as base64 `b`. */
export type PollFrame = { t: string } | { b: string };

/** Reply to `POST {route}/poll`. */
export interface PollOpenReply {
  sid: string;
  protocol: string;
  timeoutMs: number;
}

/** Reply to `GET {route}/poll/:sid?cursor=N`. */
export interface PollReply {
  cursor: number;
  frames: PollFrame[];
  close?: { code: number; reason: string };
}

/** Request header carrying the offered subprotocols on `POST {route}/poll`. */
export const POLL_PROTOCOL_HEADER = "x-edgewire-protocol";

/** Who a backend push is `from`. */
export const SERVER_SENDER = "server";

/**
 * `GET {route}/poll` with this header answered (`admitted` or `refused`): would a connection with
 * this request's query, credentials and subprotocols be admitted now? A browser cannot read the
 * status of a refused WebSocket handshake, so the SDK asks this after one fails, and a refusal
 * (4xx: the route's own code, `invalid_state`, `unauthorized`, …) ends its retries.
 */
export const PROBE_HEADER = "x-edgewire-probe";
