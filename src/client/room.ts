/**
 * A typed room client on top of EdgewireSocket: join `/rooms/:room`, publish
 * with acknowledgement, receive messages and presence, keep the member list
 * current, and re-join by itself after a reconnect (a new welcome arrives).
 * Pass a valibot schema and the message type is inferred from it, incoming
 * data is checked with it, and what fails the check surfaces as `invalid`.
 */
import * as v from "valibot";
import { viewOf } from "../bytes.ts";
import { pathParams, type RoomParams, roomName, roomParams, roomPath } from "../core/room-path.ts";
import type { RouteDefinition } from "../core/route.ts";
import {
  type AckFrame,
  type BroadcastFrame,
  describeIssues,
  type ErrorFrame,
  type Member,
  type MessageFrame,
  type PresenceFrame,
  type ResyncFrame,
  roomNameSchema,
  SUBPROTOCOL,
  type ViewFrame,
  type WelcomeFrame,
} from "../protocol.ts";
import type { CloseInfo, ReconnectingEvent, TransportEvent, TransportKind } from "./events.ts";
import { EdgewireSocket, type EdgewireSocketOptions } from "./socket.ts";

const ROOM_NAME_256 = roomNameSchema(256);

/** A room message whose `data` has the room's type. */
export type RoomMessage<Data = unknown> = MessageFrame<Data>;

/** A page of a room's history (`RoomClient.history`, `GET {route}/history`). */
export interface RoomHistory<Data = unknown> {
  room: string;
  /** the room's epoch: `seq`s of another epoch are not comparable */
  epoch: string;
  /** the room's last seq now */
  seq: number;
  messages: RoomMessage<Data>[];
  /** more after the last message: pass it as `after` */
  next?: number;
}

/** What a successful publish resolves to. */
export interface PublishResult {
  /** the message's place in the room's one order; absent when the route's handler acknowledged without publishing */
  seq?: number;
}

/** A frame from the server that the client could not use. */
export interface InvalidFrame {
  /** the frame as received (text, or the parsed message frame) */
  raw: unknown;
  /** why it was refused, one line */
  message: string;
  /** the schema's issues, when a schema refused the message's data */
  issues?: readonly v.BaseIssue<unknown>[];
}

/**
 * Messages this client may never receive: the server could not resume it
 * exactly (`resync`), because the room's history was lost (`epoch_changed`)
 * or no longer reaches back (`history_truncated`). Only ever from the server.
 */
export interface RoomGap {
  /** first missed seq (of the old epoch, for `epoch_changed`) */
  from: number;
  /** last missed seq; undefined for `epoch_changed` (the old epoch's end was lost with its history) */
  to: number | undefined;
  /** why the resume was not exact */
  reason: ResyncFrame["reason"];
  /** the room's epoch from now on */
  epoch: string;
}

/** A stateful room's view changed (`RoomClient.state` already holds it): the view, and the seq it is as of. */
export interface RoomStateChange<View = unknown> {
  view: View;
  /** the seq of the frame that carried it (the welcome's, a message's or a view frame's) */
  seq: number;
}

/** Events of a RoomClient and what their listeners receive. */
export interface RoomEventMap<Data, Info = unknown, View = unknown> {
  /** joined (also after every reconnect); id and members are already updated */
  welcome: WelcomeFrame<Info>;
  /** a published message (own ones included), data validated when a schema is set */
  message: RoomMessage<Data>;
  /** an unsequenced message another member's handler broadcast (typing indicators, cursor moves) */
  broadcast: BroadcastFrame<Data>;
  /** a stateful room's view arrived (in a welcome) or changed (after a transaction), in seq order with the messages */
  state: RoomStateChange<View>;
  /** a member joined, left or changed its info (`update`), the list was re-sent (`sync`) or a large room's count changed (`count`); members and count are already updated */
  presence: PresenceFrame<Info>;
  /** a frame the client could not use (not JSON, or data failing the schema) */
  invalid: InvalidFrame;
  /** an error frame not tied to a publish (those reject the publish instead) */
  error: ErrorFrame;
  /** binary relayed by another member */
  binary: ArrayBuffer;
  /** after a re-join the server could not resume exactly: messages this client will not receive (never a silent gap) */
  gap: RoomGap;
  /** the connection dropped or an attempt failed; another follows */
  reconnecting: ReconnectingEvent;
  /** the socket switched transport: the same event EdgewireSocket dispatches (`transport`, `previous`, `reason`) */
  transport: TransportEvent;
  /** closed for good */
  close: CloseInfo;
}

