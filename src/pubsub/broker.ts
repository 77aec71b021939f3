/**
 * The pub/sub engine behind rooms. One interface, several engines: memory (the
 * embedded default, one process or one Durable Object) and Redis (fleets, redis.ts).
 * A broker owns what must agree across instances: the sequence order,
 * presence, and delivery to every instance that has members in a room.
 */
import type { Member, MessageFrame, SequencedFrame } from "../protocol.ts";

/**
 * The broker cannot reach its backend (Redis down): the operation did not
 * happen. A publish is answered `try_again_later` (never acked), a join is
 * closed with 1013 so the client comes back — none is a handler's fault.
 */
export class BrokerUnavailableError extends Error {
  /** what the client is told: `try_again_later` (an outage) or `draining` (this instance is shutting down) */
  readonly code: "try_again_later" | "draining";
  /** an outage, with what failed */
  constructor(message: string, code: "try_again_later" | "draining" = "try_again_later") {
    super(message);
    this.name = "BrokerUnavailableError";
    this.code = code;
  }
}

/**
 * A commit that carried a fired timer's run found the timer spent: another run of it (on an
 * instance that took it over when this one's lease ran out) committed first. Nothing was written;
 * the run that gets this stops, as its effect is already in the room.
 */
export class TimerSpentError extends Error {
  /** the timer `name` of room `room` ran elsewhere */
  constructor(room: string, name: string) {
    super(`the timer "${name}" of ${room} was spent by another run of it`);
    this.name = "TimerSpentError";
  }
}

/** A value, or a promise of it: memory and SQLite answer synchronously, Redis will not. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * A room as the broker knows it: `key` is unique across routes (`chat:lobby`
 * and `cursors:lobby` are different rooms), `name` is what frames carry.
 */
export interface RoomRef {
  readonly key: string;
  readonly name: string;
}

/** The ref of room `name` of route `route`. */
export function roomRef(route: string, name: string): RoomRef {
  return { key: `${route}:${name}`, name };
}

/**
 * One thing to deliver to a room's local members, already encoded once for
 * everybody. `except` names a member id that must not receive it (the sender of
 * a relay or a broadcast to others, the subject of a join).
 */
export interface Delivery {
  frame: string | Uint8Array;
  except?: string | undefined;
  /**
   * the frame as a value, where encoding it gives what transcoding its text would (its data is a
   * client's, in JSON's data model): a MessagePack member's copy is encoded from it, not parsed
   * back out of the text
   */
  value?: { readonly type: string } | undefined;
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
  /** the epoch of the room's history (empty: none yet) */
  epoch: string;
  /** a stateful room's state JSON as of `seq` (undefined: none yet, its route's initial state) */
  state?: string | undefined;
}

/**
 * What a transaction made of a room's state JSON (undefined: none yet): the next state's JSON
 * (absent: unchanged), the messages to publish and, when the view changed, the new view. Thrown
 * errors refuse the transaction: nothing is committed.
 */
export interface Change {
  state?: string | undefined;
  messages: unknown[];
  /** present when what members see changed: the view after the change */
  view?: { value: unknown } | undefined;
}

/** A transaction as a broker runs it: a synchronous function of the stored state; it may run more than once. */
export type ChangeFn = (state: string | undefined) => Change;

/**
 * The frames a committed change makes, numbered after `seq`: its messages, the last carrying the
 * new view; or, when it published nothing but the view changed, one view frame.
 */
export function framesOf(
  room: string,
  from: string,
  ts: number,
  seq: number,
  change: { messages: unknown[]; view?: { value: unknown } | undefined },
): SequencedFrame[] {
  const { messages, view } = change;
  if (messages.length === 0) return view ? [{ type: "view", room, seq: seq + 1, from, view: view.value, ts }] : [];
  const last = messages.length - 1;
  return messages.map((data, i) => ({
    type: "message",
    room,
    seq: seq + 1 + i,
    from,
    data,
    ts,
    ...(i === last && view ? { view: view.value } : {}),
  }));
}

