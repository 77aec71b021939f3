/**
 * Per-room sequence numbers and a bounded history of room messages. The store
 * is what makes `seq` survive: memory here (the embedded default), SQLite in a
 * Durable Object (sql-history.ts), Redis Streams later.
 */
import type { MessageFrame } from "../protocol.ts";

/** A value, or a promise of it: memory and SQLite stores answer synchronously, Redis will not. */
export type MaybePromise<T> = T | Promise<T>;

/** Where a room's sequence counter and recent messages live. */
export interface HistoryStore {
  /** the room's last assigned sequence number (0 for a new room) */
  lastSeq(room: string): MaybePromise<number>;
  /** assign the next sequence number to `make(seq)`'s frame and keep it; returns the frame and its JSON */
  append(room: string, make: (seq: number) => MessageFrame): MaybePromise<{ frame: MessageFrame; text: string }>;
  /** messages with seq > `after`, oldest first, at most `limit` */
  since(room: string, after: number, limit: number): MaybePromise<MessageFrame[]>;
}

/** Default bounded history length per room. */
export const DEFAULT_HISTORY_LIMIT = 1000;

interface RoomLog {
  seq: number;
  frames: MessageFrame[];
}

/** In-memory history: a counter and a ring of the last `limit` messages per room. */
export class MemoryHistory implements HistoryStore {
  readonly #rooms = new Map<string, RoomLog>();
  /** keep at most `limit` messages per room */
  constructor(readonly limit: number = DEFAULT_HISTORY_LIMIT) {}

  #log(room: string): RoomLog {
    let log = this.#rooms.get(room);
    if (!log) {
      log = { seq: 0, frames: [] };
      this.#rooms.set(room, log);
    }
    return log;
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
    return { frame, text: JSON.stringify(frame) };
  }

  since(room: string, after: number, limit: number): MessageFrame[] {
    const frames = this.#rooms.get(room)?.frames ?? [];
    const first = frames.findIndex((f) => f.seq > after);
    if (first < 0) return [];
    return frames.slice(first, first + limit);
  }
}
