/**
 * Backend pushes: the checks a pushed message passes (its size, depth and the route's schema),
 * its idempotency key, and the publish. The single push (`POST {room}/messages`) and each room's
 * part of a batch (`POST /messages`) run through `pushRoom`, on the instance that holds the room
 * (a process, or the room's Durable Object), so both answer alike on every broker. A batch is
 * read, authorised and split by room where it arrives (in a Worker: before any object is woken),
 * and each room's part is pushed in order while the rooms go in parallel.
 */
import { toBase64 } from "../bytes.ts";
import type { Engine } from "../core/engine.ts";
import type { CompiledRoute } from "../core/ports.ts";
import { matchPath, roomPath } from "../core/room-path.ts";
import { type AnyRoute, ClientError } from "../core/route.ts";
import { dataIssue } from "../message-data.ts";
import { type BatchPush, ErrorCode, type HttpError, type PushResult } from "../protocol.ts";
import { BrokerUnavailableError, type KeyedPublish } from "../pubsub/broker.ts";
import type { Admission, ErrorStatus, PushCredential } from "./admission.ts";

/** Where the batch push is served: the edgewire's root (under its prefix when mounted), like /metrics. */
export const BATCH_PATH = "/messages";

/** The longest idempotency key: Stripe's bound. */
export const MAX_IDEMPOTENCY_KEY = 255;

// Printable ASCII, space included: what an HTTP header carries unchanged on every runtime.
const KEY = /^[\x20-\x7e]+$/;

/** Why `key` is not an idempotency key (empty, over 255 characters, not printable ASCII), or undefined. */
export function keyIssue(key: string): string | undefined {
  if (key.length === 0) return "an idempotency key may not be empty";
  if (key.length > MAX_IDEMPOTENCY_KEY) return `an idempotency key is at most ${MAX_IDEMPOTENCY_KEY} characters`;
  if (!KEY.test(key)) return "an idempotency key is printable ASCII";
  return undefined;
}

/**
 * The first 128 bits of SHA-256 of the data's JSON, in base64: what tells a retry (the same data)
 * from a reused key (other data) without keeping the data itself — JSON.stringify of the parsed
 * body, so a retry that spaces its JSON differently is still the same push.
 */
export async function fingerprint(json: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(json));
  return toBase64(new Uint8Array(digest, 0, 16));
}

/** A refused push: its HTTP status (a single push answers with it), stable code and message. */
export interface Refusal {
  status: ErrorStatus;
  /** one of ErrorCode, or a route's own (its push handler's ClientError) */
  code: ErrorCode | (string & {});
  message: string;
}

/** One message pushed to a room: its data as received, its idempotency key, and its size when the caller measured it. */
export interface PushItem {
  data: unknown;
  key?: string | undefined;
  /** characters of the data's JSON as received (a single push's body); measured here when absent */
  size?: number;
}

/** Whether an outcome is a refusal. */
export const refused = <T extends object>(outcome: T | Refusal): outcome is Refusal => "status" in outcome;

/** The checks of one message before it is published: its data ready to publish, or why it is refused. */
function check(
  engine: Engine,
  handlers: CompiledRoute,
  item: PushItem,
): { data: unknown; json: string | undefined } | Refusal {
  if (item.key !== undefined) {
    const issue = keyIssue(item.key);
    if (issue) return { status: 400, code: ErrorCode.invalidIdempotencyKey, message: issue };
    // A push handler decides what a push does, so only its transaction can tell a repeat (by its state).
    if (handlers.pushHandler) {
      const message = `route "${handlers.name}" has a push handler: its transaction decides what a repeat is, not an idempotency key`;
      return { status: 400, code: ErrorCode.invalidIdempotencyKey, message };
    }
  }
  const json = item.size === undefined || item.key !== undefined ? (JSON.stringify(item.data) ?? "null") : undefined;
  const size = item.size ?? (json as string).length;
  if (size > engine.limits.maxMessageBytes) {
    return { status: 413, code: ErrorCode.messageTooLarge, message: `limit is ${engine.limits.maxMessageBytes} bytes` };
  }
  const issue = dataIssue(item.data);
  if (issue) return { status: 400, code: ErrorCode.invalidBody, message: `data: ${issue}` };
  const checked = handlers.pushHandler ? handlers.pushHandler.check(item.data) : handlers.checkData(item.data);
  if (typeof checked === "string") return { status: 400, code: ErrorCode.invalidBody, message: checked };
  return { data: checked.data, json };
}

/**
 * What a publish's failure answers: the broker away is a 503 to retry; a push handler's ClientError
 * its own status and code (nothing changed); anything else a logged 500.
 */