/** How a broadcast goes out: to whom, and in what form. */
export interface BroadcastOptions {
  /** the member left out (the sender, unless it asked for its own copy) */
  except?: string | undefined;
  /**
   * the data is in JSON's data model as it is (a client's, checked, passed on unchanged): a broker
   * delivering in this process may hand MessagePack members the value itself
   */
  plain?: boolean | undefined;
  /** positional, `[1, from, data]` (the route's `compactBroadcasts`) */
  compact?: boolean | undefined;
}

/**
 * The JSON text of a broadcast frame, `{"type":"broadcast","room","from","data"}` (or, compact,
 * `[1,from,data]`) — written around the data's JSON rather than stringified as an object: a
 * broadcast is every update of a cursor or game room, and the object's own stringify was a
 * quarter of that path's JavaScript on Node.
 */
export function broadcastText(room: RoomRef, from: string, data: unknown, compact = false): string {
  // undefined (or what stringifies to nothing): no data, as JSON.stringify of the frame leaves it out
  const json: string | undefined = JSON.stringify(data);
  if (compact) return `[1,${JSON.stringify(from)},${json ?? "null"}]`;
  const head = `{"type":"broadcast","room":${JSON.stringify(room.name)},"from":${JSON.stringify(from)}`;
  return json === undefined ? `${head}}` : `${head},"data":${json}}`;
}

/** What a commit published: its frames in order (messages, or one view frame), as members receive them. */
export interface Committed {
  frames: SequencedFrame[];
}

/** What a fleet broker offers beyond rooms: requests between its instances (long-polling reaches its session's). */
export interface Fleet {
  /** this instance's id in the fleet */
  readonly instanceId: string;
  /** send `payload` to instance `to`'s request handler; undefined when it does not answer within `timeoutMs` */
  request(to: string, payload: unknown, timeoutMs: number): Promise<unknown | undefined>;
  /** answer the requests other instances send here */
  serveRequests(handler: (payload: unknown) => Promise<unknown>): void;
}

/**
 * A backend push's idempotency key, scoped to its room, with a digest of the data it publishes:
 * a repeat of the key within the window publishes nothing, and answers the first push's seq.
 */
export interface PushKey {
  /** the client's key (1–255 printable ASCII characters) */
  key: string;
  /** a digest of the data, so the same key with other data is told apart from a retry */
  fingerprint: string;
}

/**
 * What a keyed publish did: published the frame; or found the key used already within the window
 * and published nothing — with the same data (`repeat`, a retry) or other data (`reused`, a bug).
 */
export type KeyedPublish =
  | { kind: "published"; frame: MessageFrame }
  | { kind: "repeat"; seq: number }
  | { kind: "reused"; seq: number };

/** A room event scheduled by a handler: its name (unique in the room), when it is due (ms since the epoch), its data. */
export interface RoomTimer {
  name: string;
  at: number;
  data?: unknown;
}

/**
 * One run of a due timer, as its first commit carries it: that commit spends the timer in the same
 * step as the state and messages (Redis: the script drops the run's claim; SQLite: the transaction
 * deletes the run's row). A run that dies before committing is run again; one that committed is
 * not, and a second run of the same firing finds it spent (TimerSpentError): the timer takes
 * effect once.
 */
export interface FiredTimer {
  readonly timer: RoomTimer;
  /** what the store knows the run by (Redis: its claim); absent where the run is the process's own (memory) */
  readonly token?: string;
}

/** Runs a due timer: the route's `timer` handler on the room; resolves once it ran (or failed, logged). */
export type TimerRunner = (room: RoomRef, fired: FiredTimer) => Promise<void>;

/**
 * Where a broker keeps its rooms' timers, and what fires them: each scheduled timer runs once, on
 * one instance, unless cancelled or replaced first (a timer of the same name replaces it).
 */
export interface TimerStore {
  /** schedule `timer` in `room`, replacing one of the same name */
  schedule(room: RoomRef, timer: RoomTimer): MaybePromise<void>;
  /** cancel the timer `name` of `room`: whether one was pending */
  cancel(room: RoomRef, name: string): MaybePromise<boolean>;
  /** the room's pending timers, soonest first */
  list(room: RoomRef): MaybePromise<RoomTimer[]>;
  /** start firing due timers through `run` (an instance's start) */
  start(run: TimerRunner): void;
  /** stop firing (the instance stops) */
  stop(): void;
  /** a store whose runs live in the commit's own storage (SQLite): spend `fired`, inside that commit's write */
  spend?(room: RoomRef, fired: FiredTimer): void;
}

