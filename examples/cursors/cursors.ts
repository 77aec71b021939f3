/**
 * A multiplayer cursor room: every member has a colour and a position, kept
 * as per-connection state and shown to the others as the member's info. A
 * move updates the state and is broadcast (not sequenced: only the latest
 * position matters), in the compact form `[1, from, data]` (`compactBroadcasts`:
 * every member sends many small moves, and the SDK hands them out as the same
 * `broadcast` event). The state lives in the connection record, so on
 * Cloudflare it survives the room's Durable Object hibernating or being
 * evicted: a member joining afterwards still sees every colour and position.
 */
import { defineRoom } from "edgewire";
import * as v from "valibot";

const Coordinate = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(10_000));
const Colour = v.pipe(v.string(), v.hexColor());

/** A cursor: its colour and where it is. */
export const Cursor = v.object({ colour: Colour, x: Coordinate, y: Coordinate });
/** A cursor's state. */
export type Cursor = v.InferOutput<typeof Cursor>;

/** What a member may send: move its cursor. */
export const CursorMessage = v.variant("type", [v.object({ type: v.literal("move"), x: Coordinate, y: Coordinate })]);

const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"];

/** The cursor route: `/cursors/:room`. A member may ask for a colour with `?colour=%23rrggbb`. */
export const cursors = defineRoom({
  path: "/cursors/:room",
  schema: CursorMessage,
  state: Cursor,
  initialState: ({ query }) => ({
    colour: v.is(Colour, query.colour) ? query.colour : (PALETTE[Math.floor(Math.random() * PALETTE.length)] as string),
    x: 0,
    y: 0,
  }),
  member: (state) => state,
  compactBroadcasts: true,
  message(ctx, move) {
    ctx.connection.setState({ ...ctx.connection.state, x: move.x, y: move.y });
    return ctx.room.broadcast(move);
  },
});