/**
 * How a room client puts frames on the wire when not as JSON text: `msgpack`
 * from `edgewire/client/msgpack` (kept out of this module so a JSON client
 * does not carry a MessagePack library).
 */
export interface RoomCodec {
  /** the subprotocol that selects it */
  readonly protocol: string;
  /** a client frame (`{type:"publish",…}`) as a binary frame */
  encode(frame: { readonly type: string }): Uint8Array;
  /** bytes to relay, as a binary frame */
  relay(bytes: Uint8Array): Uint8Array;
  /** a binary frame from the server: a frame in its JSON shape, or the bytes a member relayed; throws when malformed */
  decode(bytes: Uint8Array, room: string): unknown;
}

/** Options of a room client: the socket's options, plus a schema for `data`. */
export interface RoomOptions extends EdgewireSocketOptions {
  /** subprotocols to offer (default `edgewire.v1`, or the codec's) */
  protocols?: string | string[];
  /** frames in another encoding than JSON text, e.g. `msgpack` from `edgewire/client/msgpack` */
  codec?: RoomCodec;
  /** the room route's path on the server, with its parameters (default "/rooms/:room"; e.g. "/chat/:room", "/org/:org/board/:board") */
  path?: string;
  /** valibot schema of message data: incoming data is validated with it, publish() input too */
  schema?: v.GenericSchema;
}

/** Why a publish failed, or the client could not be built; `code` is a stable string. */
export class RoomError extends Error {
  /** the server's error code (`invalid_message`, …) or the client's (`closed`, `connection_lost`, `invalid_room`) */
  readonly code: string;
  /** an error with a stable code */
  constructor(code: string, message: string) {
    super(message);
    this.name = "RoomError";
    this.code = code;
  }
}

/** A room as joinRoom takes it: its name (`lobby`; `acme/b1` for several parameters), or its path parameters. */
export type RoomArg = string | Readonly<Record<string, string>>;

/**
 * The name of room `room` on the route at `path`: the value of its one parameter, or the values of
 * its parameters joined by "/" in path order. Throws RoomError for a bad path or value.
 */
export function roomNameOf(room: RoomArg, path = "/rooms/:room"): string {
  const names = pathParams(path);
  if (!path.startsWith("/") || names.length === 0) {
    throw new RoomError("invalid_path", `a room route's path starts with "/" and has a parameter (/:room): ${path}`);
  }
  const params = typeof room === "string" ? roomParams(names, room) : room;
  if (params === undefined) {
    throw new RoomError("invalid_room", `${path} names a room by ${names.length} values: ${names.join(", ")}`);
  }
  for (const name of names) {
    // The server decides the length (EDGEWIRE_MAX_ROOM_NAME, at most 256); the client checks only the characters.
    const parsed = v.safeParse(ROOM_NAME_256, params[name]);
    if (!parsed.success) {
      const which = names.length > 1 ? `${name}: ` : "";
      throw new RoomError("invalid_room", which + describeIssues(parsed.issues));
    }
  }
  return roomName(names, params);
}

/**
 * The URL of `room` under `baseUrl` on the route at `path` (`ws://host/prefix` →
 * `ws://host/prefix/rooms/room`); throws RoomError for a bad room name or path.
 */
export function roomUrl(baseUrl: string | URL, room: RoomArg, path = "/rooms/:room"): string {
  const name = roomNameOf(room, path);
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  const url = new URL(String(baseUrl), base);
  // Room names are letters, digits and `_ - .`: nothing to escape.
  url.pathname = `${url.pathname.replace(/\/+$/, "")}${roomPath(path, name)}`;
  return url.href;
}

/** `url` asking to resume after `seq` of `epoch` (query parameters the server's admission reads). */
export function resumeUrl(url: string, seq: number, epoch: string): string {
  const u = new URL(url);
  u.searchParams.set("seq", String(seq));
  u.searchParams.set("epoch", epoch);
  return u.href;
}

type Listener<T> = (value: T) => void;

interface Pending {
  resolve: (result: PublishResult) => void;
  reject: (error: RoomError) => void;
  /** the publish frame's size on the wire */
  bytes: number;
}

/** A frame's size on the wire in bytes (what the server's limit counts). */
const frameBytes = (frame: string | Uint8Array): number =>
  typeof frame === "string" ? new TextEncoder().encode(frame).byteLength : frame.byteLength;

/** The limit a 1009 close names ("message_too_large: limit is 65536 bytes"), if it names one. */
function limitOf(reason: string): number | undefined {
  const m = /limit is (\d+) bytes/.exec(reason);
  return m ? Number(m[1]) : undefined;
}

