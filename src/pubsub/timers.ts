/**
 * Room timers in this process (the memory broker's): one runtime timer per pending room timer.
 * They die with the process, as the memory broker's rooms do. A delay past what runtime timers
 * take (2^31 − 1 ms, ~24.8 days) is waited in steps.
 */
import type { RoomRef, RoomTimer, TimerRunner, TimerStore } from "./broker.ts";

// setTimeout's largest delay on every runtime: a longer one fires at once.
const LONGEST_DELAY = 2 ** 31 - 1;

interface Pending {
  ref: RoomRef;
  timer: RoomTimer;
  handle: ReturnType<typeof setTimeout> | undefined;
}

/** Timers in memory, fired by this process. */
export class MemoryTimers implements TimerStore {
  readonly #rooms = new Map<string, Map<string, Pending>>();
  readonly #now: () => number;
  #run: TimerRunner | undefined;

  /** timers on `now`'s clock */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  schedule(ref: RoomRef, timer: RoomTimer): void {
    this.cancel(ref, timer.name);
    let room = this.#rooms.get(ref.key);
    if (!room) {
      room = new Map();
      this.#rooms.set(ref.key, room);
    }
    const pending: Pending = { ref, timer, handle: undefined };
    room.set(timer.name, pending);
    if (this.#run) this.#arm(pending);
  }

  cancel(ref: RoomRef, name: string): boolean {
    const room = this.#rooms.get(ref.key);
    const pending = room?.get(name);
    if (!room || !pending) return false;
    if (pending.handle !== undefined) clearTimeout(pending.handle);
    room.delete(name);
    if (room.size === 0) this.#rooms.delete(ref.key);
    return true;
  }

  list(ref: RoomRef): RoomTimer[] {
    return [...(this.#rooms.get(ref.key)?.values() ?? [])].map((p) => p.timer).sort((a, b) => a.at - b.at);
  }

  start(run: TimerRunner): void {
    this.#run = run;
    for (const room of this.#rooms.values()) for (const pending of room.values()) this.#arm(pending);
  }

  stop(): void {
    this.#run = undefined;
    for (const room of this.#rooms.values()) {
      for (const pending of room.values()) {
        if (pending.handle !== undefined) clearTimeout(pending.handle);
        pending.handle = undefined;
      }
    }
  }

  #arm(pending: Pending): void {
    const delay = Math.max(0, pending.timer.at - this.#now());
    pending.handle = setTimeout(() => this.#due(pending), Math.min(delay, LONGEST_DELAY));
  }

  // Taken out before it runs: it runs once, and a handler that schedules it again makes a new one.
  #due(pending: Pending): void {
    const run = this.#run;
    const room = this.#rooms.get(pending.ref.key);
    if (!run || room?.get(pending.timer.name) !== pending) return;
    if (pending.timer.at > this.#now()) {
      this.#arm(pending);
      return;
    }
    this.cancel(pending.ref, pending.timer.name);
    void run(pending.ref, { timer: pending.timer });
  }
}
