/**
 * Handshake pacing: at most a few WebSocket handshakes in flight (CONNECTING)
 * per host — scheme, host and port — shared by every EdgewireSocket of the
 * page (or process); the others wait their turn, first come first served.
 *
 * Why: Chromium delays each new handshake by 1–5 s × 2^min(pending, 16) / 65536
 * (services/network/websocket_throttler.cc; pending counts the whole renderer),
 * and RFC 6455 §4.1 allows one CONNECTING connection per host. 25 `joinRoom`
 * calls at once waited 3.9–5.0 s for the last welcome on every runtime; with 4
 * in flight, 0.31–0.38 s on Node, Deno and Bun (docs/client.md, "Many rooms on
 * one page", has the measurements and why 4).
 */

/** Handshakes in flight per host when neither the socket nor the page says otherwise. */
export const DEFAULT_MAX_HANDSHAKES_PER_HOST = 4;

let pageLimit = DEFAULT_MAX_HANDSHAKES_PER_HOST;

/**
 * Set the page-wide default of `maxHandshakesPerHost` (a number ≥ 1; `Infinity`
 * turns pacing off) for every socket that does not set its own, read at each
 * attempt. Returns the previous default.
 */
export function setMaxHandshakesPerHost(limit: number): number {
  const previous = pageLimit;
  pageLimit = normalizeLimit(limit);
  return previous;
}

/** The page-wide default of `maxHandshakesPerHost` now. */
export function maxHandshakesPerHost(): number {
  return pageLimit;
}

/** A limit as the pacer uses it: a whole number ≥ 1, or Infinity (no pacing). */
export function normalizeLimit(limit: number): number {
  if (Number.isNaN(limit)) throw new RangeError("maxHandshakesPerHost must be a number ≥ 1 or Infinity");
  return limit === Number.POSITIVE_INFINITY ? limit : Math.max(1, Math.floor(limit));
}

/** What the pacer keys hosts by: `ws://example.com:8080` (a default port is left out, so ws://h and ws://h:80 are one host). */
export function hostKey(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}`;
}

/** One handshake's place: waiting in its host's queue, holding a slot, or done. */
export interface HandshakeTicket {
  /** true once the handshake may start (the `start` callback has run or is running) */
  readonly started: boolean;
  /** leave the queue, or give the slot back; idempotent. A ticket released while queued never starts. */
  release(): void;
}

interface Host {
  key: string;
  inFlight: number;
  queue: Waiter[];
}

interface Waiter {
  host: Host | undefined;
  limit: number;
  start: (ticket: HandshakeTicket) => void;
  ticket: HandshakeTicket | undefined;
  state: "queued" | "started" | "released";
}

/** Handshakes in flight and waiting, per host key; one instance is shared by all sockets (`handshakePacer`). */
export class HandshakePacer {
  readonly #hosts = new Map<string, Host>();

  /**
   * Ask to start a handshake to `key` with at most `limit` in flight there. `start` gets the
   * ticket and runs at once (synchronously, before this returns) when a slot is free, else when
   * one frees, in FIFO order. Release the ticket as soon as the handshake opens, fails or is
   * given up.
   */
  request(key: string, limit: number, start: (ticket: HandshakeTicket) => void): HandshakeTicket {
    const waiter: Waiter = { host: undefined, limit: normalizeLimit(limit), start, state: "queued", ticket: undefined };
    const ticket: HandshakeTicket = {
      get started() {
        return waiter.state === "started";
      },
      release: () => this.#release(waiter),
    };
    waiter.ticket = ticket;
    if (waiter.limit === Number.POSITIVE_INFINITY) {
      // Unpaced: not counted, never queued.
      waiter.state = "started";
      start(ticket);
      return ticket;
    }
    let host = this.#hosts.get(key);
    if (!host) {
      host = { key, inFlight: 0, queue: [] };
      this.#hosts.set(key, host);
    }
    waiter.host = host;
    host.queue.push(waiter);
    this.#pump(host);
    return ticket;
  }

  /** Handshakes to `key` holding a slot, and waiting for one (for tests and diagnostics). */
  stats(key: string): { inFlight: number; queued: number } {
    const host = this.#hosts.get(key);
    return { inFlight: host?.inFlight ?? 0, queued: host?.queue.length ?? 0 };
  }

  #release(waiter: Waiter): void {
    const was = waiter.state;
    waiter.state = "released";
    const host = waiter.host;
    if (was === "released" || host === undefined) return; // unpaced waiters have no host
    if (was === "queued") {
      const at = host.queue.indexOf(waiter);
      if (at >= 0) host.queue.splice(at, 1);
    } else host.inFlight -= 1;
    this.#pump(host);
  }

  // Start waiters from the head while the head's own limit allows (strict FIFO: a waiter with a
  // larger limit does not overtake one with a smaller). A `start` may release (its constructor
  // threw) or request again: the state is consistent before every call. A host is forgotten only
  // when nothing holds or waits for a slot there.
  #pump(host: Host): void {
    for (let head = host.queue[0]; head !== undefined && host.inFlight < head.limit; head = host.queue[0]) {
      host.queue.shift();
      host.inFlight += 1;
      head.state = "started";
      head.start(head.ticket as HandshakeTicket);
    }
    if (host.inFlight === 0 && host.queue.length === 0 && this.#hosts.get(host.key) === host) {
      this.#hosts.delete(host.key);
    }
  }
}

/** The pacer every EdgewireSocket of this page (or process) shares. */
export const handshakePacer = new HandshakePacer();
