/**
 * A live auction: bidders in a room bid on one item; the best bid lives in the room's state, so
 * every instance of a fleet and every Durable Object wake-up agrees on it, and a bid is accepted
 * only against the best bid committed before it — the check and the "bid" message commit together
 * in one transaction. Members see the view (best amount and bidder, how many bids, whether it is
 * closed), never the bidders' offers (kept to show what a view hides). The seller, or the backend
 * with a push (`POST /auction/:item/messages` `{"type":"close"}`), closes it: through the route, so
 * no bid commits after the close.
 */
import { ClientError, defineRoom } from "edgewire";
import * as v from "valibot";

/** The smallest step above the best bid. */
export const MIN_INCREMENT = 5;

const Name = v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(32));
const Amount = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000_000));

/** What a bidder may send: a bid, or close the auction (the seller's `?role=seller` only). */
export const AuctionMessage = v.variant("type", [
  v.object({ type: v.literal("bid"), amount: Amount }),
  v.object({ type: v.literal("close") }),
]);

/** What members receive: an accepted bid, or the auction closing. */
export const AuctionEvent = v.variant("type", [
  v.object({ type: v.literal("bid"), amount: Amount, bidder: Name }),
  v.object({ type: v.literal("closed"), winner: v.nullable(Name), amount: v.nullable(Amount) }),
]);

/** The room's state: the best bid, every bidder's highest offer (not shown), whether it is closed. */
export const AuctionState = v.object({
  best: v.nullable(v.object({ amount: Amount, bidder: Name })),
  bids: v.number(),
  offers: v.record(Name, Amount),
  closed: v.boolean(),
});
/** The room's state. */
export type AuctionState = v.InferOutput<typeof AuctionState>;

/** What bidders see of it: the best bid and the count, not each bidder's offers. */
export const AuctionView = v.object({
  best: v.nullable(v.object({ amount: Amount, bidder: Name })),
  bids: v.number(),
  closed: v.boolean(),
});

/** A bidder: its name, whether it sells (may close the auction), and the seller's deadline (ms from its join). */
const Bidder = v.object({
  name: Name,
  seller: v.boolean(),
  closeIn: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(7 * 86_400_000))),
});

/**
 * The auction route: `/auction/:item?name=ada` (add `&role=seller` for the seller, and
 * `&closeIn=<ms>` to set the deadline).
 */
export const auction = defineRoom({
  path: "/auction/:item",
  schema: AuctionMessage,
  publishes: AuctionEvent,
  state: Bidder,
  initialState: ({ query }) => ({
    name: query.name ?? "",
    seller: query.role === "seller",
    ...(query.role === "seller" && query.closeIn ? { closeIn: Number(query.closeIn) } : {}),
  }),
  member: (bidder) => ({ name: bidder.name }),
  roomState: AuctionState,
  initialRoomState: () => ({ best: null, bids: 0, offers: {}, closed: false }),
  // What bidders see: the best bid and the count, not each bidder's offers (checked, and in the AsyncAPI document).
  view: (state) => ({ best: state.best, bids: state.bids, closed: state.closed }),
  viewSchema: AuctionView,
  // The seller's first join sets the deadline: a room timer, kept where the room lives (a fleet's
  // Redis, the Durable Object's alarm), that fires once even if this instance is gone by then. A
  // reconnect (the SDK joins again with the same query) leaves a pending deadline where it is.
  async open(ctx) {
    const { seller, closeIn } = ctx.connection.state;
    if (!seller || closeIn === undefined) return;
    if ((await ctx.room.timers()).some((t) => t.name === "deadline")) return;
    await ctx.room.schedule("deadline", Date.now() + closeIn);
  },
  async timer(ctx, timer) {
    if (timer.name === "deadline") await ctx.room.transact((state) => close(state));
  },
  message(ctx, message) {
    const { name, seller } = ctx.connection.state;
    if (message.type === "close") {
      if (!seller) throw new ClientError("not_the_seller", "only the seller closes the auction");
      return ctx.room.transact((state) => close(state));
    }
    return ctx.room.transact((state) => {
      if (state.closed) throw new ClientError("auction_closed", "the auction is closed");
      const floor = state.best ? state.best.amount + MIN_INCREMENT : 1;
      if (message.amount < floor) throw new ClientError("bid_too_low", `the lowest bid now is ${floor}`);
      const best = { amount: message.amount, bidder: name };
      return {
        state: { best, bids: state.bids + 1, offers: { ...state.offers, [name]: message.amount }, closed: false },
        publish: [{ type: "bid", ...best }],
      };
    });
  },
  // The backend's pushes go through the route: closing takes effect in the room's one order.
  push(ctx, message) {
    if (message.type !== "close")
      throw new ClientError("backend_cannot_bid", 'a backend push closes: {"type":"close"}');
    return ctx.room.transact((state) => close(state));
  },
});

/** The transaction that closes an auction (once: a closed one stays as it is). */
export function close(state: AuctionState) {
  if (state.closed) return undefined;
  return {
    state: { ...state, closed: true },
    publish: [{ type: "closed" as const, winner: state.best?.bidder ?? null, amount: state.best?.amount ?? null }],
  };
}
