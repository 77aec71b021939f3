/**
 * The long-polling transport, as docs/protocol.md ("Long-polling transport")
 * specifies it: POST {route}/poll opens a session, a GET loop with a cursor
 * receives, numbered POSTs send one at a time, DELETE closes. Every request is
 * safe to repeat (same cursor, same `n`), so a lost response is retried
 * without losing or duplicating a frame.
 */

import { type Bytes, fromBase64, toBase64, utf8Length } from "../bytes.ts";
import { POLL_PROTOCOL_HEADER, type PollFrame, type PollOpenReply, type PollReply, PROBE_HEADER } from "../protocol.ts";
import { HTTP_REFUSAL_CLOSE_BASE } from "./reconnect.ts";
import type { Transport, TransportEvents } from "./transport.ts";

/** The polling wire types are the server's own. */
export { POLL_PROTOCOL_HEADER, type PollFrame, type PollOpenReply, type PollReply } from "../protocol.ts";

/** The part of `fetch` the transport uses, so any fetch (or a test double) can be injected. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Settings of the polling transport, resolved by the socket. */
export interface PollingSettings {
  fetch: FetchLike;
  /** delay before retry number `attempt` of a failed GET or POST */
  retryDelay: (attempt: number) => number;
  /** give the session up once its requests have failed for this long; the server forgets a session after 60 s without a GET */
  sessionExpiryMs: number;
  /** a credential for the session's open (`Authorization: Bearer`); the sid is the session's from then on */
  token?: string | undefined;
}

// The server returns at most 256 KiB per GET; batching POSTs to the same size
// keeps one request's body well under any proxy's body limit.
const MAX_BATCH_BYTES = 256 * 1024;
// A held GET may legitimately take the server's timeoutMs; past that plus this
// margin a silent proxy has eaten it, and the GET is repeated.
const HOLD_GRACE_MS = 10_000;
const DEFAULT_HOLD_MS = 25_000;
const REQUEST_TIMEOUT_MS = 30_000;
// close() must finish even when the server is gone.
const CLOSE_TIMEOUT_MS = 5_000;

interface Reply {
  status: number;
  body: unknown;
}

interface Outgoing {
  frame: PollFrame;
  bytes: number;
}

