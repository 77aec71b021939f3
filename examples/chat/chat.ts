/**
 * A typed chat room, as a user of edgewire writes it: its own message schema
 * (things said, with replies; typing indicators; renames), a per-connection
 * state (the member's name, shown to the others), and a handler that decides
 * what is sequenced and kept (what is said, stamped with its author's name, so
 * history reads right after the author left) and what is only broadcast
 * (typing, renames).
 */
import { ClientError, defineRoom } from "edgewire";
import * as v from "valibot";

/** A member's name: 1–32 characters after trimming. */
const Name = v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(32));

/** Everything a chat client may send. */
export const ChatMessage = v.variant("type", [
  v.object({
    type: v.literal("say"),
    text: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(2000)),
    /** the `seq` of the message this one answers */
    replyTo: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  }),
  v.object({ type: v.literal("typing"), typing: v.boolean() }),
  v.object({ type: v.literal("rename"), name: Name }),
]);

/** A chat message as clients send it. */
export type ChatMessage = v.InferOutput<typeof ChatMessage>;

/** Everything a chat member receives: what was said, with its author's name then; typing and renames as sent. */
export const ChatEvent = v.variant("type", [
  v.object({
    type: v.literal("say"),
    text: v.string(),
    replyTo: v.optional(v.number()),
    /** the author's name when it was said */
    by: Name,
  }),
  v.object({ type: v.literal("typing"), typing: v.boolean() }),
  v.object({ type: v.literal("rename"), name: Name }),
]);

/** A chat event as members receive it. */
export type ChatEvent = v.InferOutput<typeof ChatEvent>;

/** The chat route: `/chat/:room`, a name per member (`?name=` on connect, or a rename). */
export const chat = defineRoom({
  path: "/chat/:room",
  schema: ChatMessage,
  publishes: ChatEvent,
  state: v.object({ name: v.optional(Name, "anonymous") }),
  initialState: ({ query }) => ({ name: query.name || "anonymous" }),
  member: (state) => ({ name: state.name }),
  // A rename reaches every member's list at once (a presence `update`), not only the next welcome.
  memberUpdates: true,
  async message(ctx, message) {
    switch (message.type) {
      case "say": {
        // A reply must answer something already said in this room.
        if (message.replyTo !== undefined && message.replyTo > (await ctx.room.members()).seq) {
          throw new ClientError("invalid_reply", `no message ${message.replyTo} in this room yet`);
        }
        return ctx.room.publish({ ...message, by: ctx.connection.state.name });
      }
      case "typing":
        return ctx.room.broadcast(message); // to the others, not sequenced, not kept
      case "rename":
        ctx.connection.setState({ name: message.name });
        return ctx.room.broadcast(message, { self: true });
    }
  },
});
