/**
 * Per-room sequence numbers and a bounded history of room messages. The store
 * is what makes `seq` survive: memory here (the embedded default), SQLite in a
 * Durable Object (sql-history.ts), Redis Streams next.
 */
import type { MessageFrame } from "../protocol.ts";
import type { MaybePromise } from "./broker.ts";

/** Where a room's sequence counter and recent messages live; rooms are broker keys. */
export interface HistoryStore {
  /** the room's last assigned sequence number (0 for a new room) */
  lastSeq(room: string): MaybePromise<number>;
  /** assign the next sequence number to `make(seq)`'s frame and keep it; returns the frame and its JSON */
  append(room: string, make: (seq: number) => MessageFrame): MaybePromise<{ frame: MessageFrame; text: string }>;
  /** messages with seq > `after`, oldest first, at most `limit` */
  since(room: string, after: number, limit: number): MaybePromise<MessageFrame[]>;
  /** the room has members or listeners on this instance again */
  occupied?(room: string): void;
  /** the room has no members and no listeners on this instance any more: it may be forgotten once idle */
  vacated?(room: string): void;
}

/** Default bounded history length per room. */
export const DEFAULT_HISTORY_LIMIT = 1000;
/** Default time an unoccupied room without messages is remembered: 10 minutes. */
export const DEFAULT_ROOM_IDLE_MS = 10 * 60_000;

interface RoomLog {
  seq: number;
  frames: MessageFrame[];
  /** members or listeners are on it; an occupied room is never forgotten */
  occupied: boolean;
}

/** Options of the memory history. */
export interface MemoryHistoryOptions {
  /** keep at most this many messages per room (default 1000) */
  limit?: number;
  /** forget a room unoccupied and without messages for this long (default 10 minutes) */
  idleMs?: number;
  /** clock, injectable for tests */
  now?: () => number;
}

/**
 * In-memory history: a counter and a ring of the last `limit` messages per
 * room. Rooms nobody is in and nobody wrote to for `idleMs` are forgotten, so
 * memory is bounded by live rooms, not by every room name ever seen (measured
 * before this: 5 000 one-message rooms kept 8 MB on Node for good). A
 * forgotten room starts again at seq 1.
 */
export class MemoryHistory implements HistoryStore {
  /** most messages kept per room */
  readonly limit: number;
  /** how long an unoccupied room without messages is remembered */
  readonly idleMs: number;
  readonly #now: () => number;
  readonly #rooms = new Map<string, RoomLog>();
  /** unoccupied rooms by when they went quiet, oldest first (a Map keeps insertion order) */
  readonly #idle = new Map<string, number>();

  /** a history with the given bounds */
  constructor(options: MemoryHistoryOptions = {}) {
    this.limit = options.limit ?? DEFAULT_HISTORY_LIMIT;
    this.idleMs = options.idleMs ?? DEFAULT_ROOM_IDLE_MS;
    this.#now = options.now ?? Date.now;
  }

  /** number of rooms remembered (for tests and metrics) */
  get size(): number {
    return this.#rooms.size;
  }

  #log(room: string): RoomLog {
    let log = this.#rooms.get(room);
    if (!log) {
      log = { seq: 0, frames: [], occupied: false };
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

  lastSeq(room: string): number {
    return this.#rooms.get(room)?.seq ?? 0;
  }

  append(room: string, make: (seq: number) => MessageFrame): { frame: MessageFrame; text: string } {
    const log = this.#log(room);
    const frame = make(++log.seq);
    log.frames.push(frame);
    // Trim in batches so a full room does not shift the array on every message.
    if (log.frames.length > this.limit * 1.25) log.frames.splice(0, log.frames.length - this.limit);
    if (!log.occupied) {
      this.#quiet(room);
      this.#sweep();
    }
    return { frame, text: JSON.stringify(frame) };
  }

  since(room: string, after: number, limit: number): MessageFrame[] {
    const frames = this.#rooms.get(room)?.frames ?? [];
    const first = frames.findIndex((f) => f.seq > after);
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