/**
 * The code and message of a refused connection (close 4400–4499: the server answered a 4xx before the
 * upgrade — the route's own code, `invalid_state`, `unauthorized`…), if that is how the socket closed.
 */
function refusalOf(code: number, reason: string): RoomError | undefined {
  if (code < 4400 || code > 4499) return undefined;
  const colon = reason.indexOf(": ");
  const what = colon > 0 ? reason.slice(0, colon) : reason || `http_${code - 4000}`;
  return new RoomError(
    what,
    colon > 0 ? reason.slice(colon + 2) : `the server refused the connection (HTTP ${code - 4000})`,
  );
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;
const isMember = <Info>(value: unknown): value is Member<Info> => isObject(value) && typeof value.id === "string";

// A listener that throws must not stop the others, nor vanish: it is reported
// the way the platform reports an EventTarget listener's exception.
function report(error: unknown): void {
  const reportError = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof reportError === "function") reportError(error);
  else
    setTimeout(() => {
      throw error;
    }, 0);
}

/**
 * One membership of one room. `Data` is the type of message data (inferred
 * from `schema` by joinRoom); `Input` what publish() takes (the schema's input).
 */
export class RoomClient<Data = unknown, Input = Data, Info = unknown, View = unknown> {
  /** the room's name (its parameters' values joined by "/" where its path has several) */
  readonly room: string;
  /** the room's path parameters (`{ room: "lobby" }`, `{ org: "acme", board: "b1" }`) */
  readonly params: Readonly<Record<string, string>>;
  /** the socket underneath (WebSocket API; its events are also re-emitted here) */
  readonly socket: EdgewireSocket;
  /** resolves with the first welcome; rejects if the client closes before it */
  readonly ready: Promise<WelcomeFrame<Info>>;

  readonly #schema: v.GenericSchema<Input, Data> | undefined;
  readonly #codec: RoomCodec | undefined;
  readonly #listeners = new Map<keyof RoomEventMap<Data, Info, View>, Set<Listener<never>>>();
  readonly #pending = new Map<string, Pending>();
  /** acknowledged publishes whose message has not reached this client yet, with the welcome they were judged against */
  readonly #acked: { seq: number; gen: number; resolve: () => void }[] = [];
  /** acks that came before this connection's welcome (publishes handled while it joined): judged against it */
  readonly #early: { seq: number | undefined; resolve: (result: PublishResult) => void }[] = [];
  /** welcomes so far: an ack judged against an earlier one is of the connection before */
  #gen = 0;
  /** this connection has had its welcome (false again while reconnecting) */
  #live = false;
  readonly #members = new Map<string, Member<Info>>();
  #count = 0;
  #id: string | undefined;
  #seq = 0;
  #epoch = "";
  #welcomed = false;
  #nextId = 0;
  /** a stateful room's view as of `#seq`, once a welcome brought one */
  #view: View | undefined;
  /** the server's frame limit (from the welcome, or a 1009 close): larger publishes are refused here */
  #maxMessageBytes = Number.POSITIVE_INFINITY;
  readonly #fetch: (url: string) => Promise<Response>;
  /** the heartbeat follows the server's (the caller did not set one) */
  readonly #followHeartbeat: boolean;
  #settle: { resolve: (welcome: WelcomeFrame<Info>) => void; reject: (error: RoomError) => void } | undefined;

