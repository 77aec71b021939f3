/**
 * An AsyncAPI 3.0 document of an edgewire, made from its route definitions:
 * one channel per route, the frames its clients send (the route's valibot
 * schema as JSON Schema, by @valibot/to-json-schema), every frame the server
 * sends, and every error and close code — read from ERROR_CODES and
 * CLOSE_CODES, so the document cannot drift from the code. Pure data, pure
 * JS: the app serves it at /asyncapi.json on every runtime, workerd included.
 */
import { type ConversionConfig, toJsonSchema } from "@valibot/to-json-schema";
import type * as v from "valibot";
import { pathParams } from "./core/room-path.ts";
import type { AnyRoute } from "./core/route.ts";
import {
  type AckFrame,
  CLOSE_CODES,
  ERROR_CODES,
  type ErrorFrame,
  type Member,
  type MessageFrame,
  MSGPACK_SUBPROTOCOL,
  PingFrameSchema,
  POLL_PROTOCOL_HEADER,
  type PongFrame,
  type PresenceChangeFrame,
  type PresenceCountFrame,
  type PresenceSyncFrame,
  PublishFrameSchema,
  type ResyncFrame,
  SERVER_SENDER,
  SUBPROTOCOL,
  type WelcomeFrame,
} from "./protocol.ts";

/** A JSON Schema (AsyncAPI Schema Object) as plain data. */
export type JsonSchemaObject = Record<string, unknown>;

/** A server the document names (an AsyncAPI 3 Server Object). */
export interface AsyncApiServer {
  /** host and port, e.g. `realtime.example.com` */
  host: string;
  /** "wss" behind TLS, "ws" without */
  protocol: "ws" | "wss";
  /** where the edgewire is mounted, e.g. `/realtime` */
  pathname?: string;
  description?: string;
}

/** What the document says about the service itself; everything else comes from the routes. */
export interface AsyncApiOptions {
  /** `info.title` (default "edgewire service") */
  title?: string;
  /** `info.version`: your API's version (default "1.0.0") */
  version?: string;
  /** `info.description`, before the generated sections on the protocol and its codes */
  description?: string;
  /** the servers to name, by id (default none: tools then take the channel addresses as paths) */
  servers?: Record<string, AsyncApiServer>;
}

/** An AsyncAPI 3.0 document (the parts edgewire writes; see asyncapi.com/docs/reference/specification/v3.0.0). */
export interface AsyncApiDocument {
  asyncapi: "3.0.0";
  info: { title: string; version: string; description: string };
  defaultContentType: string;
  servers?: Record<string, AsyncApiServer>;
  channels: Record<string, JsonSchemaObject & { address: string }>;
  operations: Record<string, JsonSchemaObject>;
  components: { schemas: Record<string, JsonSchemaObject>; messages: Record<string, JsonSchemaObject> };
  /** every error code: where it shows and what it means (ERROR_CODES) */
  "x-edgewire-error-codes": typeof ERROR_CODES;
  /** every close code and why (CLOSE_CODES) */
  "x-edgewire-close-codes": typeof CLOSE_CODES;
}

/** Where one route's schemas put the definitions of their recursive (`v.lazy`) parts. */
type Defs = Record<string, JsonSchemaObject>;

// draft-07: AsyncAPI's own schema format is a superset of it. Transformations that keep the JSON
// type (trim, case) are skipped rather than failing the whole schema: the shape a client sends is the same.
const CONVERSION: ConversionConfig = {
  target: "draft-07",
  ignoreActions: ["trim", "trim_start", "trim_end", "to_lower_case", "to_upper_case", "normalize", "brand", "readonly"],
};

/**
 * A valibot schema as JSON Schema: `input` for what clients send (before any
 * transform), `output` for what the server sends. A schema JSON Schema cannot
 * express (v.custom, v.date, a type-changing transform) never throws: its
 * inexpressible parts accept anything and it is marked `x-edgewire-partial`
 * with the reason. Recursive parts move to components.schemas as `<prefix>.<n>`.
 */
