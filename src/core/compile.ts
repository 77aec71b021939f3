/**
 * A route definition compiled into what the engine runs (a CompiledRoute): parsing, the schema
 * check, the room envelope (`publish`/`ping`), the default publish and the `ack` live here, once
 * per route, so a message costs only what its own handler does. The engine looks these up by a
 * connection record's `route`. A route's own handlers receive the connection's façade
 * (`conn.api`), never the engine's record of it.
 */
import * as v from "valibot";
import { dataIssue, MAX_DATA_DEPTH } from "../message-data.ts";
import { decodedPlain, decodeValue } from "../msgpack.ts";
import {
  type AckFrame,
  ClientFrameSchema,
  describeIssues,
  ErrorCode,
  type Member,
  type MessageFrame,
  type PongFrame,
} from "../protocol.ts";
import { BrokerUnavailableError } from "../pubsub/broker.ts";
import { claimAllows } from "./claims.ts";
import { type CompiledRoute, type Conn, type ConnRecord, DONE, type Frame, type RateLimit } from "./ports.ts";
import { pathParams } from "./room-path.ts";
import { roomStateOf } from "./room-state.ts";
import { type AnyRoute, ClientError, MAX_RECORD_BYTES, RouteError } from "./route.ts";

type Awaitable<T> = T | Promise<T>;

/** setState refused a state for its size: at admission the client's doing (its query made it), later the handler's. */
export class StateTooLargeError extends RouteError {}

const PONG: PongFrame = { type: "pong" };

type Envelope = v.InferOutput<typeof ClientFrameSchema>;

// The two envelopes in their usual shape, without a schema run per frame (a profile of a Bun broadcast
// room put valibot at 6.8 % of the server's time); anything else goes through ClientFrameSchema,
// which answers the same frames the same way and words the errors.
function fastEnvelope(json: unknown): Envelope | undefined {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const frame = json as { type?: unknown; id?: unknown; data?: unknown };
  const { id } = frame;
  if (id !== undefined && (typeof id !== "string" || id.length > 64)) return undefined;
  if (frame.type === "publish")
    return id === undefined ? { type: "publish", data: frame.data } : { type: "publish", data: frame.data, id };
  if (frame.type === "ping") return id === undefined ? { type: "ping" } : { type: "ping", id };
  return undefined;
}

// The id of a frame that failed its schema, so the client can match the error to its publish.
function idOf(json: unknown): string | undefined {
  const id = (json as { id?: unknown } | null)?.id;
  return typeof id === "string" && id.length <= 64 ? id : undefined;
}

/** A frame parsed: its value, and whether it is message data by construction (its walk may be skipped). */
interface Parsed {
  ok: true;
  json: unknown;
  plain: boolean;
}

function parseJson(ctx: Conn, data: Frame): Parsed | undefined {
  try {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    return { ok: true, json: JSON.parse(text), plain: shortJson(text) };
  } catch {
    ctx.error(ErrorCode.invalidJson, "frame is not valid JSON");
    return undefined;
  }
}

// A binary frame on edgewire.v1+msgpack: exactly one MessagePack value (a bin is bytes to relay).
function parseMsgpack(ctx: Conn, data: Frame): Parsed | undefined {
  try {
    const json = decodeValue(data as Uint8Array);
    return { ok: true, json, plain: decodedPlain(data as Uint8Array) };
  } catch (error) {
    ctx.error(ErrorCode.invalidMsgpack, `binary frame is not one MessagePack value (${(error as Error).message})`);
    return undefined;
  }
}

// What a frame carries: text is JSON on every connection; binary is MessagePack where that was negotiated.
const parseFrame = (ctx: Conn, data: Frame, text: boolean) => (text ? parseJson(ctx, data) : parseMsgpack(ctx, data));

const NO_BINARY = "this route takes JSON text frames, not binary";
const NO_BYTES = "this route takes messages, not bytes";