function failure(engine: Engine, error: unknown): Refusal {
  if (error instanceof BrokerUnavailableError) {
    return { status: 503, code: error.code, message: `not published: ${error.message}` };
  }
  if (error instanceof ClientError)
    return { status: error.status as ErrorStatus, code: error.code, message: error.message };
  engine.report("backend push failed", error);
  return { status: 500, code: ErrorCode.internal, message: "internal error: the push may not have been published" };
}

/**
 * Check and publish `items` into `room` of `handlers`' route, in order; answers each one's seq
 * (`repeated` when its key had published it already) or its refusal, in the same order. The
 * publishes are issued one after the other without waiting between them, so they are sequenced
 * in order (as a member's burst is) and a Durable Object writes them in one commit.
 */
export async function pushRoom(
  engine: Engine,
  handlers: CompiledRoute,
  room: string,
  items: readonly PushItem[],
): Promise<(PushResult | Refusal)[]> {
  const checked = items.map((item) => check(engine, handlers, item));
  // Digests first (they are async): the publishes below must then start in order, without a gap.
  const prints = await Promise.all(
    checked.map((c, i) => (refused(c) || items[i]?.key === undefined ? undefined : fingerprint(c.json as string))),
  );
  const published = checked.map((c, i): Promise<KeyedPublish | Handled> | Refusal => {
    if (refused(c)) return c;
    const key = items[i]?.key;
    const print = prints[i];
    try {
      if (handlers.pushHandler)
        return engine.pushThrough(handlers, room, c.data).then((seq) => ({ kind: "handled", seq }));
      return key === undefined || print === undefined
        ? engine.push(handlers.name, room, c.data).then((frame) => ({ kind: "published", frame }))
        : engine.pushKeyed(handlers.name, room, c.data, { key, fingerprint: print });
    } catch (error) {
      return failure(engine, error);
    }
  });
  return Promise.all(
    published.map(async (p): Promise<PushResult | Refusal> => {
      if (!(p instanceof Promise)) return p;
      try {
        const done = await p;
        if (done.kind === "handled") return done.seq === undefined ? { room } : { room, seq: done.seq };
        if (done.kind === "published") return { room, seq: done.frame.seq };
        if (done.kind === "repeat") return { room, seq: done.seq, repeated: true };
        return {
          status: 422,
          code: ErrorCode.idempotencyKeyReused,
          message: `this idempotency key published other data in this room (seq ${done.seq}): nothing was published`,
        };
      } catch (error) {
        return failure(engine, error);
      }
    }),
  );
}

/** What a push handler did: the seq it answers, or none (it published nothing). */
interface Handled {
  kind: "handled";
  seq: number | undefined;
}

/** A refusal as a batch result (or an HTTP error body): its code and message. */
const asError = (r: Refusal): HttpError => ({ error: { code: r.code, message: r.message } });

/** The messages of a batch body, or the refusal of the whole request (not JSON, not the shape, too many). */
export function batchMessages(text: string, maxMessages: number): unknown[] | Refusal {
  const shape = 'the body must be {"messages":[{"to":"/rooms/lobby","data":…,"key"?:"…"}, …]}';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { status: 400, code: ErrorCode.invalidBody, message: `not JSON: ${shape}` };
  }
  const messages = (body as { messages?: unknown } | null)?.messages;
  if (typeof body !== "object" || body === null || Object.keys(body).length !== 1 || !Array.isArray(messages))
    return { status: 400, code: ErrorCode.invalidBody, message: shape };
  if (messages.length === 0) return { status: 400, code: ErrorCode.invalidBody, message: "the batch has no messages" };
  if (messages.length > maxMessages) {
    const message = `${messages.length} messages: a batch takes at most ${maxMessages} (EDGEWIRE_PUSH_BATCH_MAX_MESSAGES)`;
    return { status: 413, code: ErrorCode.batchTooLarge, message };
  }
  return messages;
}

/** What a batch needs of the instance it arrives at. */
export interface BatchHost {
  readonly engine: Engine;
  readonly admission: Admission;
}

/** One room's part of a batch: where it goes, and its messages' places in the batch. */
interface Part {
  handlers: CompiledRoute;
  route: AnyRoute;
  room: string;
  places: number[];
  items: PushItem[];
}

/** Sends one room's part to the instance holding the room (a Worker: its object); resolves to its results. */
export type SendPart = (route: AnyRoute, room: string, part: BatchPush) => Promise<unknown>;

const FIELDS = new Set(["to", "data", "key"]);