export function schemaOf(
  schema: v.GenericSchema,
  typeMode: "input" | "output",
  defs: Defs = {},
  prefix = "schema",
): JsonSchemaObject {
  let converted: JsonSchemaObject;
  let partial: string | undefined;
  try {
    converted = toJsonSchema(schema, { ...CONVERSION, typeMode, errorMode: "throw" }) as JsonSchemaObject;
  } catch (error) {
    partial = error instanceof Error ? error.message : String(error);
    try {
      converted = toJsonSchema(schema, { ...CONVERSION, typeMode, errorMode: "ignore" }) as JsonSchemaObject;
    } catch {
      converted = {};
    }
  }
  const { $schema: _draft, $defs, definitions, ...rest } = converted;
  // A "#/$defs/x" reference means the schema's own root; in the document the root is the document.
  const local = { ...(definitions as Defs | undefined), ...($defs as Defs | undefined) };
  const ref = (name: string) => `#/components/schemas/${prefix}.${typeMode}.${name.replace(/[^A-Za-z0-9._-]/g, "_")}`;
  const relocate = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(relocate);
    if (value === null || typeof value !== "object") return value;
    const out: JsonSchemaObject = {};
    for (const [key, inner] of Object.entries(value)) {
      const target =
        key === "$ref" && typeof inner === "string" ? /^#\/(?:\$defs|definitions)\/(.+)$/.exec(inner) : null;
      out[key] = target ? ref((target[1] as string).replaceAll("~1", "/").replaceAll("~0", "~")) : relocate(inner);
    }
    return out;
  };
  for (const [name, def] of Object.entries(local))
    defs[ref(name).slice("#/components/schemas/".length)] = relocate(def) as JsonSchemaObject;
  const result = relocate(rest) as JsonSchemaObject;
  if (partial === undefined) return result;
  const note = `Only partly expressible in JSON Schema (${partial}): a sketch; the route's valibot schema is the rule.`;
  return {
    ...result,
    description: result.description ? `${result.description} ${note}` : note,
    "x-edgewire-partial": partial,
  };
}

/** An object schema with a property for every field of `T`, so a field added to a frame's type must be described here. */
function frame<T>(
  description: string,
  properties: { [K in keyof T]-?: JsonSchemaObject },
  required: readonly (keyof T & string)[],
): JsonSchemaObject {
  return { type: "object", description, properties, required };
}

const str = (description: string): JsonSchemaObject => ({ type: "string", description });
const int = (description: string): JsonSchemaObject => ({ type: "integer", minimum: 0, description });
const constant = (value: string): JsonSchemaObject => ({ type: "string", const: value });
const ANY: JsonSchemaObject = { description: "any JSON value" };

const MEMBER = frame<Member>(
  "a member as the others see it",
  {
    id: str("the member's connection id"),
    joinedAt: int("when it joined (ms since the epoch)"),
    info: { description: "what the route's `member` option shows of the member's state" },
  },
  ["id", "joinedAt"],
);
const MEMBERS: JsonSchemaObject = { type: "array", items: { $ref: "#/components/schemas/member" } };
const ROOM = str("the room's name: its path parameter's value, or the values of several joined by \"/\" in path order");
const SEQ = int("the room's sequence number: it only grows within an epoch");