  /** join `room` on the server at `baseUrl` (ws(s) or http(s)); prefer joinRoom() for type inference */
  constructor(
    baseUrl: string | URL,
    room: RoomArg,
    options: RoomOptions & { schema?: v.GenericSchema<Input, Data> } = {},
  ) {
    const { codec, schema, path, protocols: offered, ...socketOptions } = options;
    const given = offered === undefined ? [] : [offered].flat();
    // A codec's subprotocol is offered first whatever else is (a token entry, say): a server that
    // picked another would read its binary publishes as relays.
    const protocols = codec ? [codec.protocol, ...given.filter((p) => p !== codec.protocol)] : (offered ?? SUBPROTOCOL);
    this.#codec = codec;
    const givenFetch = socketOptions.fetch;
    this.#fetch = (url) => (givenFetch ? givenFetch(url, {}) : globalThis.fetch(url));
    this.#followHeartbeat = socketOptions.heartbeat === undefined;
    this.room = roomNameOf(room, path);
    this.params = Object.freeze(roomParams(pathParams(path ?? "/rooms/:room"), this.room) ?? {});
    this.#schema = schema;
    this.ready = new Promise<WelcomeFrame<Info>>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // Nobody has to await `ready`; an unobserved rejection must not crash Node.
    this.ready.catch(() => {});
    // Rooms answer {"type":"ping"}: the socket detects a dead connection by itself, at the server's
    // heartbeat once a welcome says it (25 s until then, the server's default).
    this.socket = new EdgewireSocket(roomUrl(baseUrl, this.room, path), protocols, {
      heartbeat: { intervalMs: 25_000 },
      ...socketOptions,
      // Every re-join resumes after the last seq seen, in its epoch: the server replays what was missed.
      attemptUrl: (url) => (this.#welcomed && this.#epoch ? resumeUrl(url, this.#seq, this.#epoch) : url),
    });
    this.socket.binaryType = "arraybuffer";
    this.socket.addEventListener("message", (event) => this.#received(event.data));
    this.socket.addEventListener("reconnecting", (event) => {
      // 1009: the server refused a frame for its size, so that publish was not published (the
      // server closes before handling a frame it refuses); learn the limit, and say so.
      if (event.code === 1009) this.#tooLarge(limitOf(event.reason));
      this.#live = false;
      // What the dropped connection carried may or may not have reached the
      // server; the caller decides whether to publish again.
      if (event.dropped) {
        this.#rejectAll(
          "connection_lost",
          "the connection dropped before the publish was acknowledged; it may or may not have been published",
        );
      }
      this.#emit("reconnecting", event);
    });
    this.socket.addEventListener("transport", (event: TransportEvent) => this.#emit("transport", event));
    this.socket.addEventListener("close", (event) => {
      // A refused join (a 4xx before the upgrade) is final: `ready` rejects with the server's code.
      const refused = refusalOf(event.code, event.reason);
      this.#release("all");
      if (refused) this.#rejectAll(refused.code, refused.message);
      else this.#rejectAll("closed", `the room client closed (${event.code} ${event.reason})`);
      this.#settle?.reject(refused ?? new RoomError("closed", `closed before joining (${event.code} ${event.reason})`));
      this.#settle = undefined;
      this.#emit("close", { code: event.code, reason: event.reason, wasClean: event.wasClean });
    });
  }

  /** this client's member id (a new one after each re-join); undefined before the first welcome */
  get id(): string | undefined {
    return this.#id;
  }

  /**
   * The room's members, kept current from the welcome and presence frames (this
   * client included). Complete while `count` is within the server's presence
   * limit (default 100); above it, the oldest members up to the limit as of the
   * welcome or the last `sync`.
   */
  get members(): Member<Info>[] {
    return [...this.#members.values()];
  }

  /** how many members the room has (this client included), kept current in rooms of every size */
  get count(): number {
    return this.#count;
  }

  /** the last sequence number seen (from the welcome or a message) */
  get seq(): number {
    return this.#seq;
  }

  /**
   * A stateful room's view — what its route shows members of the room state — as of `seq`, the last
   * frame seen: from the welcome, then from every change in the room's one order (the `state` event).
   * Undefined before the first welcome and on rooms without room state.
   */
  get state(): View | undefined {
    return this.#view;
  }

  /** the epoch `seq` belongs to (from the welcome) */
  get epoch(): string {
    return this.#epoch;
  }

  /** the socket's readyState */
  get readyState(): number {
    return this.socket.readyState;
  }

  /** the transport in use: "websocket" or "polling" */
  get transport(): TransportKind {
    return this.socket.transport;
  }

  /** listen to an event; returns a function that stops listening */
  on<K extends keyof RoomEventMap<Data, Info, View>>(
    type: K,
    listener: Listener<RoomEventMap<Data, Info, View>[K]>,
  ): () => void {
    let set = this.#listeners.get(type);
    if (!set) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(type, listener);
  }

  /** stop listening */
  off<K extends keyof RoomEventMap<Data, Info, View>>(
    type: K,
    listener: Listener<RoomEventMap<Data, Info, View>[K]>,
  ): void {
    this.#listeners.get(type)?.delete(listener as Listener<never>);
  }

  /**
   * Publish `data` to the room; resolves with its `seq` once the server acked it and this client
   * holds its message (docs/client.md).
   * Rejects with RoomError: the schema refused the data (`invalid_message`),
   * the frame is larger than the server takes (`message_too_large`: not sent,
   * or refused by the server's 1009 — either way not published; the connection
   * resumes), the server refused it (its error code), the connection dropped first
   * (`connection_lost`: it may or may not have been published), or the client
   * closed (`closed`). While reconnecting the publish waits in the send queue.
   */
  publish(data: Input): Promise<PublishResult> {
    if (this.socket.readyState >= EdgewireSocket.CLOSING) {
      return Promise.reject(new RoomError("closed", "the room client is closed"));
    }
    if (this.#schema) {
      const checked = v.safeParse(this.#schema, data);
      if (!checked.success) return Promise.reject(new RoomError("invalid_message", describeIssues(checked.issues)));
    }
    this.#nextId += 1;
    const id = `p${this.#nextId}`;
    let frame: string | Uint8Array;
    try {
      frame = this.#encode({ type: "publish", data, id });
    } catch (error) {
      return Promise.reject(new RoomError("invalid_message", error instanceof Error ? error.message : String(error)));
    }
    const bytes = frameBytes(frame);
    if (bytes > this.#maxMessageBytes) return Promise.reject(this.#tooLargeError(bytes));
    return new Promise<PublishResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, bytes });
      try {
        this.socket.send(frame);
      } catch (error) {
        this.#pending.delete(id);
        reject(error);
      }
    });
  }

  /**
   * Send `data` to the room's route without waiting for an acknowledgement (no
   * `id`): for frequent, droppable updates such as typing indicators or cursor
   * moves. Throws RoomError (`invalid_message`) when the schema refuses it.
   */
  send(data: Input): void {
    if (this.#schema) {
      const checked = v.safeParse(this.#schema, data);
      if (!checked.success) throw new RoomError("invalid_message", describeIssues(checked.issues));
    }
    this.socket.send(this.#encode({ type: "publish", data }));
  }

  #encode(frame: { type: string; data: unknown; id?: string }): string | Uint8Array {
    return this.#codec ? this.#codec.encode(frame) : JSON.stringify(frame);
  }

  /**
   * A page of the room's history: messages after `after` (default 0: the
   * oldest kept), at most `limit` (default 100, at most 1000), with the room's
   * current `seq` and `epoch`; `next` is the `after` of the following page.
   */
  async history(options: { after?: number; limit?: number } = {}): Promise<RoomHistory<Data>> {
    const url = new URL(this.socket.url);
    url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    url.pathname = `${url.pathname.replace(/\/+$/, "")}/history`;
    url.searchParams.set("after", String(options.after ?? 0));
    url.searchParams.set("limit", String(options.limit ?? 100));
    const res = await this.#fetch(url.href);
    const body = (await res.json()) as RoomHistory<unknown> & { error?: { code: string; message: string } };
    if (!res.ok)
      throw new RoomError(body.error?.code ?? `http_${res.status}`, body.error?.message ?? `HTTP ${res.status}`);
    if (!this.#schema) return body as RoomHistory<Data>;
    const schema = this.#schema;
    return { ...body, messages: body.messages.map((m) => ({ ...m, data: v.parse(schema, m.data) })) };
  }

  /** send bytes to every other member (not sequenced, not kept in history); with a codec, not a Blob (it would be read out of order) */
  relay(data: ArrayBuffer | ArrayBufferView | Blob): void {
    if (!this.#codec) return void this.socket.send(data);
    if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data))
      throw new TypeError("relay() with a codec takes an ArrayBuffer or a view, not a Blob");
    this.socket.send(this.#codec.relay(viewOf(data)));
  }

  /** leave the room for good (no reconnect) */
  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  // Text is JSON on every encoding (a Durable Object answers a text ping with a text pong); a
  // route's compact broadcast, positional [1, from, data] as MessagePack's, comes in its object form.
  #fromText(text: string): { frame: unknown } | undefined {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.#emit("invalid", { raw: text, message: "the frame is not JSON" });
      return undefined;
    }
    if (!Array.isArray(frame) || frame.length !== 3 || frame[0] !== 1 || typeof frame[1] !== "string") return { frame };
    return { frame: { type: "broadcast", room: this.room, from: frame[1], data: frame[2] } };
  }

  #received(data: unknown): void {
    let frame: unknown;
    if (typeof data !== "string") {
      if (!(data instanceof ArrayBuffer)) return;
      if (!this.#codec) return void this.#emit("binary", data);
      try {
        frame = this.#codec.decode(new Uint8Array(data), this.room);
      } catch (error) {
        this.#emit("invalid", { raw: data, message: `the frame is not ${this.#codec.protocol}: ${String(error)}` });
        return;
      }
      if (frame instanceof Uint8Array) {
        // A copy: the decoded bytes may be a view into the frame's buffer.
        this.#emit("binary", frame.slice().buffer);
        return;
      }
    } else {
      const parsed = this.#fromText(data);
      if (!parsed) return;
      frame = parsed.frame;
    }
    if (!isObject(frame) || typeof frame.type !== "string") {
      this.#emit("invalid", { raw: data, message: "the frame has no type" });
      return;
    }
    switch (frame.type) {
      case "welcome":
        this.#welcome(frame as unknown as WelcomeFrame<Info>);
        return;
      case "message":
        this.#message(frame as unknown as MessageFrame);
        return;
      case "view":
        this.#viewFrame(frame as unknown as ViewFrame<View>);
        return;
      case "presence":
        this.#presence(frame as unknown as PresenceFrame<Info>);
        return;
      case "broadcast":
        this.#broadcast(frame as unknown as BroadcastFrame);
        return;
      case "resync":
        this.#resync(frame as unknown as ResyncFrame);
        return;
      case "ack":
        this.#ack(frame as unknown as AckFrame);
        return;
      case "error": {
        const error = frame as unknown as ErrorFrame;
        const pending = error.id === undefined ? undefined : this.#pending.get(error.id);
        if (pending && error.id !== undefined) {
          this.#pending.delete(error.id);
          pending.reject(new RoomError(error.code, error.message));
        } else this.#emit("error", error);
        return;
      }
      default:
        // pong, and frame types of a newer server: nothing to do
        return;
    }
  }

  #welcome(welcome: WelcomeFrame<Info>): void {
    if (typeof welcome.id !== "string" || typeof welcome.seq !== "number" || !Array.isArray(welcome.members)) {
      this.#emit("invalid", { raw: welcome, message: "malformed welcome" });
      return;
    }
    if (this.#codec && welcome.protocol !== this.#codec.protocol) {
      // A server that does not speak the codec's encoding (an older one) answered another protocol:
      // nothing this client sends would mean what it should there. Not retried: it would answer the same.
      const error = new RoomError(
        "unsupported_protocol",
        `the server answered ${welcome.protocol || "no subprotocol"}, not ${this.#codec.protocol}`,
      );
      this.#settle?.reject(error);
      this.#settle = undefined;
      this.socket.close(1000, "unsupported_protocol");
      return;
    }
    this.#welcomed = true;
    this.#id = welcome.id;
    this.#members.clear();
    for (const member of welcome.members) if (isMember(member)) this.#members.set(member.id, member);
    // A server older than `count` sent every member.
    this.#count = typeof welcome.count === "number" ? welcome.count : this.#members.size;
    this.#seq = welcome.seq;
    // Acknowledged seqs of another epoch will never arrive in this one.
    const epochChanged = typeof welcome.epoch === "string" && this.#epoch !== "" && welcome.epoch !== this.#epoch;
    if (typeof welcome.epoch === "string") this.#epoch = welcome.epoch;
    if (typeof welcome.maxMessageBytes === "number" && welcome.maxMessageBytes > 0)
      this.#maxMessageBytes = welcome.maxMessageBytes;
    if (typeof welcome.heartbeatMs === "number" && welcome.heartbeatMs > 0 && this.#followHeartbeat) {
      this.socket.setHeartbeat(welcome.heartbeatMs);
    }
    // Before `ready` resolves, so `await room.ready` finds the view in `room.state`.
    if ("view" in welcome) this.#view = welcome.view as View;
    this.#settle?.resolve(welcome);
    this.#settle = undefined;
    this.#emit("welcome", welcome);
    if ("view" in welcome) this.#emit("state", { view: welcome.view as View, seq: welcome.seq });
    this.#gen++;
    this.#release(epochChanged ? "stale" : undefined);
    this.#live = true;
    for (const early of this.#early.splice(0)) this.#settleAck(early.seq, early.resolve);
  }

  #resync(r: ResyncFrame): void {
    const epochChanged = r.epoch !== this.#epoch;
    this.#seq = r.seq;
    this.#epoch = r.epoch;
    this.#emit("gap", {
      from: r.from,
      to: typeof r.to === "number" ? r.to : undefined,
      reason: r.reason,
      epoch: r.epoch,
    });
    // epoch_changed also with the same epoch (the room's history fell behind the client's seq, as
    // when Redis lost its last writes): seqs acknowledged before may never come back.
    this.#release(epochChanged || r.reason === "epoch_changed" ? "stale" : undefined);
  }

  #ack(ack: AckFrame): void {
    const pending = this.#pending.get(ack.id);
    if (!pending) return;
    this.#pending.delete(ack.id);
    const seq = typeof ack.seq === "number" ? ack.seq : undefined;
    // A publish handled while this connection joined: its seq is of the welcome still to come.
    if (!this.#live) this.#early.push({ seq, resolve: pending.resolve });
    else this.#settleAck(seq, pending.resolve);
  }

  // Read your own writes: on a fleet the ack comes with the commit and can outrun the message, which
  // comes through the broker's fan-out. Resolved once this client holds what it published (its
  // message, and a stateful room's `state` after it), as on one instance.
  #settleAck(seq: number | undefined, resolve: (result: PublishResult) => void): void {
    if (seq === undefined) resolve({});
    else if (seq > this.#seq) this.#acked.push({ seq, gen: this.#gen, resolve: () => resolve({ seq }) });
    else resolve({ seq });
  }

  #viewFrame(change: ViewFrame<View>): void {
    if (typeof change.seq !== "number" || !("view" in change)) {
      this.#emit("invalid", { raw: change, message: "view frame without seq or view" });
      return;
    }
    this.#seq = change.seq;
    this.#viewChanged(change.view, change.seq);
    this.#release();
  }

  #viewChanged(view: View, seq: number): void {
    this.#view = view;
    this.#emit("state", { view, seq });
  }

  #message(frame: MessageFrame): void {
    if (typeof frame.seq !== "number") {
      this.#emit("invalid", { raw: frame, message: "message without seq" });
      return;
    }
    this.#seq = frame.seq;
    // The view rides on the last message of its transaction: held before the message is told, so a
    // listener reading `state` sees the view as of this message's seq.
    const changed = "view" in frame;
    if (changed) this.#view = frame.view as View;
    this.#deliver(frame);
    if (changed) this.#emit("state", { view: frame.view as View, seq: frame.seq });
    this.#release();
  }

  // Resolve the acknowledged publishes this client now holds the message of; "stale": also those
  // judged against an earlier welcome, whose seqs this epoch may never reach (another epoch, or a
  // room that fell behind); "all": every one (the client closed). Each was committed.
  #release(mode?: "stale" | "all"): void {
    if (mode === "all")
      for (const early of this.#early.splice(0)) early.resolve(early.seq === undefined ? {} : { seq: early.seq });
    if (this.#acked.length === 0) return;
    const waiting: { seq: number; gen: number; resolve: () => void }[] = [];
    for (const acked of this.#acked.splice(0)) {
      if (mode === "all" || acked.seq <= this.#seq || (mode === "stale" && acked.gen < this.#gen)) acked.resolve();
      else waiting.push(acked);
    }
    this.#acked.push(...waiting);
  }

  #deliver(frame: MessageFrame): void {
    if (!this.#schema) {
      this.#emit("message", frame as RoomMessage<Data>);
      return;
    }
    const checked = v.safeParse(this.#schema, frame.data);
    if (!checked.success) {
      this.#emit("invalid", { raw: frame, message: describeIssues(checked.issues), issues: checked.issues });
      return;
    }
    this.#emit("message", { ...frame, data: checked.output });
  }

  #broadcast(frame: BroadcastFrame): void {
    if (!this.#schema) {
      this.#emit("broadcast", frame as BroadcastFrame<Data>);
      return;
    }
    const checked = v.safeParse(this.#schema, frame.data);
    if (!checked.success) {
      this.#emit("invalid", { raw: frame, message: describeIssues(checked.issues), issues: checked.issues });
      return;
    }
    this.#emit("broadcast", { ...frame, data: checked.output });
  }

  #presence(frame: PresenceFrame<Info>): void {
    if (typeof frame.count !== "number") {
      this.#emit("invalid", { raw: frame, message: "presence without a count" });
      return;
    }
    if (frame.event === "sync") {
      if (!Array.isArray(frame.members)) {
        this.#emit("invalid", { raw: frame, message: "presence sync without members" });
        return;
      }
      this.#members.clear();
      for (const member of frame.members) if (isMember(member)) this.#members.set(member.id, member);
    } else if (frame.event === "join" || frame.event === "leave" || frame.event === "update") {
      if (!isMember(frame.member)) {
        this.#emit("invalid", { raw: frame, message: "presence without a member" });
        return;
      }
      if (frame.event === "join") this.#members.set(frame.member.id, frame.member);
      else if (frame.event === "leave") this.#members.delete(frame.member.id);
      // Only a member in the list: a late update about one that has left must not bring it back.
      else if (this.#members.has(frame.member.id)) this.#members.set(frame.member.id, frame.member);
    }
    this.#count = frame.count;
    this.#emit("presence", frame);
  }

  #tooLargeError(bytes: number): RoomError {
    return new RoomError(
      "message_too_large",
      `the publish is ${bytes} bytes on the wire; the server takes at most ${this.#maxMessageBytes}: not published`,
    );
  }

  // The server closed with 1009: the publishes over its limit were refused, not lost (the others are).
  #tooLarge(limit: number | undefined): void {
    if (limit !== undefined) this.#maxMessageBytes = limit;
    for (const [id, pending] of this.#pending) {
      if (pending.bytes <= this.#maxMessageBytes) continue;
      this.#pending.delete(id);
      pending.reject(this.#tooLargeError(pending.bytes));
    }
  }

  #rejectAll(code: string, message: string): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(new RoomError(code, message));
  }

  #emit<K extends keyof RoomEventMap<Data, Info, View>>(type: K, value: RoomEventMap<Data, Info, View>[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<RoomEventMap<Data, Info, View>[K]>)(value);
      } catch (error) {
        report(error);
      }
    }
  }
}

