/**
 * Type tests: `tsc -p tsconfig.node.json` (part of `npm test`) checks this
 * file, and every `@ts-expect-error` line must be an error — so when inference
 * from a route definition to its handlers or to the client breaks, the build
 * fails. Nothing here runs.
 */
import * as v from "valibot";
import type { ChatEvent, chat } from "../../examples/chat/chat.ts";
import type { cursors } from "../../examples/cursors/cursors.ts";
import { joinRoom } from "../../src/client/index.ts";
import { msgpack } from "../../src/client/msgpack.ts";
import { defineRoom, defineRoute, type RouteInput, type RouteOutput } from "../../src/index.ts";

// The client infers publish input and message output from the route definition.
export function client(): void {
  const room = joinRoom<typeof chat>("ws://localhost:8787", "lobby", { path: "/chat/:room" });
  void room.publish({ type: "say", text: "hi" });
  void room.publish({ type: "say", text: "re", replyTo: 3 });
  room.send({ type: "typing", typing: true });
  // @ts-expect-error: not a type of the route's schema
  void room.publish({ type: "shout", text: "hi" });
  // @ts-expect-error: text is a string
  void room.publish({ type: "say", text: 1 });
  // @ts-expect-error: typing needs its flag
  room.send({ type: "typing" });
  room.on("message", (m) => {
    const kind: "say" | "typing" | "rename" = m.data.type;
    if (m.data.type === "say") {
      const text: string = m.data.text;
      const reply: number | undefined = m.data.replyTo;
      // What members receive is the route's `publishes`: the author's name, stamped by the handler.
      const by: string = m.data.by;
      void [text, reply, by];
    }
    // @ts-expect-error: no such field on any chat message
    void m.data.colour;
    void kind;
  });
  room.on("broadcast", (b) => {
    const data: ChatEvent = b.data;
    void data;
  });
  // The MessagePack codec changes the wire, not the types.
  const packed = joinRoom<typeof chat>("ws://localhost:8787", "lobby", { path: "/chat/:room", codec: msgpack });
  void packed.publish({ type: "say", text: "hi" });
  // @ts-expect-error: the same schema applies
  void packed.publish({ type: "say", text: 1 });
  packed.on("message", (m) => void (m.data.type satisfies "say" | "typing" | "rename"));
  // @ts-expect-error: a codec is a RoomCodec, not a name
  joinRoom<typeof chat>("ws://localhost:8787", "lobby", { path: "/chat/:room", codec: "msgpack" });
  const moves = joinRoom<typeof cursors>("ws://localhost:8787", "board", { path: "/cursors/:room" });
  moves.send({ type: "move", x: 1, y: 2 });
  // @ts-expect-error: coordinates are numbers
  moves.send({ type: "move", x: "1", y: 2 });
  // A room route's path is the only one its client may give, and it must be given.
  // @ts-expect-error: a typo in the route's path
  joinRoom<typeof chat>("ws://localhost:8787", "lobby", { path: "/chta/:room" });
  // @ts-expect-error: without options it would join /rooms/:room, which is not chat's path
  joinRoom<typeof chat>("ws://localhost:8787", "lobby");
  // A route on the default path may leave `path` out.
  joinRoom<typeof lobby>("ws://localhost:8787", "lobby").send({ n: 1 });
  // A plain route has no room: typing a room client by one is an error, not data typed as the route.
  // @ts-expect-error: ping is a plain route (defineRoute), not a room
  joinRoom<typeof ping>("ws://localhost:8787", "lobby", { path: "/ping" });
  // @ts-expect-error: the same without options
  joinRoom<typeof ping>("ws://localhost:8787", "lobby");
  // Without a route, data is whatever the caller says it is.
  const loose = joinRoom<{ n: number }>("ws://localhost:8787", "lobby");
  void loose.publish({ n: 1 });
  // @ts-expect-error: n is a number
  void loose.publish({ n: "1" });
}

const lobby = defineRoom({ path: "/rooms/:room", schema: v.object({ n: v.number() }) });
const ping = defineRoute({ path: "/ping", schema: v.object({ n: v.number() }) });

// `publishes`: handlers publish its input (not the client's shape), the client receives its output.
const stamped = defineRoom({
  path: "/stamped/:room",
  schema: v.object({ text: v.string() }),
  publishes: v.object({ text: v.string(), by: v.string() }),
  message(ctx, data) {
    // @ts-expect-error: what is published must carry `by`
    void ctx.room.publish(data);
    void ctx.room.broadcast({ ...data, by: "server" });
    return ctx.room.publish({ ...data, by: "ada" });
  },
});
export function published(): void {
  const room = joinRoom<typeof stamped>("ws://localhost:8787", "r", { path: "/stamped/:room" });
  void room.publish({ text: "hi" });
  // @ts-expect-error: clients send the message schema's shape, not what is published
  void room.publish({ text: "hi", by: "me" });
  room.on("message", (m) => {
    const by: string = m.data.by;
    void by;
  });
}

