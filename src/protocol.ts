/**
 * The edgewire wire protocol (`edgewire.v1`): valibot schemas of every frame a
 * client may send, the shapes the server sends, close codes and error codes.
 * Everything here is runtime-free so the client SDK can import it too.
 */
import * as v from "valibot";

/** The one subprotocol this server speaks; offered in `Sec-WebSocket-Protocol`. */
export const SUBPROTOCOL = "edgewire.v1";

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

/** Stable error codes carried by error frames and HTTP error bodies. */
export const ErrorCode = {
  invalidJson: "invalid_json",
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
} as const;

/** One of the stable error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

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
export interface WelcomeFrame {
  type: "welcome";
  id: string;
  room: string;
  protocol: string;
  seq: number;
  /** the members, oldest first, at most the room's presence limit of them (all of them when `count` is not larger) */
  members: Member[];
  /** how many members the room has, this one included */
  count: number;
  /** how often the client should ping (`{"type":"ping"}`) when it has nothing to send; the server's heartbeat */
  heartbeatMs?: number;
  /** the epoch of the room's history: a `seq` only means something within its epoch */
  epoch?: string;
  /** the client resumed: `seq` is the one it asked to resume after, and every message after it follows, in order, once */
  resumed?: boolean;
}

/**
 * Server → client, right after a welcome, when a resume could not be exact:
 * the room's history was lost (`epoch_changed`: a new epoch) or no longer
 * reaches back (`history_truncated`). Messages `from`..`to` may never arrive;
 * the stream continues after `seq`. Never a silent gap.
 */
export interface ResyncFrame {
  type: "resync";
  room: string;
  epoch: string;
  seq: number;
  reason: "epoch_changed" | "history_truncated";
  /** the first message that may be lost (in the client's old epoch for `epoch_changed`) */
  from: number;
  /** the last message that may be lost (the room's current seq) */
  to: number;
}

/** Server → client: a room message, in the room's one order (`seq` only grows). */
export interface MessageFrame<Data = unknown> {
  type: "message";
  room: string;
  seq: number;
  from: string;
  data: Data;
  ts: number;
}

/** Server → client: a member joined or left (rooms within the presence limit). */
export interface PresenceChangeFrame {
  type: "presence";
  room: string;
  event: "join" | "leave";
  member: Member;
  count: number;
  /** on `leave`: the close code the member's connection ended with (1006: dropped) */
  code?: number;
  /** on `leave`: the close reason, if any */
  reason?: string;
}

/** Server → client: a room above the presence limit shrank back to it; `members` is the whole list again. */
export interface PresenceSyncFrame {
  type: "presence";
  room: string;
  event: "sync";
  members: Member[];
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

/** Server → client: every kind of presence frame. */
export type PresenceFrame = PresenceChangeFrame | PresenceSyncFrame | PresenceCountFrame;

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
  | BroadcastFrame
  | PresenceFrame
  | AckFrame
  | PongFrame
  | ErrorFrame;

/** Body of `POST /rooms/:room/messages` replies. */
export interface PushResult {
  room: string;
  seq: number;
}

/** HTTP error body shape used by every route. */
export interface HttpError {
  error: { code: ErrorCode; message: string };
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
