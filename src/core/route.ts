/**
 * Route definitions, the heart of the public API: a path, a valibot schema for
 * what clients send, a schema for the connection's own state, and handlers.
 * A definition is data plus functions looked up by the route's `name`, which
 * is what a connection record stores, so a Durable Object woken from
 * hibernation finds the handlers and the state exactly as a process that never
 * slept. `defineRoute` makes a plain route (echo-like, nothing shared);
 * `defineRoom` a room route (presence, sequence numbers, history, join seam).
 */
import * as v from "valibot";
import { DEFAULT_ROOM_STATE_MAX_BYTES, MAX_ROOM_STATE_BYTES } from "../config.ts";
import type { MessageFrame, SequencedFrame } from "../protocol.ts";
import { describeIssues } from "../protocol.ts";
import type { RoomTimer } from "../pubsub/broker.ts";
import type { RoomParams } from "./room-path.ts";

/** What admission attached to a connection before it existed; handlers read it as `ctx.auth`. */
export interface Admitted {
  /** verified token claims, when the connection presented a credential */
  claims?: Record<string, unknown>;
  /** the client's address as the runtime (or a trusted proxy) reports it */
  address?: string;
}

/** A connection as a handler sees it. */
export interface Connection<State = unknown> {
  /** connection id, also the member id in a room */
  readonly id: string;
  /** negotiated subprotocol ("" when none was offered) */
  readonly protocol: string;
  /** the route's per-connection state (validated by its `state` schema); survives hibernation */
  readonly state: State;
  /** replace the state: validated by the route's schema, size-checked, saved where the runtime keeps it; throws RouteError when it fails either */
  setState(next: State): void;
  /**
   * Send one frame: a string as text, bytes as binary (as text when `text` is
   * true: UTF-8 bytes a `text: "bytes"` route received), anything else as JSON text.
   */
  send(data: unknown, text?: boolean): void;
  /** close the connection (1000 by default; 1000, 1001, 1008, 1011–1013 or 3000–4999) */
  close(code?: number, reason?: string): void;
}

/**
 * What a transaction returns: the room's next state (absent: unchanged) and the messages to publish
 * with it (absent: none). Both commit together or not at all.
 */
export interface TransactionResult<RoomState, In> {
  state?: RoomState;
  publish?: readonly In[];
}

/**
 * A transaction: a synchronous function of the room's current state (a copy: it may be changed and
 * returned) that returns what to commit, or undefined for nothing. It may run more than once — on a
 * fleet, again on the fresh state when another instance committed first — so it must have no side
 * effects: read the message, connection and parameters it closes over, decide, return. Throw a
 * ClientError to refuse: nothing changes and the client gets the error.
 */
export type Transaction<RoomState, In> = (state: RoomState) => TransactionResult<RoomState, In> | undefined;

/** What a committed transaction did: the state it left, and the messages it published with their `seq`. */
export interface Committed<RoomState, Data> {
  state: RoomState;
  /** the published messages, in order (the last carries the new view when the view changed) */
  messages: MessageFrame<Data>[];
}

/** The room a connection of a room route is in; `Data` is what members receive, `In` what a handler hands over. */
export interface Room<Data = unknown, In = Data, RoomState = unknown> {
  /** the room's name: its path parameter's value (`lobby`), or its parameters' values joined by "/" (`acme/b1`) */
  readonly name: string;
  /** sequence, keep in history and deliver to every member (the sender too); resolves to the frame with its `seq` */
  publish(data: In): Promise<MessageFrame<Data>>;
  /** deliver an unsequenced `broadcast` frame (not in history) to the other members, or to all with `{ self: true }` */
  broadcast(data: In, options?: { self?: boolean }): Promise<void>;
  /** deliver bytes to the other members as a binary frame */
  relay(bytes: Uint8Array): Promise<void>;
  /** the room's members (at most the presence limit listed), how many there are, and the last `seq` */
  members(): Promise<{ members: import("../protocol.ts").Member[]; count: number; seq: number }>;
  /** the room's state as last committed (room routes with `roomState`; a copy): read-only, change it with `transact` */
  state(): Promise<RoomState>;
  /**
   * Run `fn` on the room's state and commit what it returns — the next state and its messages,
   * atomically and in one order with every other transaction of the room. Resolves once committed;
   * rejects with the ClientError `fn` threw (nothing changed), or `try_again_later` when the broker
   * could not commit. A next state that fails the route's `roomState` schema or size limit is the
   * route's fault (logged, the connection closed with 1011), and nothing is stored.
   */
  transact(fn: Transaction<RoomState, In>): Promise<Committed<RoomState, Data>>;
  /** messages (and view changes) after `after` still in the room's history, oldest first, at most `limit` (≤ 1000) */
  history(after: number, limit?: number): Promise<SequencedFrame[]>;
  /**
   * Schedule the room event `name` at `at` (ms since the epoch, or a Date), with JSON `data` (≤ 4 KiB):
   * the route's `timer` handler runs it once, on one instance. A timer of the same name is replaced;
   * a room holds at most 100.
   */
  schedule(name: string, at: number | Date, data?: unknown): Promise<void>;
  /** cancel the timer `name`: whether it was pending */
  cancel(name: string): Promise<boolean>;
  /** the room's pending timers, soonest first */
  timers(): Promise<RoomTimer[]>;
}