function stateHandling(route: AnyRoute): Pick<CompiledRoute, "initialState" | "setState"> {
  const { state, initialState } = route.options;
  const check = (value: unknown): unknown => {
    if (!state) {
      if (value !== undefined) throw new RouteError(route.name, "has no state schema, so its state stays undefined");
      return undefined;
    }
    const parsed = v.safeParse(state, value);
    if (!parsed.success)
      throw new RouteError(route.name, `state does not match its schema: ${describeIssues(parsed.issues)}`);
    return parsed.output;
  };
  return {
    // Made from the request (query, claims): a state that fails the schema is the client's doing — a
    // 33-character ?name= — refused before the upgrade with the field named, not a server fault.
    initialState(init) {
      if (!state) return undefined;
      const parsed = v.safeParse(state, initialState ? initialState(init) : {});
      if (!parsed.success) throw new ClientError(ErrorCode.invalidState, `state: ${describeIssues(parsed.issues)}`);
      return parsed.output;
    },
    setState(record, next) {
      const previous = record.state;
      record.state = check(next);
      let size: number;
      try {
        size = JSON.stringify(record).length;
      } catch (error) {
        record.state = previous;
        throw new RouteError(route.name, `state is not serialisable JSON (${(error as Error).message})`);
      }
      // Length in UTF-16 units bounds the UTF-8 size from below; count exactly only near the limit.
      if (
        size > MAX_RECORD_BYTES / 3 &&
        new TextEncoder().encode(JSON.stringify(record)).byteLength > MAX_RECORD_BYTES
      ) {
        record.state = previous;
        throw new StateTooLargeError(
          route.name,
          `state makes the connection record larger than ${MAX_RECORD_BYTES} bytes (a Durable Object attachment's limit)`,
        );
      }
    },
  };
}

function memberOf(route: AnyRoute): (record: ConnRecord) => Member {
  const show = route.options.member;
  if (!show) return (record) => ({ id: record.id, joinedAt: record.at });
  return (record) => ({ id: record.id, joinedAt: record.at, info: show(record.state) });
}

// What clients receive as data: the route's `publishes` schema, else what its clients send.
function dataChecker(route: AnyRoute): CompiledRoute["checkData"] {
  const schema = route.options.publishes ?? route.options.schema;
  if (!schema) return (data) => ({ data });
  return (data) => {
    const checked = v.safeParse(schema, data);
    return checked.success ? { data: checked.output } : `data: ${describeIssues(checked.issues)}`;
  };
}

const asIs = (data: unknown): unknown => data;

// A handler publishing what its route says it does not is the route's bug: a fault, named, not a client error.
// The same check a backend push gets (dataChecker: `publishes` when the route has it). Data nested past
// MAX_DATA_DEPTH is refused here too, before it has a seq: deeper, it would overflow a serialiser, or
// the MessagePack encoder would refuse it after JSON members had been sent it.
function publishedChecker(route: AnyRoute): CompiledRoute["published"] {
  const check = route.options.publishes ? dataChecker(route) : undefined;
  return (data, passed) => {
    const deep = passed === true && typeof data === "object" ? undefined : dataIssue(data, false);
    if (deep) throw new RouteError(route.name, `published data is ${deep}`);
    if (!check) return data;
    const checked = check(data);
    if (typeof checked !== "string") return checked.data;
    throw new RouteError(route.name, `published data does not match its publishes schema (${checked})`);
  };
}

// A handler's ClientError refuses one message with an error frame; any other error is a fault.
function refuse(ctx: Conn, error: unknown, id: string | undefined): void {
  if (!(error instanceof ClientError)) throw error;
  ctx.error(error.code, error.message, id);
}

function plain(route: AnyRoute): CompiledRoute {
  const { schema, open, message, close } = route.options;
  const onMessage: CompiledRoute["message"] = !schema
    ? (ctx, data, text) => message?.(ctx.api, data, text)
    : (ctx, data, text) => {
        if (!text && !ctx.msgpack) return void ctx.error(ErrorCode.invalidMessage, NO_BINARY);
        const parsed = parseFrame(ctx, data, text);
        if (!parsed) return;
        if (parsed.json instanceof Uint8Array) return void ctx.error(ErrorCode.invalidMessage, NO_BYTES);
        const issue = dataIssue(parsed.json);
        if (issue) return void ctx.error(ErrorCode.invalidMessage, issue, idOf(parsed.json));
        const checked = v.safeParse(schema, parsed.json);
        if (!checked.success) {
          ctx.error(ErrorCode.invalidMessage, describeIssues(checked.issues), idOf(parsed.json));
          return;
        }
        const id = idOf(parsed.json);
        let result: Awaitable<void>;
        try {
          result = message?.(ctx.api, checked.output, true);
        } catch (error) {
          return refuse(ctx, error, id);
        }
        return result instanceof Promise ? result.catch((error: unknown) => refuse(ctx, error, id)) : undefined;
      };
  return {
    definition: route,
    name: route.name,
    kind: "plain",
    params: [],
    readsText: route.options.text !== "bytes",
    dataAsSent: false,
    compactBroadcasts: false,
    showsMember: false,
    announcesMember: false,
    // Plain routes are limited only when they ask to be (an echo or an RPC answers only its own client).
    rate: typeof route.options.rateLimit === "object" ? route.options.rateLimit : undefined,
    open: (ctx) => open?.(ctx.api),
    message: onMessage,
    close: (ctx, code, reason) => close?.(ctx.api, code, reason),
    member: memberOf(route),
    checkData: dataChecker(route),
    published: asIs,
    roomState: undefined,
    pushHandler: undefined,
    occupied: undefined,
    vacated: undefined,
    timer: undefined,
    ...stateHandling(route),
  };
}

