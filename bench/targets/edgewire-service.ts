/**
 * What the bench's edgewire targets serve: the service exactly as `npm start` runs it
 * (service/service.ts: /echo, /rooms/:room, its options), plus one bench-only room route for the
 * many-to-many scenarios — `/cast/:room`, where every publish is a room `broadcast` (unsequenced,
 * not in history, to the other members), the pattern of examples/cursors without its state
 * update, so the scenario measures the broadcast path alone. Binary relay is measured on the
 * service's own `/rooms/:room` (`binary: "relay"`).
 */

import { service } from "../../service/service.ts";
import { createEdgewire, defineRoom } from "../../src/index.ts";

/** `/cast/:room`: a client's publish (any JSON or MessagePack value) broadcast to the room's other members. */
export const cast = defineRoom({
  name: "cast",
  path: "/cast/:room",
  message: (ctx, data) => ctx.room.broadcast(data),
});

/** `/cast-compact/:room`: the same broadcast, in the route's compact form `[1, from, data]` (`compactBroadcasts`). */
export const castCompact = defineRoom({
  name: "cast-compact",
  path: "/cast-compact/:room",
  compactBroadcasts: true,
  message: (ctx, data) => ctx.room.broadcast(data),
});

/** The service's routes and options, with `/cast/:room` and `/cast-compact/:room` beside them. */
export const benchService = createEdgewire({ ...service.options, routes: [...service.routes, cast, castCompact] });
