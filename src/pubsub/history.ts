/**
 * Per-room sequence numbers and a bounded history of room messages. The store
 * is what makes `seq` survive: memory here (the embedded default), SQLite in a
 * Durable Object (sql-history.ts), Redis Streams next.
 */

import { randomId } from "../bytes.ts";
import {
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_HISTORY_MAX_AGE_MS,
  DEFAULT_IDEMPOTENCY_MAX_KEYS,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  DEFAULT_ROOM_IDLE_MS,
  type KeyBounds,
} from "../config.ts";
import type { MessageFrame, SequencedFrame } from "../protocol.ts";
import type { MaybePromise, PushKey } from "./broker.ts";

/**
 * Where a room's sequence stands: its last `seq` and its epoch. The epoch
 * names one unbroken history: it changes whenever the history was lost (a
 * forgotten room, a flushed Redis, a reset object), so a `seq` from before can
 * never be taken for a current one (Centrifugo's offset + epoch).
 */
export interface Head {
  seq: number;
  epoch: string;
  /** the room state's JSON as of `seq` (a stateful room's), undefined while it has none: its route's initial state */
  state?: string | undefined;
}

/**
 * What a transaction makes of the stored state: the next state's JSON (absent: unchanged) and the
 * frames to append, numbered from the room's last seq + 1 on. Made by `run`, which throws to refuse.
 */
export interface Step {
  state?: string | undefined;
  frames: SequencedFrame[];
}

/** The JSON of a step's frames, which must be numbered from `last` + 1 on (a store's check of its commit). */
export function stepTexts(step: Step, last: number): string[] {
  return step.frames.map((frame, i) => {
    if (frame.seq !== last + 1 + i) throw new RangeError(`a commit's frames are numbered from ${last + 1}`);
    return JSON.stringify(frame);
  });
}

/** What a commit appended: its frames and their JSON, in order. */
export interface Commit {
  frames: SequencedFrame[];
  texts: string[];
}

/** A frame appended to a room's history, and its JSON. */
export interface Appended {
  frame: MessageFrame;
  text: string;
}

/** A keyed append that found its key used within the window: nothing was appended. */
export interface Prior {
  /** the seq the key's first push got */
  seq: number;
  /** whether that push had the same data (a retry), or other data (the key reused) */
  sameBody: boolean;
}

/** Where a room's sequence counter and recent messages live; rooms are broker keys. */
export interface HistoryStore {
  /** the room's last assigned sequence number (0 for a new room) and its epoch */
  head(room: string): MaybePromise<Head>;
  /** assign the next sequence number to `make(seq)`'s frame and keep it; returns the frame and its JSON */
  append(room: string, make: (seq: number) => MessageFrame): MaybePromise<Appended>;
  /**
   * append unless `key` was used in `room` within the idempotency window (then: what it got); the
   * key is kept with its seq in the same step as the frame
   */
  appendKeyed(room: string, make: (seq: number) => MessageFrame, key: PushKey): MaybePromise<Appended | Prior>;
  /**
   * run `run` on the room's state JSON and last seq, and store what it returns in one step: the state
   * and the frames, both or neither; a room's commits never interleave (`run` is synchronous).
   * `also` is written in the same step (a fired timer's run spent with the commit that carries it).
   */
  commit(room: string, run: (state: string | undefined, seq: number) => Step, also?: () => void): MaybePromise<Commit>;
  /** messages (and view changes) with seq > `after`, oldest first, at most `limit` */
  since(room: string, after: number, limit: number): MaybePromise<SequencedFrame[]>;
  /** the room has members or listeners on this instance again */
  occupied?(room: string): void;
  /** the room has no members and no listeners on this instance any more: it may be forgotten once idle */
  vacated?(room: string): void;
  /** what it keeps outlives the process (a Durable Object's SQLite); memory: false */
  readonly durable?: boolean;
}

/** How long push keys are remembered, and how many at most (config.ts defines it, with its defaults). */
export type { KeyBounds } from "../config.ts";

/** The default key bounds: a day, 100 000 keys. */
export const DEFAULT_KEY_BOUNDS: KeyBounds = {
  windowMs: DEFAULT_IDEMPOTENCY_WINDOW_MS,
  maxKeys: DEFAULT_IDEMPOTENCY_MAX_KEYS,
};

interface RoomLog {
  seq: number;
  epoch: string;
  frames: SequencedFrame[];
  /** the room state's JSON (stateful rooms), undefined until a transaction sets it */
  state: string | undefined;
  /** members or listeners are on it; an occupied room is never forgotten */
  occupied: boolean;
}

/** Options of the memory history. */
export interface MemoryHistoryOptions {
  /** keep at most this many messages per room (default 1000) */
  limit?: number;
  /** forget a room unoccupied and without messages for this long (default 10 minutes) */
  idleMs?: number;
  /** drop messages older than this (default a day) */
  maxAgeMs?: number;
  /** how long push keys are kept, and how many (default a day, 100 000) */
  keys?: KeyBounds;
  /** clock, injectable for tests */
  now?: () => number;
}

interface KeyEntry {
  seq: number;
  fingerprint: string;
  at: number;
}

/**
 * In-memory history: a counter and a ring of the last `limit` messages per
 * room. Rooms nobody is in and nobody wrote to for `idleMs` are forgotten, so
 * memory is bounded by live rooms, not by every room name ever seen (measured
 * before this: 5 000 one-message rooms kept 8 MB on Node for good). A
 * forgotten room starts again at seq 1. Push keys are kept apart from the rooms, so a
 * room forgotten while idle still answers a retry of its last push within the window;
 * they are bounded by age (the window) and by count over all rooms (`keys.maxKeys`,
 * oldest first): a bound per room would bound nothing with rooms unbounded.
 */
