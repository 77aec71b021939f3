/**
 * The `edgewire.v1+msgpack` wire format: the same frames as `edgewire.v1`,
 * MessagePack-encoded in binary frames, with the two frames fan-out multiplies
 * by the member count made positional, so a delivery carries its data and
 * little else:
 *
 *   message     [0, seq, from, data, ts]    (the room is the connection's own)
 *   broadcast   [1, from, data]
 *   relayed     bin: the bytes another member relayed
 *   the rest    a map, exactly the JSON frame (welcome, resync, presence, ack, pong, error)
 *
 * Client frames are one value per binary frame: the JSON frame's map (publish,
 * ping), or a bin to relay; text frames stay JSON, so `{"type":"ping"}` still
 * reaches a Durable Object's auto-response. Data keeps JSON's data model (no
 * bin, no extension types, string keys, finite numbers) because history, Redis
 * and JSON members of the same room carry it as JSON. Runtime-free: the server
 * and the client SDK (`edgewire/client/msgpack`) share it.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { MAX_DATA_DEPTH } from "./json-data.ts";
import type { BroadcastFrame, MessageFrame } from "./protocol.ts";

export { MSGPACK_SUBPROTOCOL } from "./protocol.ts";

/** The tag of a positional message frame. */
export const MESSAGE_TAG = 0;
/** The tag of a positional broadcast frame. */
export const BROADCAST_TAG = 1;

// ignoreUndefined: an undefined property is absent, as JSON.stringify leaves it. maxDepth leaves
// room for the frame around data that MAX_DATA_DEPTH admits.
const encoder = new Encoder({ ignoreUndefined: true, maxDepth: MAX_DATA_DEPTH + 8 });
// Map keys are strings only (JSON's objects), and __proto__ is refused by the decoder itself.
const decoder = new Decoder({
  mapKeyConverter: (key) => {
    if (typeof key !== "string") throw new TypeError("map keys must be strings");
    return key;
  },
});

/** One MessagePack value as bytes. */
export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Exactly one MessagePack value from `bytes` (trailing bytes are an error); throws on malformed input. */
export function decodeValue(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}

/** A server frame in this encoding: message and broadcast frames positional, the others as they are. */
export function encodeFrame(frame: { readonly type: string }): Uint8Array {
  if (frame.type === "message") {
    const m = frame as MessageFrame;
    return encoder.encode([MESSAGE_TAG, m.seq, m.from, m.data, m.ts]);
  }
  if (frame.type === "broadcast") {
    const b = frame as BroadcastFrame;
    return encoder.encode([BROADCAST_TAG, b.from, b.data]);
  }
  return encoder.encode(frame);
}

/** Relayed bytes as a MessagePack bin (what a JSON member receives as a plain binary frame). */
export function encodeRelay(bytes: Uint8Array): Uint8Array {
  return encoder.encode(bytes);
}

/**
 * A decoded server frame back in its JSON shape: `room` fills in what the
 * positional frames leave out. Bytes stand for relayed bytes; anything else
 * that is not a frame comes back as it is (the caller reports it).
 */
export function fromWire(value: unknown, room: string): unknown {
  if (!Array.isArray(value)) return value;
  if (value[0] === MESSAGE_TAG && value.length === 5) {
    const [, seq, from, data, ts] = value as [number, number, string, unknown, number];
    return { type: "message", room, seq, from, data, ts } satisfies MessageFrame;
  }
  if (value[0] === BROADCAST_TAG && value.length === 3) {
    const [, from, data] = value as [number, string, unknown];
    return { type: "broadcast", room, from, data } satisfies BroadcastFrame;
  }
  return value;
}
