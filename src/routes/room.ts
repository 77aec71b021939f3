/**
 * `/rooms/:room`: the general-purpose room. Members publish any JSON value,
 * which is sequenced, kept in history and delivered to everyone in one order;
 * binary frames are relayed to the other members. Defined with the public API
 * like any user route: presence, `seq`, history and the join seam come from
 * `defineRoom`, and the default `message` handler publishes the data as it is.
 */
import { defineRoom } from "../core/route.ts";

/** The room route. */
export const rooms = defineRoom({
  // The name stays "room": it is what connection records (and hibernated sockets' attachments) store.
  name: "room",
  path: "/rooms/:room",
  binary: "relay",
});