/** A pub/sub engine for rooms. */
export interface Broker {
  /** sequence, store and deliver a member's or backend's message; resolves to the frame with its `seq` */
  publish(room: RoomRef, from: string, data: unknown): MaybePromise<MessageFrame>;
  /**
   * publish unless `key` was used in this room within the idempotency window; the key and its
   * seq are stored in the same step as the message (one script, one storage write), so a crash
   * between the two cannot leave a published message without its key or a key without its message
   */
  publishKeyed(room: RoomRef, from: string, data: unknown, key: PushKey): MaybePromise<KeyedPublish>;
  /**
   * Run `change` on the room's state and commit what it returns in one step — the state, the
   * messages with their seqs and the view riding on the last of them (or a view frame) — then deliver
   * them; linearizable per room. Brokers without it hold no room state (assemble refuses stateful
   * routes on them). With `fired`, the commit also spends that timer run, in the same step, or is
   * refused (TimerSpentError) when another run of it committed first.
   */
  commit?(room: RoomRef, from: string, change: ChangeFn, fired?: FiredTimer): MaybePromise<Committed>;
  /** deliver an unsequenced JSON broadcast (not kept in history) to the room's members, as `options` say */
  broadcast(room: RoomRef, from: string, data: unknown, options?: BroadcastOptions): MaybePromise<void>;
  /** deliver binary bytes to the room's members except `from`; binary is not sequenced */
  relay(room: RoomRef, from: string, bytes: Uint8Array): MaybePromise<void>;
  /** add a member and tell the others; resolves to what the new member is greeted with */
  join(room: RoomRef, member: Member): MaybePromise<JoinSnapshot>;
  /** re-add a member known from a restored connection record, telling nobody (Durable Object wake-up) */
  restore(room: RoomRef, member: Member): void;
  /** replace what others see of a member (its `info`); with `announce`, tell the room (presence `update`, within the limit) */
  update(room: RoomRef, member: Member, announce: boolean): MaybePromise<void>;
  /**
   * remove a member and tell the others how its connection ended; resolves to how many members
   * remain (0: it was the last, on every instance), undefined when it was not a member (any more)
   */
  leave(room: RoomRef, memberId: string, code?: number, reason?: string): MaybePromise<number | undefined>;
  /** the room's current members and last sequence number */
  snapshot(room: RoomRef): MaybePromise<JoinSnapshot>;
  /** how many members the room has (cheaper than a snapshot) */
  count(room: RoomRef): MaybePromise<number>;
  /** messages (and view changes) after `seq` still in history, oldest first */
  history(room: RoomRef, after: number, limit: number): MaybePromise<SequencedFrame[]>;
  /** receive the room's deliveries until the returned function is called */
  subscribe(room: RoomRef, listener: DeliveryListener): () => void;
  /** release connections and timers */
  close(): MaybePromise<void>;
  /** false while the broker cannot reach its backend (readiness fails, /metrics says so); memory: always up */
  readonly up?: boolean;
  /**
   * The instance is shutting down. A broker whose history dies with it (memory) refuses to sequence
   * from now on (BrokerUnavailableError `draining`): an acknowledgement must mean the message is kept
   * where a member can still get it, and nobody could after the exit. One whose history outlives the
   * instance (Redis; a Durable Object's SQLite) goes on: the others deliver what it acknowledges.
   */
  drain?(): void;
  /** connect to its backend; an instance's start() awaits it (Redis) */
  start?(): Promise<void>;
  /** a broker whose instances form a fleet (Redis): how they reach each other */
  readonly fleet?: Fleet;
  /** where the rooms' timers live (memory: this process; Redis: the fleet; a Durable Object: its alarm) */
  readonly timers?: TimerStore;
  /**
   * hear of rooms the broker emptied itself, with no member's leave to say so (a fleet's sweep of
   * a lost instance's members): the engine runs their route's `vacated` hook
   */
  onVacated?(listener: (room: RoomRef) => void): void;
}