// The schema's input is what clients send, its output what they receive (a transform makes them differ).
const Shout = v.object({
  text: v.pipe(
    v.string(),
    v.transform((s) => s.length),
  ),
});
const shout = defineRoom({ path: "/shout/:room", schema: Shout });
export const input: RouteInput<typeof shout> = { text: "abc" };
export const output: RouteOutput<typeof shout> = { text: 3 };
// @ts-expect-error: the output's text is a number
export const wrongOutput: RouteOutput<typeof shout> = { text: "abc" };

// Handlers see the schema's output and the state's type.
export const typedHandlers = defineRoom({
  path: "/typed/:room",
  schema: v.object({ text: v.string() }),
  state: v.object({ count: v.optional(v.number(), 0) }),
  message(ctx, data) {
    const text: string = data.text;
    const count: number = ctx.connection.state.count;
    ctx.connection.setState({ count: count + 1 });
    // @ts-expect-error: the state's count is a number
    ctx.connection.setState({ count: "1" });
    // @ts-expect-error: publish takes the route's data
    void ctx.room.publish({ body: text });
    return ctx.room.publish({ text });
  },
});

// A raw route (no schema) gets text or bytes; a route without state has no state.
export const raw = defineRoute({
  path: "/raw",
  message(ctx, data) {
    const frame: string | Uint8Array = data;
    const state: undefined = ctx.connection.state;
    void [frame, state];
    // @ts-expect-error: a plain route has no room
    void ctx.room;
  },
});

// A room path with several parameters: ctx.params is typed from the path, and the client must name every one.
const board = defineRoom({
  path: "/org/:org/board/:board",
  open(ctx) {
    const org: string = ctx.params.org;
    const name: string = ctx.params.board;
    // @ts-expect-error: no such parameter in the path
    void ctx.params.team;
    void [org, name];
  },
});
export function boards(): void {
  const path = "/org/:org/board/:board" as const;
  const room = joinRoom<typeof board>("ws://localhost:8787", { org: "acme", board: "b1" }, { path });
  void room.params;
  // @ts-expect-error: every parameter is required
  joinRoom<typeof board>("ws://localhost:8787", { org: "acme" }, { path });
  // @ts-expect-error: a room of several parameters is named by them, not by one string
  joinRoom<typeof board>("ws://localhost:8787", "acme", { path });
  // One parameter: its value, or the record.
  joinRoom<typeof chat>("ws://localhost:8787", { room: "lobby" }, { path: "/chat/:room" });
  // @ts-expect-error: the chat route's parameter is `room`
  joinRoom<typeof chat>("ws://localhost:8787", { item: "lobby" }, { path: "/chat/:room" });
}

// Members' info has the type of what the route's `member` returns.
export function memberInfo(): void {
  const room = joinRoom<typeof chat>("ws://localhost:8787", "lobby", { path: "/chat/:room" });
  const name: string | undefined = room.members[0]?.info?.name;
  // @ts-expect-error: the chat route shows a name, nothing else
  void room.members[0]?.info?.colour;
  room.on("presence", (p) => {
    if (p.event === "join") {
      const joined: string | undefined = p.member.info?.name;
      void joined;
    }
  });
  room.on("transport", (t) => {
    const now: "websocket" | "polling" = t.transport;
    void [now, t.previous, t.reason];
  });
  void name;
}

// A stateful room: the client's `state` is the route's view (not the whole state), and so is a
// change's; handlers' transactions see the room state's type and publish the route's output.
export function roomStateTypes(): void {
  const lot = joinRoom<typeof import("../../examples/auction/auction.ts").auction>("ws://localhost:8787", "lot-1", {
    path: "/auction/:item",
  });
  const best: number | undefined = lot.state?.best?.amount;
  const closed: boolean | undefined = lot.state?.closed;
  // @ts-expect-error: the view hides the bidders' offers
  void lot.state?.offers;
  lot.on("state", (change) => {
    const bids: number = change.view.bids;
    const seq: number = change.seq;
    void [bids, seq];
  });
  void [best, closed];
  defineRoom({
    path: "/poll/:room",
    schema: v.object({ choice: v.string() }),
    roomState: v.object({ votes: v.optional(v.record(v.string(), v.number()), {}) }),
    message(ctx, vote) {
      return ctx.room.transact((state) => {
        const votes: Record<string, number> = state.votes;
        // @ts-expect-error: the room state has no such field
        void state.total;
        return { state: { votes: { ...votes, [vote.choice]: (votes[vote.choice] ?? 0) + 1 } }, publish: [vote] };
      });
    },
  });
}