/** What every handler receives: the connection and what admission attached. */
export interface RouteContext<State = unknown> {
  readonly connection: Connection<State>;
  /** what admission attached: verified claims, the client's address */
  readonly auth: Readonly<Admitted>;
}

/** What a room route's handlers receive: the connection, admission, the room and its path parameters. */
export interface RoomContext<State = unknown, Data = unknown, In = Data, Params = RoomParams, RoomState = unknown>
  extends RouteContext<State> {
  readonly room: Room<Data, In, RoomState>;
  /** the room's path parameters, typed from the route's path (`/org/:org/board/:board` → `{ org, board }`) */
  readonly params: Params;
}

/** What a room route's push handler and lifecycle hooks receive: the room, acted on by the server, and its parameters. */
export interface BackendContext<Data = unknown, In = Data, Params = RoomParams, RoomState = unknown> {
  /** the room: publishes, broadcasts and transactions come from `server` */
  readonly room: Room<Data, In, RoomState>;
  /** the room's path parameters */
  readonly params: Params;
}

/** What may be awaited or not. */
type Awaitable<T> = T | Promise<T>;

/** The output type of an optional schema, or `Else` when it is absent. */
type OutputOr<S, Else> = S extends v.GenericSchema ? v.InferOutput<S> : Else;
/** The input type of an optional schema, or `Else` when it is absent. */
type InputOr<S, Else> = S extends v.GenericSchema ? v.InferInput<S> : Else;

/** A route's state type: its state schema's output, or undefined without one. */
export type StateOf<S> = OutputOr<S, undefined>;
/** What a room route's members receive as data: its `publishes` schema's output, else its message schema's. */
export type PublishedOf<TSchema, TPublish> = OutputOr<TPublish, OutputOr<TSchema, unknown>>;
/** What its handlers hand to publish and broadcast: its `publishes` schema's input, else its message schema's output. */
type PublishInOf<TSchema, TPublish> = InputOr<TPublish, OutputOr<TSchema, unknown>>;
/** The context of a room route's handlers. */
type RoomCtx<TSchema, TState, TPublish, TPath extends string, TRoomState> = RoomContext<
  StateOf<TState>,
  PublishedOf<TSchema, TPublish>,
  PublishInOf<TSchema, TPublish>,
  RoomParams<TPath>,
  StateOf<TRoomState>
>;

/** The context of a room route's push handler and lifecycle hooks. */
type BackendCtx<TSchema, TPublish, TPath extends string, TRoomState> = BackendContext<
  PublishedOf<TSchema, TPublish>,
  PublishInOf<TSchema, TPublish>,
  RoomParams<TPath>,
  StateOf<TRoomState>
>;

/** Options shared by both kinds of route. */
interface CommonOptions<TState> {
  /**
   * Stable name stored in every connection record (default: the path without
   * its parameters, `/chat/:room` → `chat`). Renaming a route orphans the
   * records of sockets that hibernated under the old name.
   */
  name?: string;
  /** valibot schema of the per-connection state: serialisable JSON, at most 16 KiB with the record */
  state?: TState;
  /** the first state of a connection, made at admission; without it the state schema must accept `{}` (defaults fill it) */
  initialState?: (init: StateInit) => InputOr<TState, undefined>;
  /** "required": refuse connections without a valid token (401), even when EDGEWIRE_AUTH is optional or no key is configured */
  auth?: "required";
  /**
   * The per-connection rate limit: room routes default to the configured one
   * (EDGEWIRE_RATE_LIMIT, EDGEWIRE_RATE_BURST); plain routes have none unless
   * given one here. `false` turns it off.
   */
  rateLimit?: false | { perSecond: number; burst: number };
}

