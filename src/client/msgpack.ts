/**
 * edgewire/client/msgpack: the room client's MessagePack codec
 * (`edgewire.v1+msgpack`). Pass it as `codec` to joinRoom: the room's frames
 * travel as MessagePack (a message to a member is about half the bytes of its
 * JSON frame), and the client's API and events stay exactly as with JSON.
 * A separate entry point, so a JSON-only client bundle carries no MessagePack.
 */
import { asJson, decodeValue, encodeRelay, encodeValue, fromWire, MSGPACK_SUBPROTOCOL } from "../msgpack.ts";
import type { RoomCodec } from "./room.ts";

/** The MessagePack codec for `joinRoom(url, room, { codec: msgpack })`. */
export const msgpack: RoomCodec = {
  protocol: MSGPACK_SUBPROTOCOL,
  // What JSON would send (a Date as its ISO string, NaN as null), so a publish works the same on both.
  encode: (frame) => encodeValue(asJson(frame)),
  relay: (bytes) => encodeRelay(bytes),
  decode: (bytes, room) => fromWire(decodeValue(bytes), room),
};

export { MSGPACK_SUBPROTOCOL } from "../protocol.ts";