/** The long-polling base URL of a WebSocket URL: ws→http, wss→https, `/poll` appended to the path, query kept. */
export function pollUrl(wsUrl: string): URL {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/poll`;
  url.hash = "";
  return url;
}

/**
 * `{code, reason}` for an HTTP refusal that retrying cannot fix (4xx but 408/429); undefined when
 * worth retrying. The close code is 4000 + the status; the reason is the body's error code, then
 * its message (`invalid_state: state: name: Invalid length…`), cut to a close reason's 123 bytes.
 */
export function httpRefusal(status: number, body: unknown): { code: number; reason: string } | undefined {
  if (status < 400 || status >= 500 || status === 408 || status === 429) return undefined;
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === "string" ? error.code : `HTTP ${status}`;
  const reason = typeof error?.message === "string" && error.message !== "" ? `${code}: ${error.message}` : code;
  return { code: HTTP_REFUSAL_CLOSE_BASE + status, reason: clip(reason, 123) };
}

// At most `max` UTF-8 bytes, cut at a character.
function clip(text: string, max: number): string {
  if (utf8Length(text) <= max) return text;
  let out = text.slice(0, max);
  while (utf8Length(out) > max) out = out.slice(0, -1);
  return out;
}

/** `Retry-After` in ms (seconds or an HTTP date), if a response carries one; at most a minute. */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now;
  return Number.isFinite(ms) ? Math.min(60_000, Math.max(0, Math.round(ms))) : undefined;
}

/** What a server says of a connection it would (not) admit now; undefined when it did not answer as edgewire. */
export interface ProbeAnswer {
  /** the close a refusal means (4000 + its 4xx status, its code): final */
  refusal?: { code: number; reason: string };
  /** when to try again, from `Retry-After` (503 draining, 429, room_full) */
  retryAfterMs?: number;
}

/** The request headers that carry subprotocols and a token to the long-polling endpoints. */
export function pollHeaders(protocols: string[], token: string | undefined): Record<string, string> {
  return {
    ...(protocols.length > 0 ? { [POLL_PROTOCOL_HEADER]: protocols.join(", ") } : {}),
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  };
}

/**
 * Ask the server whether it would admit a connection to the route of `wsUrl` now (`GET {route}/poll`
 * with PROBE_HEADER: the same checks as a real one, nothing opened). A browser cannot see why a
 * WebSocket handshake failed; this tells a refusal (a 4xx: final) from an outage. Never throws.
 */
export async function probe(
  fetch: FetchLike,
  wsUrl: string,
  protocols: string[],
  token: string | undefined,
  timeoutMs: number,
): Promise<ProbeAnswer | undefined> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(pollUrl(wsUrl).href, {
      method: "GET",
      headers: { ...pollHeaders(protocols, token), [PROBE_HEADER]: "1" },
      signal: controller.signal,
    });
    const text = await response.text();
    // Without the header it is not edgewire's answer. A 401 or 403 is still the user's own middleware in
    // front of edgewire (an API key, a session check), refusing the probe as it refused the handshake;
    // anything else (a 404 from another server, an older edgewire) says nothing about this connection.
    if (response.headers.get(PROBE_HEADER) === null && response.status !== 401 && response.status !== 403)
      return undefined;
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {}
    const refusal = httpRefusal(response.status, body);
    const after = retryAfterMs(response.headers.get("retry-after"));
    return { ...(refusal ? { refusal } : {}), ...(after === undefined ? {} : { retryAfterMs: after }) };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

function isFrame(value: unknown): value is PollFrame {
  if (typeof value !== "object" || value === null) return false;
  const frame = value as { t?: unknown; b?: unknown };
  return typeof frame.t === "string" || typeof frame.b === "string";
}

function isPollReply(value: unknown): value is PollReply {
  if (typeof value !== "object" || value === null) return false;
  const reply = value as { cursor?: unknown; frames?: unknown; close?: { code?: unknown } };
  return (
    typeof reply.cursor === "number" &&
    Array.isArray(reply.frames) &&
    reply.frames.every(isFrame) &&
    (reply.close === undefined || typeof reply.close?.code === "number")
  );
}

/** One long-polling session: one connection attempt of the socket. */
export class PollingTransport implements Transport {
  /** always "polling" */
  readonly kind = "polling" as const;
  readonly #base: URL;
  readonly #settings: PollingSettings;
  readonly #events: TransportEvents;
  /** aborts every request of the session */
  readonly #session = new AbortController();
  /** aborts the held GET alone: close() stops receiving but still flushes sends */
  readonly #receiving = new AbortController();
  #sid = "";
  #cursor = 0;
  #holdMs = DEFAULT_HOLD_MS;
  #open = false;
  #done = false;
  #outbox: Outgoing[] = [];
  #outboxBytes = 0;
  #inflight: { body: string; bytes: number } | undefined;
  #n = 0;
  #closing: { code: number | undefined; reason: string } | undefined;
  #farewellSent = false;

  /** open a session on the route of `url` (a ws:// or wss:// URL) */
  constructor(url: string, protocols: string[], settings: PollingSettings, events: TransportEvents) {
    this.#base = pollUrl(url);
    this.#settings = settings;
    this.#events = events;
    this.#guard(this.#handshake(protocols));
  }

  /** bytes sent and not yet acknowledged by the server */
  get bufferedAmount(): number {
    return this.#outboxBytes + (this.#inflight?.bytes ?? 0);
  }

  /** all of bufferedAmount lives in the SDK */
  get heldBytes(): number {
    return this.bufferedAmount;
  }

  /** queue one frame for the next POST */
  send(data: string | Bytes): void {
    if (this.#done || this.#closing) return;
    const outgoing: Outgoing =
      typeof data === "string"
        ? { frame: { t: data }, bytes: utf8Length(data) }
        : { frame: { b: toBase64(data) }, bytes: data.byteLength };
    this.#outbox.push(outgoing);
    this.#outboxBytes += outgoing.bytes;
    this.#guard(this.#pump());
  }

  /** stop receiving, flush what was sent, then DELETE the session with this code and reason */
  close(code: number | undefined, reason: string): void {
    if (this.#done || this.#closing) return;
    this.#closing = { code, reason };
    this.#receiving.abort();
    if (!this.#open) {
      this.#finish(code ?? 1005, reason, false);
      return;
    }
    if (this.#inflight === undefined && this.#outbox.length === 0) this.#guard(this.#farewell());
  }

  /** drop the session without a word; the server expires it */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#session.abort();
    this.#receiving.abort();
  }

  async #handshake(protocols: string[]): Promise<void> {
    let reply: Reply;
    try {
      const headers = pollHeaders(protocols, this.#settings.token);
      reply = await this.#call("POST", this.#base.href, { headers, timeoutMs: REQUEST_TIMEOUT_MS });
    } catch {
      this.#finish(1006, "polling handshake failed", false);
      return;
    }
    const body = reply.body as Partial<PollOpenReply> | undefined;
    if (this.#done) {
      // Aborted while the server was creating the session: end it now rather than let it expire.
      if (reply.status === 200 && typeof body?.sid === "string") {
        this.#sid = body.sid;
        void this.#call("DELETE", this.#sidUrl({}), { timeoutMs: CLOSE_TIMEOUT_MS, ignoreAbort: true }).catch(() => {});
      }
      return;
    }
    if (reply.status !== 200) {
      const refused = httpRefusal(reply.status, reply.body);
      this.#finish(refused?.code ?? 1006, refused?.reason ?? `polling handshake: HTTP ${reply.status}`, false);
      return;
    }
    if (typeof body?.sid !== "string" || body.sid === "") {
      this.#finish(1002, "polling handshake: reply has no sid", false);
      return;
    }
    this.#sid = body.sid;
    if (typeof body.timeoutMs === "number" && body.timeoutMs > 0) this.#holdMs = body.timeoutMs;
    this.#open = true;
    this.#events.open(typeof body.protocol === "string" ? body.protocol : "", "");
    this.#guard(this.#receive());
    this.#guard(this.#pump());
  }

  // The loops catch what they expect; anything else ends the session instead
  // of surfacing as an unhandled rejection (which ends a Node process).
  #guard(task: Promise<void>): void {
    task.catch((error: unknown) => this.#fail(1006, error instanceof Error ? error.message : String(error)));
  }

  // The GET loop. The cursor only moves when a reply arrived whole, so a
  // failed or lost GET is repeated with the same cursor: no loss, no duplicate.
  async #receive(): Promise<void> {
    const failing = this.#failureClock();
    while (!this.#done && !this.#closing) {
      let reply: Reply | undefined;
      try {
        reply = await this.#call("GET", this.#sidUrl({ cursor: String(this.#cursor) }), {
          timeoutMs: this.#holdMs + HOLD_GRACE_MS,
          signal: this.#receiving.signal,
        });
      } catch {
        reply = undefined;
      }
      if (this.#done || this.#closing) return;
      if (reply?.status === 200) {
        failing.reset();
        if (!isPollReply(reply.body)) {
          this.#fail(1002, "invalid poll reply");
          return;
        }
        const { cursor, frames, close } = reply.body;
        this.#cursor = cursor;
        for (const frame of frames) {
          if (this.#done || this.#closing) return;
          let data: string | ArrayBuffer;
          try {
            data = "t" in frame ? frame.t : fromBase64(frame.b).buffer;
          } catch {
            this.#fail(1002, "invalid base64 in a poll frame");
            return;
          }
          this.#events.message(data);
        }
        if (close && !this.#done) {
          this.#finish(close.code, typeof close.reason === "string" ? close.reason : "", true);
          return;
        }
        continue;
      }
      if (reply?.status === 404) {
        this.#finish(1006, "session_not_found", false);
        return;
      }
      if (reply && httpRefusal(reply.status, reply.body)) {
        this.#fail(1002, `poll: HTTP ${reply.status}`);
        return;
      }
      if (!(await failing.wait())) return;
    }
  }

  // One POST at a time, in order; a failed POST is repeated with the same `n`,
  // which the server acknowledges without handling twice.
  async #pump(): Promise<void> {
    if (this.#inflight !== undefined || !this.#open || this.#done) return;
    while (this.#outbox.length > 0 && !this.#done) {
      const frames: PollFrame[] = [];
      let bytes = 0;
      for (let next = this.#outbox[0]; next !== undefined; next = this.#outbox[0]) {
        if (frames.length > 0 && bytes + next.bytes > MAX_BATCH_BYTES) break;
        this.#outbox.shift();
        frames.push(next.frame);
        bytes += next.bytes;
      }
      this.#outboxBytes -= bytes;
      this.#n += 1;
      this.#inflight = { body: JSON.stringify({ n: this.#n, frames }), bytes };
      if (!(await this.#post(this.#inflight.body))) return;
      this.#inflight = undefined;
    }
    if (this.#closing && !this.#done) await this.#farewell();
  }

  async #post(body: string): Promise<boolean> {
    const failing = this.#failureClock();
    for (;;) {
      let reply: Reply | undefined;
      try {
        reply = await this.#call("POST", this.#sidUrl({}), {
          body,
          headers: { "content-type": "application/json" },
          timeoutMs: REQUEST_TIMEOUT_MS,
        });
      } catch {
        reply = undefined;
      }
      if (this.#done) return false;
      if (reply && reply.status >= 200 && reply.status < 300) return true;
      if (reply?.status === 404) {
        this.#finish(1006, "session_not_found", false);
        return false;
      }
      if (reply?.status === 413) {
        // The server's message names its limit ("limit is 65536 bytes per frame"), as its 1009 close does.
        const message = (reply.body as { error?: { message?: unknown } } | undefined)?.error?.message;
        this.#fail(1009, typeof message === "string" ? `message_too_large: ${message}` : "message_too_large");
        return false;
      }
      if (reply && httpRefusal(reply.status, reply.body)) {
        this.#fail(1002, `send: HTTP ${reply.status}`);
        return false;
      }
      if (!(await failing.wait())) return false;
    }
  }

  async #farewell(): Promise<void> {
    if (this.#farewellSent || this.#done || !this.#closing) return;
    this.#farewellSent = true;
    const { code, reason } = this.#closing;
    let clean = false;
    try {
      const params: Record<string, string> = code === undefined ? {} : { code: String(code), reason };
      const reply = await this.#call("DELETE", this.#sidUrl(params), { timeoutMs: CLOSE_TIMEOUT_MS });
      clean = reply.status === 200;
    } catch {
      // the server is unreachable: the session expires there; report an unclean close
    }
    this.#finish(code ?? 1005, reason, clean);
  }

  // The client gives up on an open session: tell the server why, best effort.
  #fail(code: number, reason: string): void {
    if (this.#sid) {
      const params = { code: String(code), reason };
      void this.#call("DELETE", this.#sidUrl(params), { timeoutMs: CLOSE_TIMEOUT_MS, ignoreAbort: true }).catch(
        () => {},
      );
    }
    this.#finish(code, reason, false);
  }

  #finish(code: number, reason: string, wasClean: boolean): void {
    if (this.#done) return;
    this.#done = true;
    this.#open = false;
    this.#session.abort();
    this.#receiving.abort();
    this.#outbox = [];
    this.#outboxBytes = 0;
    this.#inflight = undefined;
    this.#events.close(code, reason, wasClean);
  }

  // Transient failures are retried with backoff until they have lasted
  // sessionExpiryMs; by then the server has forgotten the session anyway.
  #failureClock(): { reset(): void; wait(): Promise<boolean> } {
    let attempts = 0;
    let since = 0;
    return {
      reset: () => {
        attempts = 0;
        since = 0;
      },
      wait: async () => {
        const now = Date.now();
        if (since === 0) since = now;
        if (now - since >= this.#settings.sessionExpiryMs) {
          this.#finish(1006, "polling: server unreachable", false);
          return false;
        }
        attempts += 1;
        await this.#sleep(this.#settings.retryDelay(attempts));
        return !this.#done;
      },
    };
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.#session.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
    });
  }

  // The query is appended by hand with encodeURIComponent (spaces as %20, not
  // URLSearchParams' '+'), which every server decodes the same way.
  #sidUrl(params: Record<string, string>): string {
    const url = new URL(this.#base);
    url.pathname = `${url.pathname}/${encodeURIComponent(this.#sid)}`;
    const extra = Object.entries(params).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    if (extra.length > 0) url.search = url.search ? `${url.search}&${extra.join("&")}` : `?${extra.join("&")}`;
    return url.href;
  }

  // fetch with a deadline, cancelled with the session; the body is read inside
  // the deadline too, since a stalled body is as lost as a stalled request.
  async #call(
    method: string,
    url: string,
    init: {
      body?: string;
      headers?: Record<string, string>;
      timeoutMs: number;
      signal?: AbortSignal;
      ignoreAbort?: boolean;
    },
  ): Promise<Reply> {
    const controller = new AbortController();
    const stop = () => controller.abort();
    const signals = init.ignoreAbort ? [] : [this.#session.signal, ...(init.signal ? [init.signal] : [])];
    for (const signal of signals) {
      if (signal.aborted) controller.abort();
      else signal.addEventListener("abort", stop);
    }
    const timer = setTimeout(stop, init.timeoutMs);
    try {
      const response = await this.#settings.fetch(url, {
        method,
        signal: controller.signal,
        ...(init.headers ? { headers: init.headers } : {}),
        ...(init.body === undefined ? {} : { body: init.body }),
      });
      const text = await response.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      return { status: response.status, body };
    } finally {
      clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener("abort", stop);
    }
  }
}