/** What a room's messages carry when typed by `T`: a route definition's output, or `T` itself. */
export type DataOf<T> = T extends RouteDefinition<"room", infer _I, infer O, infer _S> ? O : T;
/** What publish() takes when typed by `T`: a route definition's input, or `T` itself. */
export type InputOf<T> = T extends RouteDefinition<"room", infer I, infer _O, infer _S> ? I : T;
/** What members see of each other when typed by a route: its `member` option's result; `unknown` otherwise. */
export type InfoOf<T> =
  T extends RouteDefinition<"room", infer _I, infer _O, infer _S, infer _P, infer Info> ? Info : unknown;
/** What a stateful room's members see of its state when typed by a route: its `view`'s result (or its `roomState`); `unknown` otherwise. */
export type ViewOf<T> =
  T extends RouteDefinition<"room", infer _I, infer _O, infer _S, infer _P, infer _Info, infer View> ? View : unknown;

/**
 * The options joinRoom takes for `T`: none that type-check when `T` is a plain route (it has no room,
 * so no member of it could join one) — the error names the mistake instead of typing data as the route;
 * for a room route, `path` must be the route's own (a typo would join a path nothing serves).
 */
export type RoomOptionsFor<T> = T extends { readonly kind: "plain" }
  ? [options: NotARoomRoute]
  : T extends { readonly kind: "room"; readonly path: infer P extends string }
    ? string extends P
      ? [options?: RoomOptions]
      : // Typed by a route: its path is the only one that fits, and must be given unless it is the default.
        P extends "/rooms/:room"
        ? [options?: RoomOptions & { path?: P }]
        : [options: RoomOptions & { path: P }]
    : [options?: RoomOptions];
