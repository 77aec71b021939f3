/**
 * The `edgewire.v1+msgpack` wire format: the same frames as `edgewire.v1`,
 * MessagePack-encoded in binary frames, with the two frames fan-out multiplies
 * by the member count made positional, so a delivery carries its data and
 * little else:
 *
 *   message     [0, seq, from, data, ts]    (the room is the connection's own)
 *               [0, seq, from, data, ts, view]   the last message of a transaction that changed the view
 *   broadcast   [1, from, data]
 *   relayed     bin: the bytes another member relayed
 *   the rest    a map, exactly the JSON frame (welcome, resync, view, presence, ack, pong, error)
 *
 * Client frames are one value per binary frame: the JSON frame's map (publish,
 * ping), or a bin to relay; a client may still send JSON text, so
 * `{"type":"ping"}` reaches a Durable Object's auto-response (answered in text).
 * Data keeps JSON's data model (no bin, no extension types, string keys, finite
 * numbers) because history, Redis and JSON members of the same room carry it as
 * JSON. Runtime-free: the server and the client SDK (`edgewire/client/msgpack`)
 * share it.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { MAX_DATA_DEPTH } from "./message-data.ts";
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
const stringKeys = (key: unknown): string => {
  if (typeof key !== "string") throw new TypeError("map keys must be strings");
  return key;
};

const decoder = new Decoder({ mapKeyConverter: stringKeys });

// What the header at `at` spans: where the next value starts, and how many values it contains
// (an array's elements, a map's keys and values). Set by readHeader; module-level so the scan
// allocates nothing per value.
let nextAt = 0;
let children = 0;
// Set by readHeader when a value is not in JSON's data model (bytes, an extension, a non-finite
// float): what structureIssue's caller may not skip the data check for.
let notJson = false;

// A big-endian length field of `n` bytes after the header byte, or -1 past the end.
function lengthField(bytes: Uint8Array, at: number, n: number): number {
  if (at + 1 + n > bytes.length) return -1;
  let v = 0;
  for (let i = 1; i <= n; i++) v = v * 256 + (bytes[at + i] as number);
  return v;
}

// The header at `at`: sets nextAt and children, or says why it is not one.
function readHeader(bytes: Uint8Array, at: number): string | undefined {
  const b = bytes[at] as number;
  children = 0;
  let fixed = 0; // bytes after the header byte, for fixed-size values
  let field = 0; // size of a length field
  let extra = 0; // an extension's type byte
  let per = 0; // values per counted item of a container (1 array, 2 map); 0 for bytes
  // bin, ext, fixext: outside JSON's data model; a float, when not finite
  if (b === 0xca || b === 0xcb) notJson ||= !finiteFloat(bytes, at, b === 0xcb);
  else if ((b >= 0xc4 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) notJson = true;
  if (b <= 0x7f || b >= 0xe0) fixed = 0;
  else if (b <= 0x8f) children = 2 * (b & 0x0f);
  else if (b <= 0x9f) children = b & 0x0f;
  else if (b <= 0xbf) fixed = b & 0x1f;
  else if (b === 0xc0 || b === 0xc2 || b === 0xc3) fixed = 0;
  else if (b === 0xc4 || b === 0xd9) field = 1;
  else if (b === 0xc5 || b === 0xda) field = 2;
  else if (b === 0xc6 || b === 0xdb) field = 4;
  else if (b >= 0xc7 && b <= 0xc9) {
    field = b === 0xc7 ? 1 : b === 0xc8 ? 2 : 4;
    extra = 1;
  } else if (b === 0xcc || b === 0xd0) fixed = 1;
  else if (b === 0xcd || b === 0xd1) fixed = 2;
  else if (b === 0xca || b === 0xce || b === 0xd2) fixed = 4;
  else if (b === 0xcb || b === 0xcf || b === 0xd3) fixed = 8;
  else if (b >= 0xd4 && b <= 0xd8)
    fixed = 1 + (1 << (b - 0xd4)); // fixext 1–16, after its type byte
  else if (b >= 0xdc && b <= 0xdf) {
    field = b === 0xdc || b === 0xde ? 2 : 4;
    per = b <= 0xdd ? 1 : 2;
  } else return `the reserved byte 0x${b.toString(16)}`;
  if (field === 0) {
    nextAt = at + 1 + fixed;
    return undefined;
  }
  const length = lengthField(bytes, at, field);
  if (length < 0) return "truncated";
  if (per > 0) {
    children = length * per;
    nextAt = at + 1 + field;
  } else nextAt = at + 1 + field + extra + length;
  return undefined;
}

// A float32 (exponent 8 bits) or float64 (11 bits) at `at` whose exponent is not all ones: finite.
function finiteFloat(bytes: Uint8Array, at: number, wide: boolean): boolean {
  const hi = (bytes[at + 1] ?? 0) & 0x7f;
  const next = bytes[at + 2] ?? 0;
  return wide ? !(hi === 0x7f && (next & 0xf0) === 0xf0) : !(hi === 0x7f && (next & 0x80) === 0x80);
}

/**
 * Why `bytes` cannot be one honest MessagePack value, found by walking its headers without
 * building anything: the decoder allocates every array at the length its header claims before
 * reading an element, so a 5-byte frame claiming 2^25 elements took 270 MB, and a few nested
 * claims ended the process (out of memory) before the decoder could throw. Every element takes
 * at least one byte, so the elements still owed may never exceed the bytes left; nesting is
 * bounded too. Linear in the frame's size.
 */