/** The frames every room route sends, whatever its schema. */
const ROOM_SCHEMAS: Record<string, JsonSchemaObject> = {
  member: MEMBER,
  welcome: frame<WelcomeFrame>(
    "the first frame on a room connection",
    {
      type: constant("welcome"),
      id: str("this connection's member id"),
      room: ROOM,
      protocol: str(`the negotiated subprotocol (${SUBPROTOCOL}, or "" when none was offered)`),
      seq: int("the room's last seq; when resumed, the one the client asked to resume after"),
      members: { ...MEMBERS, description: "the oldest members, at most the presence limit of them" },
      count: int("how many members the room has, this one included"),
      heartbeatMs: int('how often to send {"type":"ping"} when idle'),
      epoch: str("the epoch of the room's history: a seq means something only within its epoch"),
      resumed: { type: "boolean", description: "the resume was exact: every message after `seq` follows, once" },
      maxMessageBytes: int("the largest frame the server takes, in bytes; a larger one closes with 1009"),
      view: {
        description:
          "a stateful room's view (what the route shows of its room state) as of `seq`; absent on an exact resume (the client keeps its own) and on rooms without room state",
      },
    },
    ["type", "id", "room", "protocol", "seq", "members", "count"],
  ),
  resync: frame<ResyncFrame>(
    "right after a welcome, when a resume could not be exact: messages `from`..`to` may never arrive; the stream continues after `seq`",
    {
      type: constant("resync"),
      room: ROOM,
      epoch: str("the room's current epoch"),
      seq: SEQ,
      reason: { type: "string", enum: ["epoch_changed", "history_truncated"] },
      from: int("the first message that may be lost (epoch_changed: in the client's old epoch)"),
      to: int("the last message that may be lost; absent on epoch_changed (the old epoch's end is unknown)"),
    },
    ["type", "room", "epoch", "seq", "reason", "from"],
  ),
  presence: frame<PresenceChangeFrame>(
    "a member joined, left, or changed what the route shows of it (update: to every member, itself too) — rooms within the presence limit",
    {
      type: constant("presence"),
      room: ROOM,
      event: { type: "string", enum: ["join", "leave", "update"] },
      member: { $ref: "#/components/schemas/member" },
      count: int("how many members the room has now"),
      code: int("on leave: the close code the member's connection ended with (1006: dropped)"),
      reason: str("on leave: the close reason"),
    },
    ["type", "room", "event", "member", "count"],
  ),
  presenceSync: frame<PresenceSyncFrame>(
    "a room above the presence limit shrank back to it: the whole member list again",
    { type: constant("presence"), room: ROOM, event: constant("sync"), members: MEMBERS, count: int("members") },
    ["type", "room", "event", "members", "count"],
  ),
  presenceCount: frame<PresenceCountFrame>(
    "the member count of a room above the presence limit, coalesced (single joins and leaves are not announced)",
    { type: constant("presence"), room: ROOM, event: constant("count"), count: int("members") },
    ["type", "room", "event", "count"],
  ),
  ack: frame<AckFrame>(
    "the publish with this `id` was handled",
    {
      type: constant("ack"),
      id: str("the publish's id"),
      seq: int("the seq it got, when the route's handler published it"),
    },
    ["type", "id"],
  ),
  pong: frame<PongFrame>(
    'the answer to a ping (exactly {"type":"pong"} for {"type":"ping"})',
    { type: constant("pong"), id: str("the ping's id") },
    ["type"],
  ),
  error: frame<ErrorFrame>(
    "the last frame was refused; the connection stays open",
    {
      type: constant("error"),
      code: {
        description: "a stable error code (x-edgewire-error-codes), or a route's own (a handler's ClientError)",
        anyOf: [
          {
            type: "string",
            enum: Object.entries(ERROR_CODES)
              .filter(([, info]) => info.frame)
              .map(([code]) => code),
          },
          { type: "string" },
        ],
      },
      message: str("what was wrong, for people"),
      id: str("the refused publish's id"),
      retryAfterMs: int("rate_limited: when a frame will be accepted again"),
    },
    ["type", "code", "message"],
  ),
};

const message = (
  title: string,
  summary: string,
  payload: JsonSchemaObject,
  contentType = "application/json",
): JsonSchemaObject => ({ title, summary, contentType, payload });

const MESSAGES: Record<string, JsonSchemaObject> = {
  ping: message(
    "Ping",
    "an application-level ping, answered with pong (for clients that cannot send protocol pings)",
    schemaOf(PingFrameSchema, "input"),
  ),
  binary: message(
    "Binary frame",
    "a binary WebSocket frame, bytes unchanged",
    { type: "string", format: "binary" },
    "application/octet-stream",
  ),
  text: message("Text frame", "a text WebSocket frame, as it is", { type: "string" }, "text/plain"),
  reply: message("Handler frame", "whatever the route's handlers send (`ctx.connection.send`)", ANY),
  ...Object.fromEntries(
    Object.keys(ROOM_SCHEMAS)
      .filter((name) => name !== "member")
      .map((name) => {
        const schema = ROOM_SCHEMAS[name] as JsonSchemaObject;
        const title = name.replace(/^./, (c) => c.toUpperCase()).replace(/[A-Z]/g, (c, i) => (i ? ` ${c}` : c));
        return [name, message(title, schema.description as string, { $ref: `#/components/schemas/${name}` })];
      }),
  ),
};

const ERROR_SECTION = (): string => {
  const rows = Object.entries(ERROR_CODES).map(([code, info]) => {
    const where = [
      ...(info.frame ? ["frame"] : []),
      ...(info.http ?? []).map((s) => `HTTP ${s}`),
      ...(info.close ? [`close ${info.close}`] : []),
    ];
    return `| \`${code}\` | ${where.join(" / ")} | ${info.meaning.replaceAll("|", "\\|")} |`;
  });
  const closes = Object.entries(CLOSE_CODES).map(([code, why]) => `| ${code} | ${why} |`);
  return [
    "## Error codes",
    "",
    'In error frames (`{"type":"error","code",…}`), HTTP error bodies (`{"error":{"code","message"}}`) and close reasons.',
    "",
    "| code | where | meaning |",
    "| --- | --- | --- |",
    ...rows,
    "",
    "## Close codes",
    "",
    "| code | meaning |",
    "| --- | --- |",
    ...closes,
    "| 4000–4999 | the application's own: passed through both ways unchanged |",
  ].join("\n");
};