/** What a route's `initialState` is made from: the admission, the room, the request's query. */
export interface StateInit {
  /** what admission attached (claims, address) */
  auth: Readonly<Admitted>;
  /** the room being joined (room routes), else null */
  room: string | null;
  /** the room's path parameters (room routes), else `{}` */
  params: Readonly<Record<string, string>>;
  /** the upgrade's (or polling open's) query parameters, e.g. `?name=ada` */
  query: Readonly<Record<string, string>>;
}

/**
 * Throw this to refuse what a client asked for, with your own stable code. From a
 * `message` handler it refuses one message: the client gets an error frame with
 * `code` (and its publish's `id`) and the connection stays open. From
 * `initialState` it refuses the connection before the upgrade: an HTTP `status`
 * (default 400) with `{error:{code,message}}`, which the SDK treats as final.
 * Neither is logged as a fault: it is the client's doing, not the server's.
 */
export class ClientError extends Error {
  /** the stable code the client sees (e.g. "invalid_reply") */
  readonly code: string;
  /** the HTTP status of a refused connection (400–499 but 408 and 429, which clients retry; default 400) */
  readonly status: number;
  /** a refusal with a stable code and a readable message */
  constructor(code: string, message: string, options: { status?: number } = {}) {
    super(message);
    this.name = "ClientError";
    this.code = code;
    const status = options.status ?? 400;
    // A 5xx, 408 or 429 would tell the SDK to try again: a refusal says "not like this".
    if (!Number.isInteger(status) || status < 400 || status > 499 || status === 408 || status === 429) {
      throw new RangeError(`edgewire: a ClientError's status is 400–499 but 408 and 429, not ${status}`);
    }
    this.status = status;
  }
}

/** Options of a plain route (no room, nothing shared: echo-like). */
export interface RouteOptions<TSchema, TState> extends CommonOptions<TState> {
  /** the path, e.g. `/echo`; no parameters */
  path: string;
  /**
   * valibot schema of a client's text frames, parsed as JSON; a frame that fails it is answered with
   * an `invalid_message` error frame and never reaches `message`. Without a schema, frames arrive raw.
   */
  schema?: TSchema;
  /** raw routes only: "bytes" lets an adapter hand text frames over as undecoded UTF-8 (`isText` true) — for relays */
  text?: "string" | "bytes";
  /** the connection was accepted */
  open?(ctx: RouteContext<StateOf<TState>>): Awaitable<void>;
  /** a frame arrived: the schema's output, or the raw text/bytes without a schema */
  message?(
    ctx: RouteContext<StateOf<TState>>,
    message: OutputOr<TSchema, string | Uint8Array>,
    isText: boolean,
  ): Awaitable<void>;
  /** the connection ended; 1006 when it dropped without a Close frame */
  close?(ctx: RouteContext<StateOf<TState>>, code: number, reason: string): Awaitable<void>;
}

/** Options of a room route: presence, sequence numbers, history and the join seam come with it. */
export interface RoomOptions<
  TSchema,
  TState,
  TPublish = undefined,
  TPath extends string = string,
  TInfo = unknown,
  TRoomState = undefined,
  TView = unknown,