// A token's `publish` claim (room patterns) limits where its holder may publish; no claim, no limit.
const canPublish = (ctx: Conn): boolean => claimAllows(ctx.auth.claims, "publish", ctx.route.name, ctx.ref?.name ?? "");

const isMessageFrame = (value: unknown): value is MessageFrame =>
  typeof value === "object" && value !== null && (value as MessageFrame).type === "message";

// A push handler's body is what a member's publish would carry: checked against the route's `schema`.
function pushHandlerOf(route: AnyRoute): CompiledRoute["pushHandler"] {
  const { push, schema } = route.options;
  if (!push) return undefined;
  return {
    check(data) {
      if (!schema) return { data };
      const checked = v.safeParse(schema, data);
      return checked.success ? { data: checked.output } : `data: ${describeIssues(checked.issues)}`;
    },
    run: async (ctx, data) => ackedSeq(await push(ctx, data)),
  };
}

// The seq a handler's result acknowledges: a published frame's, or a committed transaction's last message's.
// Only a message of the client's own room: the SDK waits for the acked seq in its stream (read your
// own writes), so a seq of another room's message would hold its publish until the room got there.
function ackedSeq(result: unknown, room?: string): number | undefined {
  if (isMessageFrame(result)) return room === undefined || result.room === room ? result.seq : undefined;
  const messages = (result as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages)) return undefined;
  const last: unknown = messages[messages.length - 1];
  return isMessageFrame(last) && (room === undefined || last.room === room) ? last.seq : undefined;
}

// How a room route answers binary: relay it, hand it to the route's handler, or refuse it.
function binaryOf(route: AnyRoute): (ctx: Conn, bytes: Uint8Array) => void | Promise<void> {
  const { binary } = route.options;
  if (binary === "relay") return (ctx, bytes) => ctx.relay(bytes);
  if (typeof binary === "function") return (ctx, bytes) => binary(ctx.api, bytes);
  return (ctx) => void ctx.error(ErrorCode.invalidMessage, NO_BINARY);
}

// A valid publish: to the route's handler (or published as it is), acknowledged with its seq. A
// handler's promise is followed with one then() — no async function around it — and a handler
// that returns no promise is answered at once: this is every update's path.
function publisher(route: AnyRoute): (ctx: Conn, data: unknown, id: string | undefined) => void | Promise<void> {
  const { message } = route.options;
  return (ctx, data, id) => {
    let result: unknown;
    try {
      // Without a handler the client's data is published as it is: already checked (schema and dataIssue),
      // and a route without `message` has no `publishes` — so not walked a second time.
      result = message ? message(ctx.api, data) : ctx.publishChecked(data);
    } catch (error) {
      return refused(ctx, error, id);
    }
    // DONE acknowledges no seq (ackedSeq finds none in it), like any result that is not a promise.
    if (result === DONE || typeof (result as PromiseLike<unknown> | null)?.then !== "function")
      return acked(ctx, result, id);
    return Promise.resolve(result).then(
      (done) => acked(ctx, done, id),
      (error: unknown) => refused(ctx, error, id),
    );
  };
}

function acked(ctx: Conn, result: unknown, id: string | undefined): void {
  if (id === undefined) return;
  const seq = ackedSeq(result, ctx.ref?.name);
  const ack: AckFrame = seq === undefined ? { type: "ack", id } : { type: "ack", id, seq };
  ctx.frame(ack);
}

// Not stored, so not acked: the client publishes again once the broker is back. A ClientError is
// the client's answer; anything else is the route's fault (thrown on, to the engine).
function refused(ctx: Conn, error: unknown, id: string | undefined): void {
  if (error instanceof BrokerUnavailableError) ctx.error(ErrorCode.tryAgainLater, error.message, id);
  else refuse(ctx, error, id);
}

