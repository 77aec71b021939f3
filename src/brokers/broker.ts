/**
 * The pub/sub engine behind rooms. One interface, several engines: memory (the
 * embedded default, one process or one Durable Object), Redis later (fleets).
 * A broker owns what must agree across instances: the sequence order,
 * presence, and delivery to every instance that has members in a room.
 */
import type { Member, MessageFrame } from "../protocol.ts";
import type { MaybePromise } from "../rooms/history.ts";

/**
 * One thing to deliver to a room's local members, already encoded once for
 * everybody. `except` names a member id that must not receive it (the sender of
 * a binary relay, the subject of a join).
 */
export interface Delivery {
  frame: string | Uint8Array;
  except?: string;
}

/** Receives a room's deliveries in the room's one order. */
export type DeliveryListener = (delivery: Delivery) => void;

/** What a member sees when it joins. */
export interface JoinSnapshot {
  /** the members, oldest first; when joining, at most the presence limit of them */
  members: Member[];
  /** how many members the room has */
  count: number;
  seq: number;
}

/**
 * Rooms with more members than this announce only their count (coalesced), not
 * every join and leave, and greet with this many members: per-member presence
 * costs members² frames (measured: 1 000 joins took 10 s on Node). Pusher caps
 * presence channels at 100 members for the same reason.
 */
export const DEFAULT_PRESENCE_LIMIT = 100;
/** Shortest time between two count frames of one large room. */
export const DEFAULT_PRESENCE_INTERVAL_MS = 250;

/** A pub/sub engine for rooms. */
export interface Broker {
  /** sequence, store and deliver a member's or backend's message; resolves to the frame with its `seq` */
  publish(room: string, from: string, data: unknown): MaybePromise<MessageFrame>;
  /** deliver binary bytes to the room's members except `from`; binary is not sequenced */
  relay(room: string, from: string, bytes: Uint8Array): MaybePromise<void>;
  /** add a member and tell the others; resolves to what the new member is greeted with */
  join(room: string, member: Member): MaybePromise<JoinSnapshot>;
  /** re-add a member known from a restored connection record, telling nobody (Durable Object wake-up) */
  restore(room: string, member: Member): void;
  /** remove a member and tell the others how its connection ended */
  leave(room: string, memberId: string, code?: number, reason?: string): MaybePromise<void>;
  /** the room's current members and last sequence number */
  snapshot(room: string): MaybePromise<JoinSnapshot>;
  /** messages after `seq` still in history, oldest first */
  history(room: string, after: number, limit: number): MaybePromise<MessageFrame[]>;
  /** receive the room's deliveries until the returned function is called */
  subscribe(room: string, listener: DeliveryListener): () => void;
  /** release connections and timers */
  close(): MaybePromise<void>;
}
