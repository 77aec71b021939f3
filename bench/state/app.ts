/**
 * The bench's stateful rooms: the same room three ways — `/tx/:room`, where every publish is a
 * transaction on the room state (a best bid checked and raised, the message published with it),
 * `/hidden/:room`, the same transactions with a view that shows nothing, and `/pub/:room`, where it
 * is a plain publish of the same data. bench/room-state.ts runs them
 * side by side on each runtime.
 */
import * as v from "valibot";
import { createEdgewire, defineRoom } from "../../src/index.ts";

const Bid = v.object({ amount: v.number() });

const tx = defineRoom({
  path: "/tx/:room",
  schema: Bid,
  roomState: v.object({ best: v.optional(v.number(), 0), bids: v.optional(v.number(), 0) }),
  message(ctx, bid) {
    return ctx.room.transact((state) => ({
      state: { best: Math.max(state.best, bid.amount), bids: state.bids + 1 },
      publish: [bid],
    }));
  },
});

// The same transactions with a view that shows nothing: no view rides on their messages, so beside
// `tx` this is what carrying the view costs (the most a patch of it could save).
const hidden = defineRoom({
  path: "/hidden/:room",
  schema: Bid,
  roomState: v.object({ best: v.optional(v.number(), 0), bids: v.optional(v.number(), 0) }),
  view: () => null,
  message(ctx, bid) {
    return ctx.room.transact((state) => ({
      state: { best: Math.max(state.best, bid.amount), bids: state.bids + 1 },
      publish: [bid],
    }));
  },
});

// The same handler shape, publishing instead of transacting: only the transaction differs.
const pub = defineRoom({
  path: "/pub/:room",
  schema: Bid,
  message: (ctx, bid) => ctx.room.publish(bid),
});

/** The bench fixture: both routes (bench/room-state.ts lifts the rate limit through the environment). */
export default createEdgewire({ routes: [tx, hidden, pub] });