/** Why one batch entry is not a message (`{to, data, key?}` and nothing else), or undefined. */
function shapeIssue(m: unknown): string | undefined {
  if (typeof m !== "object" || m === null || Array.isArray(m)) return 'a message is {"to","data","key"?}';
  const entry = m as Record<string, unknown>;
  // An unknown field is refused, not ignored: a misspelt "key" would silently lose the retry's protection.
  const unknown = Object.keys(entry).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) return `unknown field ${JSON.stringify(unknown).slice(0, 80)}`;
  if (typeof entry.to !== "string") return '"to" must be the room\'s path (a string)';
  if (!("data" in entry)) return '"data" is required (null is data)';
  if (entry.key !== undefined && typeof entry.key !== "string") return '"key" must be a string';
  return undefined;
}

/**
 * The room a batch message's `to` names: the first room route whose path it matches, under the
 * prefix the batch arrived at (`/realtime/chat/lobby` when mounted at /realtime; the route's own
 * path works too), with each value checked as a join checks it.
 */
function resolve(
  host: BatchHost,
  rooms: readonly AnyRoute[],
  to: string,
  prefix: string,
): { route: AnyRoute; handlers: CompiledRoute; room: string } | Refusal {
  const path = prefix !== "" && to.startsWith(`${prefix}/`) ? to.slice(prefix.length) : to;
  for (const route of rooms) {
    const params = matchPath(route.path, path);
    if (!params) continue;
    const handlers = host.engine.route(route.name) as CompiledRoute;
    const named = host.admission.nameRoom(handlers, params);
    if ("issue" in named) return { status: 400, code: ErrorCode.invalidRoom, message: named.issue };
    return { route, handlers, room: named.room };
  }
  const message = `${JSON.stringify(to).slice(0, 300)} is no room of a room route`;
  return { status: 404, code: ErrorCode.notFound, message };
}

/**
 * Push a batch's `messages` (already parsed): each one checked, authorised for its room (unless
 * `credential` is undefined: a Durable Object, which trusts its Worker) and sent with the others
 * of its room — in order, in one part — to `send` (a Worker's object), or published here.
 * Rooms go in parallel. Resolves to each message's result, in the order given.
 */
export async function pushBatch(
  host: BatchHost,
  rooms: readonly AnyRoute[],
  messages: readonly unknown[],
  prefix: string,
  credential: PushCredential | undefined,
  send: SendPart | undefined,
): Promise<(PushResult | HttpError)[]> {
  const results: (PushResult | HttpError | undefined)[] = new Array(messages.length);
  const parts = new Map<string, Part>();
  messages.forEach((m, place) => {
    const shape = shapeIssue(m);
    if (shape) {
      results[place] = asError({ status: 400, code: ErrorCode.invalidBody, message: shape });
      return;
    }
    const { to, data, key } = m as { to: string; data: unknown; key?: string };
    const badKey = key === undefined ? undefined : keyIssue(key);
    if (badKey) {
      results[place] = asError({ status: 400, code: ErrorCode.invalidIdempotencyKey, message: badKey });
      return;
    }
    const target = resolve(host, rooms, to, prefix);
    if (refused(target)) {
      results[place] = asError(target);
      return;
    }
    const denied = credential && host.admission.pushDenied(credential, target.route.name, target.room);
    if (denied) {
      results[place] = asError({ status: 403, code: ErrorCode.forbidden, message: denied });
      return;
    }
    const id = `${target.route.name}:${target.room}`;
    const part = parts.get(id) ?? { ...target, places: [], items: [] };
    parts.set(id, part);
    part.places.push(place);
    part.items.push({ data, key });
  });
  await Promise.all(
    [...parts.values()].map(async (part) => {
      const done = send ? await sent(send, part) : await pushRoom(host.engine, part.handlers, part.room, part.items);
      part.places.forEach((place, i) => {
        const r = done[i] as PushResult | Refusal | HttpError;
        results[place] = "status" in r ? asError(r) : r;
      });
    }),
  );
  return results as (PushResult | HttpError)[];
}

// A part sent to its object: the results it answered, or — the object unreachable, or an answer
// that is not one result per message — try_again_later for each (safe to retry with their keys).
async function sent(send: SendPart, part: Part): Promise<(PushResult | HttpError)[]> {
  const to = roomPath(part.route.path, part.room);
  const body: BatchPush = {
    messages: part.items.map((item) => ({ to, data: item.data, ...(item.key === undefined ? {} : { key: item.key }) })),
  };
  let why = "";
  try {
    const answer = (await send(part.route, part.room, body)) as { results?: unknown } | undefined;
    if (Array.isArray(answer?.results) && answer.results.length === part.items.length)
      return answer.results as (PushResult | HttpError)[];
    why = "its answer was not one result per message";
  } catch (error) {
    why = (error as Error).message;
  }
  const message = `the room's object did not answer (${why}): it may or may not have published; push again (with keys: safely)`;
  return part.items.map(() => asError({ status: 503, code: ErrorCode.tryAgainLater, message }));
}