> extends CommonOptions<TState> {
  /**
   * The path, with one or more named parameters: `/chat/:room`, `/auction/:item`,
   * `/org/:org/board/:board`. The room is the tuple of their values (its name: the values joined
   * by "/", `acme/b1`); handlers read them as `ctx.params`.
   */
  path: TPath;
  /**
   * valibot schema of the `data` of a client's `{"type":"publish","data":…}` frames; data that fails
   * it is answered with an `invalid_message` error frame and never reaches `message`.
   */
  schema?: TSchema;
  /**
   * valibot schema of what the handlers publish and broadcast, when that is not what clients send
   * (a chat message stamped with its author's name, say): members (and a typed client) receive its
   * output, `ctx.room.publish` checks against it (a mismatch is the route's fault, logged and closed
   * with 1011), and backend pushes are checked against it. Needs a `message` handler: the default one
   * publishes the client's data as it is.
   */
  publishes?: TPublish;
  /** what other members see of a member (in presence frames and `members()`), derived from its state */
  member?: (state: StateOf<TState>) => TInfo;
  /**
   * Announce a change of that info: after a `setState` that changes what `member` shows, every member
   * (that one too) gets a presence `update` frame (rooms within the presence limit). Default false:
   * on for names and statuses; off for info that changes with nearly every message (a cursor's
   * position — a broadcast carries that), where it would add a frame per member per message.
   */
  memberUpdates?: boolean;
  /**
   * valibot schema of the room's own state, shared by its members on every instance (the best bid of
   * an auction, a game's board): serialisable JSON, at most `maxRoomStateBytes`. Handlers read it with
   * `ctx.room.state()` and change it only with `ctx.room.transact`. It lives as long as the room's
   * history does, and starts again from `initialRoomState` when that is lost (a new epoch).
   */
  roomState?: TRoomState;
  /** the room's first state, from its path parameters; without it the `roomState` schema must accept `{}` */
  initialRoomState?: (params: RoomParams<TPath>) => InputOr<TRoomState, undefined>;
  /**
   * What members see of the room state (default: all of it): in the welcome, and after every change
   * that changes it, in the room's one order. A sealed-bid auction shows no bids.
   */
  view?: (state: StateOf<TRoomState>) => TView;
  /** valibot schema of the view (what `view` returns): each view is checked against it, and the AsyncAPI document carries it */
  viewSchema?: v.GenericSchema;
  /** the most bytes the room state takes as JSON (default 65 536, at most 131 072: a Durable Object storage value) */
  maxRoomStateBytes?: number;
  /**
   * Broadcasts (`ctx.room.broadcast`) reach JSON members as the positional `[1, from, data]` —
   * the form MessagePack members get — instead of `{"type":"broadcast","room","from","data"}`:
   * about 45 B less per frame, for rooms whose every member sends many small updates (cursors,
   * games). The SDK hands out the same `broadcast` event either way; a client of your own must
   * read the array (docs/protocol.md). Default false.
   */
  compactBroadcasts?: boolean;
  /** binary frames: "relay" them to the other members, hand them to a handler, or (default) refuse them */
  binary?:
    | "relay"
    | ((ctx: RoomCtx<TSchema, TState, TPublish, TPath, TRoomState>, bytes: Uint8Array) => Awaitable<void>);
  /** joined: the welcome went out and the live stream flows */
  open?(ctx: RoomCtx<TSchema, TState, TPublish, TPath, TRoomState>): Awaitable<void>;
  /**
   * A publish arrived with valid data. Without this handler the data is published as it is. Return
   * the result of `ctx.room.publish` (or of `ctx.room.transact`: its last message) to acknowledge
   * the client's publish with that `seq`.
   */
  message?(
    ctx: RoomCtx<TSchema, TState, TPublish, TPath, TRoomState>,
    data: OutputOr<TSchema, unknown>,
  ): Awaitable<
    // biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing must type-check too
    void | MessageFrame<PublishedOf<TSchema, TPublish>> | Committed<StateOf<TRoomState>, PublishedOf<TSchema, TPublish>>
  >;
  /** left: the others have been told; 1006 when it dropped without a Close frame */
  close?(ctx: RoomCtx<TSchema, TState, TPublish, TPath, TRoomState>, code: number, reason: string): Awaitable<void>;
  /**
   * A backend push arrived (`POST {path}/messages`, or its part of a batch), its body valid for the
   * route's `schema` as a member's publish would be: publish, run a transaction, or refuse it by
   * throwing a ClientError (the push answers its status and code; nothing changes). Return what
   * `publish` or `transact` resolved to: the push answers that seq. Without this handler a push
   * publishes its body as it is (checked against `publishes`, else `schema`). Pushes with an
   * Idempotency-Key are refused on a route with a push handler: its transaction decides what a
   * repeat is (its state can tell).
   */
  push?(
    ctx: BackendCtx<TSchema, TPublish, TPath, TRoomState>,
    data: OutputOr<TSchema, unknown>,
  ): Awaitable<
    // biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing must type-check too
    void | MessageFrame<PublishedOf<TSchema, TPublish>> | Committed<StateOf<TRoomState>, PublishedOf<TSchema, TPublish>>
  >;
  /** the room got its first member (on this broker: across a fleet, the count went from 0 to 1) */
  occupied?(ctx: BackendCtx<TSchema, TPublish, TPath, TRoomState>): Awaitable<void>;
  /** the room lost its last member */
  vacated?(ctx: BackendCtx<TSchema, TPublish, TPath, TRoomState>): Awaitable<void>;
  /**
   * A timer a handler scheduled (`ctx.room.schedule`) is due: run on the room as the server, once,
   * on one instance — a transaction here commits like any other (the auction closes at its deadline).
   */
  timer?(ctx: BackendCtx<TSchema, TPublish, TPath, TRoomState>, timer: RoomTimer): Awaitable<void>;
}