export class MemoryHistory implements HistoryStore {
  /** most messages kept per room */
  readonly limit: number;
  /** how long an unoccupied room without messages is remembered */
  readonly idleMs: number;
  /** oldest message kept */
  readonly maxAgeMs: number;
  /** how long and how many push keys are kept */
  readonly keyBounds: KeyBounds;
  readonly #now: () => number;
  readonly #rooms = new Map<string, RoomLog>();
  /** push keys by "room\nkey", oldest first (insertion order is time order): expiry and eviction pop the front */
  readonly #keys = new Map<string, KeyEntry>();
  /** unoccupied rooms by when they went quiet, oldest first (a Map keeps insertion order) */
  readonly #idle = new Map<string, number>();

  /** a history with the given bounds */
  constructor(options: MemoryHistoryOptions = {}) {
    this.limit = options.limit ?? DEFAULT_HISTORY_LIMIT;
    this.idleMs = options.idleMs ?? DEFAULT_ROOM_IDLE_MS;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_HISTORY_MAX_AGE_MS;
    this.keyBounds = options.keys ?? DEFAULT_KEY_BOUNDS;
    this.#now = options.now ?? Date.now;
  }

  /** number of rooms remembered (for tests and metrics) */
  get size(): number {
    return this.#rooms.size;
  }

  /** number of push keys remembered (for tests) */
  get keyCount(): number {
    return this.#keys.size;
  }

  #log(room: string): RoomLog {
    let log = this.#rooms.get(room);
    if (!log) {
      log = { seq: 0, epoch: randomId(), frames: [], state: undefined, occupied: false };
      this.#rooms.set(room, log);
    }
    return log;
  }

  // Re-inserting moves the room to the end: the idle map stays ordered by time.
  #quiet(room: string): void {
    this.#idle.delete(room);
    this.#idle.set(room, this.#now());
  }

  #sweep(): void {
    const cutoff = this.#now() - this.idleMs;
    for (const [room, since] of this.#idle) {
      if (since > cutoff) break;
      this.#idle.delete(room);
      this.#rooms.delete(room);
    }
  }

  head(room: string): Head {
    // A room never written to and never occupied has no history yet: no epoch. (A join occupies
    // the room first, which makes its log and epoch, so a joiner always sees the epoch that continues.)
    const log = this.#rooms.get(room);
    return log ? { seq: log.seq, epoch: log.epoch, state: log.state } : { seq: 0, epoch: "" };
  }

  append(room: string, make: (seq: number) => MessageFrame): { frame: MessageFrame; text: string } {
    const log = this.#log(room);
    const frame = make(++log.seq);
    this.#keep(room, log, frame);
    return { frame, text: JSON.stringify(frame) };
  }

  commit(room: string, run: (state: string | undefined, seq: number) => Step, also?: () => void): Commit {
    const log = this.#log(room);
    // Synchronous from the read to the write: no other commit of this process can come between.
    const step = run(log.state, log.seq);
    const texts = stepTexts(step, log.seq);
    also?.();
    if (step.state !== undefined) log.state = step.state;
    for (const frame of step.frames) {
      log.seq = frame.seq;
      this.#keep(room, log, frame);
    }
    if (step.frames.length === 0 && !log.occupied) this.#quiet(room);
    return { frames: step.frames, texts };
  }

  // Keep a frame that has its seq: in the bounded ring, trimmed by count and age.
  #keep(room: string, log: RoomLog, frame: SequencedFrame): void {
    log.frames.push(frame);
    // Trim in batches so a full room does not shift the array on every message.
    if (log.frames.length > this.limit * 1.25) log.frames.splice(0, log.frames.length - this.limit);
    // Age: the oldest frames go once they are past the bound (checked on the first only: frames are in time order).
    const oldest = this.#now() - this.maxAgeMs;
    if ((log.frames[0]?.ts ?? oldest) < oldest) {
      const keep = log.frames.findIndex((f) => f.ts >= oldest);
      log.frames.splice(0, keep < 0 ? log.frames.length : keep);
    }
    if (!log.occupied) {
      this.#quiet(room);
      this.#sweep();
    }
  }

  appendKeyed(room: string, make: (seq: number) => MessageFrame, key: PushKey): Appended | Prior {
    const now = this.#now();
    const expired = now - this.keyBounds.windowMs;
    for (const [id, entry] of this.#keys) {
      if (entry.at > expired) break;
      this.#keys.delete(id);
    }
    const id = `${room}\n${key.key}`;
    const prior = this.#keys.get(id);
    if (prior) return { seq: prior.seq, sameBody: prior.fingerprint === key.fingerprint };
    const appended = this.append(room, make);
    this.#keys.set(id, { seq: appended.frame.seq, fingerprint: key.fingerprint, at: now });
    // Past the bound the oldest key goes: a retry of it would publish again, but retries come soon after.
    if (this.#keys.size > this.keyBounds.maxKeys) this.#keys.delete(this.#keys.keys().next().value as string);
    return appended;
  }

  since(room: string, after: number, limit: number): SequencedFrame[] {
    const frames = this.#rooms.get(room)?.frames ?? [];
    const oldest = this.#now() - this.maxAgeMs;
    const first = frames.findIndex((f) => f.seq > after && f.ts >= oldest);
    if (first < 0) return [];
    return frames.slice(first, first + limit);
  }

  occupied(room: string): void {
    this.#log(room).occupied = true;
    this.#idle.delete(room);
  }

  vacated(room: string): void {
    const log = this.#rooms.get(room);
    if (log) {
      log.occupied = false;
      this.#quiet(room);
    }
    this.#sweep();
  }
}