const PROTOCOL_SECTION = [
  `Every route speaks the edgewire protocol: offer the subprotocol \`${SUBPROTOCOL}\` (or none). Text frames carry JSON.`,
  `Offering \`${MSGPACK_SUBPROTOCOL}\` instead selects the same messages MessagePack-encoded in binary frames (room`,
  "messages as `[0, seq, from, data, ts]`, broadcasts as `[1, from, data]`, relayed bytes as a bin, every other frame as",
  "the map of its JSON form; a client may still send JSON text frames); the schemas below describe both.",
  "Room routes (`{room}` in the address) share presence, one message order (`seq`), bounded history and resume",
  "(`?seq=&epoch=`: no gap, no duplicate, or a `resync` frame saying what may be lost). Every route is also served",
  `over HTTP long-polling at \`{address}/poll\` (offered subprotocols in \`${POLL_PROTOCOL_HEADER}\`), with the same frames.`,
].join(" ");

/** A channel key AsyncAPI accepts (`[A-Za-z0-9._-]`), unique among `taken`. */
function channelKey(name: string, taken: Set<string>): string {
  const base = name.replace(/[^A-Za-z0-9._-]/g, "-");
  let key = base;
  for (let i = 2; taken.has(key); i++) key = `${base}-${i}`;
  taken.add(key);
  return key;
}

/** A WebSocket binding: the query and headers of the upgrade. */
function binding(isRoom: boolean): JsonSchemaObject {
  const query: Record<string, JsonSchemaObject> = {
    access_token: str("a JWT, where tokens are configured (or `Authorization: Bearer`)"),
    ...(isRoom
      ? {
          seq: int("resume: the last seq this client saw"),
          epoch: str("resume: the epoch of its last welcome"),
        }
      : {}),
  };
  return {
    ws: {
      method: "GET",
      query: { type: "object", properties: query },
      headers: {
        type: "object",
        properties: {
          "Sec-WebSocket-Protocol": str(
            `${SUBPROTOCOL} or ${MSGPACK_SUBPROTOCOL} (optional; the first offered wins); may add edgewire.bearer.<jwt>`,
          ),
        },
      },
      bindingVersion: "0.1.0",
    },
  };
}

/** What one route's channel carries: its messages, which the server receives and sends, its HTTP endpoints. */
interface ChannelParts {
  messages: Record<string, JsonSchemaObject>;
  receive: string[];
  send: string[];
  http: { method: string; path: string; summary: string }[];
}

const refs = (names: string[]) => Object.fromEntries(names.map((n) => [n, { $ref: `#/components/messages/${n}` }]));

// The welcome of a stateful room: the shared welcome frame, its `view` described by the route's schema.
function welcomeWith(view: JsonSchemaObject): JsonSchemaObject {
  const shared = ROOM_SCHEMAS.welcome as JsonSchemaObject;
  const properties = shared.properties as Record<string, JsonSchemaObject>;
  // The shared sentence first, then the view's own (a partial conversion's note, or the viewSchema hint).
  const description = [properties.view?.description, view.description].filter(Boolean).join(". ");
  return message("Welcome", shared.description as string, {
    ...shared,
    properties: { ...properties, view: { ...view, ...(description ? { description } : {}) } },
  });
}

// A stateful room's view frame: a view change that came without a message.
function viewMessage(view: JsonSchemaObject): JsonSchemaObject {
  const description =
    "a stateful room's view changed by a transaction that published no message (sequenced, kept in history)";
  return message("View", description, {
    type: "object",
    properties: {
      type: constant("view"),
      room: ROOM,
      seq: SEQ,
      from: str(`who committed it: a member's id, or "${SERVER_SENDER}"`),
      view,
      ts: int("when it was sequenced (ms since the epoch)"),
    },
    required: ["type", "room", "seq", "from", "view", "ts"],
  });
}

const BROADCAST = "an unsequenced message a handler broadcast (ctx.room.broadcast): not in history, no seq";

