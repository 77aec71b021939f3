/**
 * What the socket needs from a transport, and the WebSocket transport. One
 * transport instance is one connection attempt: the socket makes a new one for
 * every (re)connect, so no state leaks from a dead connection into the next.
 */
import type { Bytes } from "../bytes.ts";
import type { TransportKind } from "./events.ts";

/** The subset of the WebSocket API the SDK drives: browsers, Deno, Bun, undici and the `ws` package all have it. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  readonly protocol: string;
  readonly extensions: string;
  binaryType: string;
  // `never` events: every implementation types its own event objects, and a
  // handler of any event type is assignable to one that takes `never`.
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  send(data: string | Bytes): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: the global one, or an injected one (the `ws` package on Node 20). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Callbacks from a transport to its socket; none fires after `abort()`. */
export interface TransportEvents {
  open(protocol: string, extensions: string): void;
  message(data: unknown): void;
  /** the connection ended, or never opened (then code 1006 or an HTTP refusal code) */
  close(code: number, reason: string, wasClean: boolean): void;
}

/** One connection over one transport. */
export interface Transport {
  readonly kind: TransportKind;
  /** bytes accepted by `send()` and not yet on the wire (polling: not yet acknowledged) */
  readonly bufferedAmount: number;
  /** the part of bufferedAmount held in the SDK's own memory (counts toward maxQueueBytes) */
  readonly heldBytes: number;
  /** send one frame; only called while open */
  send(data: string | Bytes): void;
  /** closing handshake; `close` follows */
  close(code: number | undefined, reason: string): void;
  /** drop the connection at once; no callback fires after this */
  abort(): void;
}

/** A connection over a real WebSocket. */
export class WebSocketTransport implements Transport {
  /** always "websocket" */
  readonly kind = "websocket" as const;
  /** the SDK holds nothing: the socket buffers */
  readonly heldBytes = 0;
  readonly #ws: WebSocketLike;
  #done = false;

  /** connect; throws what the constructor throws (a SecurityError, a blocked port) */
  constructor(Ctor: WebSocketConstructor, url: string, protocols: string[], events: TransportEvents) {
    const ws = protocols.length > 0 ? new Ctor(url, protocols) : new Ctor(url);
    this.#ws = ws;
    // Always ask for ArrayBuffer: it is synchronous, so frames keep their order
    // however the socket converts to the user's binaryType (Blob reads are async).
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      if (!this.#done) events.open(ws.protocol ?? "", ws.extensions ?? "");
    };
    ws.onmessage = (event: { data: unknown }) => {
      if (!this.#done) events.message(event.data);
    };
    // A close always follows an error, with the code that matters; and the `ws`
    // package throws an 'error' that has no listener, so one must stay attached.
    ws.onerror = () => {};
    ws.onclose = (event: { code?: number; reason?: string; wasClean?: boolean }) => {
      if (this.#done) return;
      this.#done = true;
      events.close(event.code ?? 1006, event.reason ?? "", event.wasClean ?? false);
    };
  }

  /** the underlying socket's bufferedAmount */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount ?? 0;
  }

  /** hand one frame to the socket */
  send(data: string | Bytes): void {
    try {
      this.#ws.send(data);
    } catch {
      // The socket closed under us: its close event is on its way and the
      // frame is lost, exactly as a browser's send() on a closing socket.
    }
  }

  /** start the closing handshake */
  close(code: number | undefined, reason: string): void {
    try {
      if (code === undefined) this.#ws.close();
      else this.#ws.close(code, reason);
    } catch {
      this.abort();
    }
  }

  /** drop the socket without reporting anything */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    const ws = this.#ws;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    try {
      ws.close();
    } catch {
      // already closing or closed
    }
  }
}