// An exponent of three digits or more: the only way JSON text shorter than 309 characters makes a
// non-finite number (1e999 parses to Infinity).
const BIG_EXPONENT = /[eE][+-]?\d{3}/;

// JSON text this short holds message data by construction: nesting d levels takes 2d characters,
// so it cannot pass MAX_DATA_DEPTH, and JSON.parse makes nothing but JSON's values — a non-finite
// number only from a long exponent (a missing `data` is checked all the same). The walk
// (dataIssue) is skipped for it: the common update is well under 200 characters, and the walk was
// a tenth of the broadcast path's JavaScript.
function shortJson(text: string): boolean {
  return text.length <= 2 * MAX_DATA_DEPTH && !BIG_EXPONENT.test(text);
}

// A room member's frame: binary (or a MessagePack bin) to relay; else the envelope — a ping, or a
// publish whose data passes the claims, the depth check and the route's schema.
function roomMessage(route: AnyRoute): CompiledRoute["message"] {
  const { schema } = route.options;
  const onBinary = binaryOf(route);
  const publish = publisher(route);
  return (ctx, frame, text) => {
    const binary = !text && !ctx.msgpack;
    const parsed = binary ? undefined : parseFrame(ctx, frame, text);
    if (binary || parsed?.json instanceof Uint8Array) {
      if (!canPublish(ctx)) return void ctx.error(ErrorCode.forbidden, "the token does not allow publishing here");
      return onBinary(ctx, binary ? (frame as Uint8Array) : (parsed?.json as Uint8Array));
    }
    if (!parsed) return;
    let envelope = fastEnvelope(parsed.json);
    if (!envelope) {
      const checkedEnvelope = v.safeParse(ClientFrameSchema, parsed.json);
      if (!checkedEnvelope.success) {
        ctx.error(ErrorCode.invalidMessage, describeIssues(checkedEnvelope.issues), idOf(parsed.json));
        return;
      }
      envelope = checkedEnvelope.output;
    }
    if (envelope.type === "ping")
      return void ctx.frame(envelope.id === undefined ? PONG : { ...PONG, id: envelope.id });
    if (!canPublish(ctx)) {
      ctx.error(
        ErrorCode.forbidden,
        `the token does not allow publishing to ${route.name}:${ctx.ref?.name}`,
        envelope.id,
      );
      return;
    }
    // (A publish without data is no message: dataIssue says so.)
    const issue = envelope.data !== undefined && parsed.plain ? undefined : dataIssue(envelope.data);
    if (issue) return void ctx.error(ErrorCode.invalidMessage, `data: ${issue}`, envelope.id);
    if (!schema) {
      ctx.checked = envelope.data;
      return publish(ctx, envelope.data, envelope.id);
    }
    const checked = v.safeParse(schema, envelope.data);
    if (!checked.success) {
      ctx.error(ErrorCode.invalidMessage, `data: ${describeIssues(checked.issues)}`, envelope.id);
      return;
    }
    ctx.checked = checked.output;
    return publish(ctx, checked.output, envelope.id);
  };
}

function room(route: AnyRoute, rate: RateLimit | undefined): CompiledRoute {
  const { open, close, rateLimit, member, memberUpdates } = route.options;
  return {
    definition: route,
    name: route.name,
    kind: "room",
    params: pathParams(route.path),
    readsText: true,
    dataAsSent: route.options.schema === undefined,
    compactBroadcasts: route.options.compactBroadcasts === true,
    showsMember: member !== undefined,
    announcesMember: member !== undefined && memberUpdates === true,
    // Rooms amplify (one frame, every member): limited by default.
    rate: rateLimit === false ? undefined : typeof rateLimit === "object" ? rateLimit : rate,
    async open(ctx) {
      await ctx.join();
      await open?.(ctx.api);
    },
    message: roomMessage(route),
    async close(ctx, code, reason) {
      await ctx.leave(code, reason);
      await close?.(ctx.api, code, reason);
    },
    member: memberOf(route),
    checkData: dataChecker(route),
    published: publishedChecker(route),
    roomState: roomStateOf(route, pathParams(route.path)),
    pushHandler: pushHandlerOf(route),
    occupied: route.options.occupied,
    vacated: route.options.vacated,
    timer: route.options.timer,
    ...stateHandling(route),
  };
}

/** Compile a route definition into the engine's handlers; `rate` is the configured limit of room routes. */
export function compile(route: AnyRoute, rate?: RateLimit): CompiledRoute {
  return route.kind === "room" ? room(route, rate) : plain(route);
}