/** Whether a union has exactly one member. */
type Single<U, All = U> = [U] extends [never] ? false : U extends unknown ? ([All] extends [U] ? true : false) : never;

/**
 * The room joinRoom takes for `T`: typed by a room route, its parameters (`{ org, board }`), all of
 * them required — or, where the path has one, its value as a string too; else a name or parameters.
 */
export type RoomArgFor<T> = T extends { readonly kind: "room"; readonly path: infer P extends string }
  ? string extends P
    ? RoomArg
    : true extends Single<import("../core/room-path.ts").ParamNames<P>>
      ? string | RoomParams<P>
      : RoomParams<P>
  : RoomArg;

/** What joinRoom wants in place of options for a plain route: nothing can be one (its one property is `never`). */
export interface NotARoomRoute {
  "joinRoom<typeof route> needs a room route (defineRoom); this one is plain": never;
}

/** Join `room` with message data typed by a valibot schema: `Data` is the schema's output, invalid data surfaces as `invalid`. */
export function joinRoom<TSchema extends v.GenericSchema>(
  baseUrl: string | URL,
  room: RoomArg,
  options: RoomOptions & { schema: TSchema },
): RoomClient<v.InferOutput<TSchema>, v.InferInput<TSchema>>;
/**
 * Join `room`, typed by the server's route (`joinRoom<typeof chat>(url, "lobby", { path: "/chat/:room" })`;
 * `joinRoom<typeof board>(url, { org: "acme", board: "b1" }, { path: "/org/:org/board/:board" })`):
 * publish() takes the route's input, message events carry its output. Or give `Data` directly (unchecked).
 */
export function joinRoom<T = unknown>(
  baseUrl: string | URL,
  room: RoomArgFor<T>,
  ...options: RoomOptionsFor<T>
): RoomClient<DataOf<T>, InputOf<T>, InfoOf<T>, ViewOf<T>>;
/** Join a room: a RoomClient. */
export function joinRoom(
  baseUrl: string | URL,
  room: RoomArg,
  options: RoomOptions | NotARoomRoute = {},
): RoomClient<unknown> {
  // No value is a NotARoomRoute (its property is `never`), so what arrives here is RoomOptions.
  return new RoomClient(baseUrl, room, options as RoomOptions);
}