/**
 * A route, ready for `createEdgewire({ routes })`. The type parameters carry
 * what a typed client infers: `Input` what it may send (publish), `Output`
 * what it receives as message data, `Path` the path it joins (a room route's, as written),
 * `Info` what members see of each other (a room route's `member`).
 */
export interface RouteDefinition<
  Kind extends "plain" | "room" = "plain" | "room",
  Input = unknown,
  Output = unknown,
  State = unknown,
  Path extends string = string,
  Info = unknown,
  View = unknown,
> {
  readonly kind: Kind;
  readonly name: string;
  readonly path: Path;
  /** internal: the options as given */
  readonly options: RouteOptions<v.GenericSchema | undefined, v.GenericSchema | undefined> &
    RoomOptions<
      v.GenericSchema | undefined,
      v.GenericSchema | undefined,
      v.GenericSchema | undefined,
      string,
      unknown,
      v.GenericSchema | undefined
    >;
  /** type-level only: what a typed client sends, receives, what the state is and what the room's view is */
  readonly "~types"?: { input: Input; output: Output; state: State; info: Info; view: View };
}

/** Any route definition (its type parameters only type the client, so every route fits). */
export type AnyRoute = RouteDefinition;

/** What a client of `R` sends (a room route: publish data). */
export type RouteInput<R> = R extends RouteDefinition<infer _K, infer I, infer _O, infer _S> ? I : never;
/** What a client of `R` receives as message data. */
export type RouteOutput<R> = R extends RouteDefinition<infer _K, infer _I, infer O, infer _S> ? O : never;

/** Raised by `setState` and at definition time: names the route and what is wrong. */
export class RouteError extends Error {
  /** an error naming its route */
  constructor(route: string, message: string) {
    super(`edgewire: route "${route}": ${message}`);
    this.name = "RouteError";
  }
}

/** The most bytes a connection record (with its state) may take: a Durable Object attachment's limit. */
export const MAX_RECORD_BYTES = 16 * 1024;

// A parameter is a whole segment: ":" and a name.
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;

// "/chat/:room" → "chat", "/a/:room/b" → "a/b", "/echo" → "echo".
function defaultName(path: string): string {
  return path
    .split("/")
    .filter((s) => s !== "" && !s.startsWith(":"))
    .join("/");
}

function checkPath(name: string, path: string, kind: "plain" | "room"): void {
  if (!path.startsWith("/")) throw new RouteError(name, `path must start with "/": ${path}`);
  const segments = path.split("/");
  const params = segments.filter((s) => s.startsWith(":"));
  if (kind === "room") {
    const bad = segments.find((s) => s.includes(":") && !PARAM.test(s));
    if (bad !== undefined)
      throw new RouteError(name, `a parameter is a whole segment, ":" and a name (letters, digits, _): ${bad}`);
    if (params.length === 0)
      throw new RouteError(name, `a room route's path has a parameter, like /chat/:room: ${path}`);
    if (new Set(params).size !== params.length) throw new RouteError(name, `a parameter is named twice: ${path}`);
  }
  if (kind === "plain" && params.length > 0) {
    throw new RouteError(name, `a plain route's path has no parameters (use defineRoom for a room): ${path}`);
  }
  if (/\/(poll|messages|history)(\/|$)/.test(path)) {
    throw new RouteError(name, `"/poll", "/messages" and "/history" are the kit's own sub-paths of a route: ${path}`);
  }
}