// The broadcast frame of a room route carrying `output`: an object, or (compactBroadcasts) positional.
function broadcastMessage(compact: boolean, output: JsonSchemaObject): JsonSchemaObject {
  if (!compact)
    return message("Broadcast", BROADCAST, {
      type: "object",
      properties: { type: constant("broadcast"), room: ROOM, from: str("the member's id"), data: output },
      required: ["type", "room", "from", "data"],
    });
  return message("Broadcast", `${BROADCAST}; compact (the route's compactBroadcasts): [1, from, data]`, {
    // a tuple as AsyncAPI's schema (JSON Schema draft 7) writes one
    type: "array",
    items: [{ type: "integer", const: 1 }, str("the member's id"), output],
    additionalItems: false,
    minItems: 3,
  });
}

// A room route: publish and ping in; the room's frames out; presence, history and push over HTTP.
function roomParts(route: AnyRoute, defs: Defs, prefix: string, address: string, parts: ChannelParts): void {
  const { schema, binary, publishes, roomState, viewSchema, view: shows } = route.options;
  const { messages, receive, send, http } = parts;
  // What members see of a stateful room: its viewSchema, else the room state itself when no view narrows it.
  const viewOf = viewSchema ?? (shows ? undefined : roomState);
  const view = roomState
    ? viewOf
      ? schemaOf(viewOf, "output", defs, `${prefix}.view`)
      : { description: "what the route's view shows of its room state (give the route a viewSchema to describe it)" }
    : undefined;
  const input = schema ? schemaOf(schema, "input", defs, prefix) : ANY;
  // Members receive what the handlers publish: the `publishes` schema when the route has one.
  const published = publishes ?? schema;
  const output = published ? schemaOf(published, "output", defs, prefix) : ANY;
  const envelope = schemaOf(PublishFrameSchema, "input");
  envelope.properties = {
    ...(envelope.properties as JsonSchemaObject),
    data: { ...input, description: `${input.description ?? "checked by the route's schema"}` },
  };
  messages.publish = message("Publish", "publish data to the room; with an id, an ack (or an error) follows", envelope);
  const roomFrame = frame<Omit<MessageFrame, "view">>(
    "a published message, to every member (the sender too), in the room's one order",
    {
      type: constant("message"),
      room: ROOM,
      seq: SEQ,
      from: str(`the publishing member's id, or "${SERVER_SENDER}" for a backend push`),
      data: output,
      ts: int("when it was sequenced (ms since the epoch)"),
    },
    ["type", "room", "seq", "from", "data", "ts"],
  );
  if (view) {
    const description = "the room's view after this message: on the last message of a transaction that changed it";
    (roomFrame.properties as Record<string, JsonSchemaObject>).view = { ...view, description };
  }
  messages.message = message("Message", roomFrame.description as string, roomFrame);
  if (view) {
    messages.view = viewMessage(view);
    send.push("view");
  }
  messages.broadcast = broadcastMessage(route.options.compactBroadcasts === true, output);
  Object.assign(
    messages,
    refs(["ping", "welcome", "resync", "presence", "presenceSync", "presenceCount", "ack", "pong", "error"]),
  );
  // A stateful room's welcome carries its view: this route's own welcome, the shared one with the view's schema.
  if (view) messages.welcome = welcomeWith(view);
  receive.push("publish", "ping");
  send.push("welcome", "resync", "message", "broadcast", "presence", "presenceSync", "presenceCount", "ack");
  send.push("pong", "error");
  if (binary) {
    Object.assign(messages, refs(["binary"]));
    receive.push("binary");
    if (binary === "relay") send.push("binary");
  }
  http.push(
    { method: "GET", path: address, summary: "presence: {room, seq, count, members}" },
    {
      method: "GET",
      path: `${address}/history`,
      summary: "a page of history: ?after=N&limit=M → {room, epoch, seq, messages, next?}",
    },
    {
      method: "POST",
      path: `${address}/messages`,
      summary:
        "backend push (Authorization: Bearer <EDGEWIRE_PUSH_TOKEN>): the JSON body is published as data → {room, seq}; with Idempotency-Key, a retry within the window publishes nothing → {room, seq, repeated: true}",
    },
  );
}

