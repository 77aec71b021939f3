/**
 * Backend pushes into one room: the checks a pushed message passes (its size, depth and the
 * route's schema), its idempotency key, and the publish. The single push (`POST {room}/messages`)
 * and each room's part of a batch run through `pushRoom`, on the instance that holds the room
 * (a process, or the room's Durable Object), so both answer alike on every broker.
 */
import { toBase64 } from "../bytes.ts";
import type { Engine } from "../core/engine.ts";
import type { CompiledRoute } from "../core/ports.ts";
import { dataIssue } from "../message-data.ts";
import { ErrorCode, type PushResult } from "../protocol.ts";
import { BrokerUnavailableError, type KeyedPublish } from "../pubsub/broker.ts";
import type { ErrorStatus } from "./admission.ts";

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
  code: ErrorCode;
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
  }
  const json = item.size === undefined || item.key !== undefined ? (JSON.stringify(item.data) ?? "null") : undefined;
  const size = item.size ?? (json as string).length;
  if (size > engine.limits.maxMessageBytes) {
    return { status: 413, code: ErrorCode.messageTooLarge, message: `limit is ${engine.limits.maxMessageBytes} bytes` };
  }
  const issue = dataIssue(item.data);
  if (issue) return { status: 400, code: ErrorCode.invalidBody, message: `data: ${issue}` };
  const checked = handlers.checkData(item.data);
  if (typeof checked === "string") return { status: 400, code: ErrorCode.invalidBody, message: checked };
  return { data: checked.data, json };
}

/** What a publish's failure answers: the broker away is a 503 to retry; anything else a logged 500. */
function failure(engine: Engine, error: unknown): Refusal {
  if (error instanceof BrokerUnavailableError) {
    return { status: 503, code: error.code, message: `not published: ${error.message}` };
  }
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
  const published = checked.map((c, i): Promise<KeyedPublish> | Refusal => {
    if (refused(c)) return c;
    const key = items[i]?.key;
    const print = prints[i];
    try {
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