// Without initialState, the state schema must produce a state from `{}`: checked now, not at the first connection.
function checkState(name: string, options: CommonOptions<v.GenericSchema | undefined>): void {
  if (!options.state || options.initialState) return;
  const parsed = v.safeParse(options.state, {});
  if (!parsed.success) {
    throw new RouteError(
      name,
      `its state schema does not accept {} (${describeIssues(parsed.issues)}): give it an initialState`,
    );
  }
}

// Room state is a room route's; without initialRoomState its schema must make a state from `{}`.
function checkRoomState(name: string, kind: "plain" | "room", options: RouteDefinition["options"]): void {
  const { roomState, initialRoomState, view, viewSchema, maxRoomStateBytes } = options;
  if (!roomState) {
    if (initialRoomState || view || viewSchema || maxRoomStateBytes !== undefined)
      throw new RouteError(name, "initialRoomState, view, viewSchema and maxRoomStateBytes need a roomState schema");
    return;
  }
  if (kind !== "room") throw new RouteError(name, "room state belongs to room routes (defineRoom)");
  const max = maxRoomStateBytes ?? DEFAULT_ROOM_STATE_MAX_BYTES;
  if (!Number.isInteger(max) || max < 2 || max > MAX_ROOM_STATE_BYTES)
    throw new RouteError(name, `maxRoomStateBytes is an integer from 2 to ${MAX_ROOM_STATE_BYTES}, not ${max}`);
  if (initialRoomState) return;
  const parsed = v.safeParse(roomState, {});
  if (!parsed.success) {
    throw new RouteError(
      name,
      `its roomState schema does not accept {} (${describeIssues(parsed.issues)}): give it an initialRoomState`,
    );
  }
}

function define<Kind extends "plain" | "room">(kind: Kind, options: RouteDefinition["options"]): RouteDefinition<Kind> {
  const name = options.name ?? defaultName(options.path);
  if (name === "") throw new RouteError(options.path, "give the route a name (its path has no fixed segment)");
  checkPath(name, options.path, kind);
  // A room's key everywhere (Redis, Durable Object names, claims) is "<route>:<room>".
  if (name.includes(":"))
    throw new RouteError(name, 'a route\'s name cannot hold ":" (rooms are keyed "<route>:<room>")');
  checkState(name, options);
  checkRoomState(name, kind, options);
  if (kind === "room" && options.publishes && !options.message) {
    throw new RouteError(
      name,
      "publishes needs a message handler: without one, the client's data is published as it is",
    );
  }
  if (kind === "plain" && options.text === "bytes" && options.schema) {
    throw new RouteError(name, 'text: "bytes" is for raw routes; a route with a schema reads text as JSON');
  }
  return { kind, name, path: options.path, options };
}

/** Define a plain route: one connection at a time, no room (echo, request/response, a private feed). */
export function defineRoute<
  TSchema extends v.GenericSchema | undefined = undefined,
  TState extends v.GenericSchema | undefined = undefined,
>(
  options: RouteOptions<TSchema, TState>,
): RouteDefinition<
  "plain",
  InputOr<TSchema, string | Uint8Array>,
  OutputOr<TSchema, string | Uint8Array>,
  StateOf<TState>
> {
  return define("plain", options as RouteDefinition["options"]) as RouteDefinition<"plain", never, never, never>;
}

/** Define a room route: members of a room (its path parameters' values) share presence, one message order (`seq`), history and resume. */
export function defineRoom<
  TSchema extends v.GenericSchema | undefined = undefined,
  TState extends v.GenericSchema | undefined = undefined,
  TPublish extends v.GenericSchema | undefined = undefined,
  const TPath extends string = string,
  TInfo = never,
  TRoomState extends v.GenericSchema | undefined = undefined,
  TView = StateOf<TRoomState>,
>(
  options: RoomOptions<TSchema, TState, TPublish, TPath, TInfo, TRoomState, TView>,
): RouteDefinition<
  "room",
  InputOr<TSchema, unknown>,
  PublishedOf<TSchema, TPublish>,
  StateOf<TState>,
  TPath,
  TInfo,
  TRoomState extends v.GenericSchema ? TView : undefined
> {
  return define("room", options as RouteDefinition["options"]) as RouteDefinition<
    "room",
    never,
    never,
    never,
    TPath,
    TInfo,
    never
  >;
}