export function structureIssue(bytes: Uint8Array, maxDepth = MAX_DATA_DEPTH + 8): string | undefined {
  notJson = false;
  const left: number[] = []; // values still to come in each open array or map, innermost last
  let at = 0;
  let owed = 1;
  while (owed > 0) {
    if (at >= bytes.length) return "truncated";
    const issue = readHeader(bytes, at);
    if (issue) return issue;
    at = nextAt;
    if (at > bytes.length) return "truncated";
    owed--;
    if (left.length > 0) left[left.length - 1] = (left[left.length - 1] as number) - 1;
    if (children > 0) {
      owed += children;
      if (owed > bytes.length - at) return "an array or map claims more elements than the frame holds";
      if (left.length >= maxDepth) return `nested deeper than ${maxDepth} levels`;
      left.push(children);
    }
    while (left.length > 0 && left[left.length - 1] === 0) left.pop();
  }
  return at === bytes.length ? undefined : "trailing bytes after the value";
}

/** One MessagePack value as bytes. */
export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/**
 * What JSON.stringify makes of `value` (a Date its ISO string, NaN null, toJSON applied,
 * undefined dropped), as it comes out of JSON.parse: so a value sent in MessagePack is the
 * value a JSON peer gets. Throws where JSON.stringify does (a BigInt, a cycle).
 */
export function asJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Exactly one MessagePack value from `bytes` (trailing bytes are an error); throws on malformed input. */
export function decodeValue(bytes: Uint8Array): unknown {
  const issue = structureIssue(bytes);
  if (issue) throw new RangeError(issue);
  return decoder.decode(bytes);
}

/**
 * Whether the value decodeValue last decoded is message data by construction: nothing outside
 * JSON's data model (no bytes, extension or non-finite float), and too short (≤ MAX_DATA_DEPTH
 * bytes: every level takes a header byte) to nest past the depth limit — so its walk can be skipped.
 */
export function decodedPlain(bytes: Uint8Array): boolean {
  return !notJson && bytes.length <= MAX_DATA_DEPTH;
}

/** A server frame in this encoding: message and broadcast frames positional, the others as they are. */
export function encodeFrame(frame: { readonly type: string }): Uint8Array {
  if (frame.type === "message") {
    const m = frame as MessageFrame;
    if ("view" in m) return encoder.encode([MESSAGE_TAG, m.seq, m.from, m.data, m.ts, m.view]);
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
 * A frame the broker encoded for JSON members, for a MessagePack member: made from the very text
 * JSON members get (so both see the same data: a handler's Date is its ISO string, NaN is null),
 * or relayed bytes as a bin.
 */
export function transcode(frame: string | Uint8Array): Uint8Array {
  return typeof frame === "string" ? encodeFrame(JSON.parse(frame) as { type: string }) : encodeRelay(frame);
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
  if (value[0] === MESSAGE_TAG && value.length === 6) {
    const [, seq, from, data, ts, view] = value as [number, number, string, unknown, number, unknown];
    return { type: "message", room, seq, from, data, ts, view } satisfies MessageFrame;
  }
  if (value[0] === BROADCAST_TAG && value.length === 3) {
    const [, from, data] = value as [number, string, unknown];
    return { type: "broadcast", room, from, data } satisfies BroadcastFrame;
  }
  return value;
}