// A plain route: JSON checked by its schema, or raw frames both ways.
function plainParts(route: AnyRoute, defs: Defs, prefix: string, parts: ChannelParts): void {
  const { schema, rateLimit } = route.options;
  const { messages, receive, send } = parts;
  if (schema) {
    messages.message = message("Message", "a text frame with JSON that the route's schema accepts", {
      ...schemaOf(schema, "input", defs, prefix),
    });
    Object.assign(messages, refs(["reply", "error"]));
    receive.push("message");
    send.push("reply", "error");
    return;
  }
  // Raw frames both ways: what its handlers send is text or bytes too; errors only from a rate limit.
  Object.assign(messages, refs(["text", "binary", ...(rateLimit ? ["error"] : [])]));
  receive.push("text", "binary");
  send.push("text", "binary", ...(rateLimit ? ["error"] : []));
}

/** One route's channel, and which of its messages the server receives and sends. */
function channelOf(route: AnyRoute, defs: Defs, prefix: string) {
  const isRoom = route.kind === "room";
  const address = route.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
  const parts: ChannelParts = {
    messages: {},
    receive: [],
    send: [],
    http: [
      {
        method: "POST",
        path: `${address}/poll`,
        summary: "open a long-polling session (then GET/POST/DELETE …/poll/{sid})",
      },
    ],
  };
  if (isRoom) roomParts(route, defs, prefix, address, parts);
  else plainParts(route, defs, prefix, parts);
  const kind = isRoom ? "Room route" : route.options.schema ? "Plain route (JSON)" : "Plain route (raw frames)";
  const { messages, receive, send, http } = parts;
  const channel: JsonSchemaObject & { address: string } = {
    address,
    title: route.name,
    description: `${kind} \`${route.path}\`. Over HTTP: ${http.map((h) => `\`${h.method} ${h.path}\``).join(", ")}.`,
    messages,
    bindings: binding(isRoom),
    "x-edgewire-route": { name: route.name, kind: route.kind, path: route.path },
    "x-edgewire-http": http,
  };
  if (isRoom) {
    // The room is the tuple of these values; frames name it by the values joined with "/".
    const params = pathParams(route.path);
    channel.parameters = Object.fromEntries(
      params.map((p) => [
        p,
        {
          description: `${params.length > 1 ? "part of the room" : "the room"}: 1–64 characters (EDGEWIRE_MAX_ROOM_NAME) of A–Z a–z 0–9 _ - .`,
        },
      ]),
    );
  }
  return { channel, receive, send };
}

/** The AsyncAPI 3.0 document of an edgewire's routes (`edgewire.routes`): pure data, ready for JSON.stringify. */
export function asyncApiDocument(routes: readonly AnyRoute[], options: AsyncApiOptions = {}): AsyncApiDocument {
  const taken = new Set<string>();
  const defs: Defs = {};
  const channels: AsyncApiDocument["channels"] = {};
  const operations: AsyncApiDocument["operations"] = {};
  for (const route of routes) {
    const key = channelKey(route.name, taken);
    const { channel, receive, send } = channelOf(route, defs, key);
    channels[key] = channel;
    const ref = (names: string[]) => names.map((n) => ({ $ref: `#/channels/${key}/messages/${n}` }));
    // An operation's action is the described application's: the server receives what clients send.
    operations[`${key}.receive`] = {
      action: "receive",
      channel: { $ref: `#/channels/${key}` },
      summary: `what clients send on ${route.path}`,
      messages: ref(receive),
    };
    operations[`${key}.send`] = {
      action: "send",
      channel: { $ref: `#/channels/${key}` },
      summary: `what the server sends on ${route.path}`,
      messages: ref(send),
    };
  }
  const description = [options.description ?? "Realtime WebSocket routes served by edgewire.", PROTOCOL_SECTION];
  return {
    asyncapi: "3.0.0",
    info: {
      title: options.title ?? "edgewire service",
      version: options.version ?? "1.0.0",
      description: [...description, ERROR_SECTION()].join("\n\n"),
    },
    defaultContentType: "application/json",
    ...(options.servers ? { servers: options.servers } : {}),
    channels,
    operations,
    components: { schemas: { ...ROOM_SCHEMAS, ...defs }, messages: MESSAGES },
    "x-edgewire-error-codes": ERROR_CODES,
    "x-edgewire-close-codes": CLOSE_CODES,
  };
}

/** The document with every channel address under `prefix` (where the edgewire is mounted, e.g. "/realtime"). */
export function mountedAt(document: AsyncApiDocument, prefix: string): AsyncApiDocument {
  if (prefix === "" || prefix === "/") return document;
  const channels = Object.fromEntries(
    Object.entries(document.channels).map(([key, channel]) => [key, { ...channel, address: prefix + channel.address }]),
  );
  return { ...document, channels };
}
