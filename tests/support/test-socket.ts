/**
 * A WebSocket client for tests: frames queue up so a test can `await next()`
 * in order, every wait has a deadline, and the handshake's HTTP status is
 * visible when an upgrade is refused.
 */
import WebSocket from "ws";
import { EdgewireSocket, type WebSocketConstructor } from "../../src/client/index.ts";
import { decodeValue } from "../../src/msgpack.ts";

/** One received frame. */
export interface Received {
  data: string | Buffer;
  binary: boolean;
}

/** How a test socket ended. */
export interface Ended {
  code: number;
  reason: string;
}

/** Default deadline of every wait, long enough for a loaded 2-core CI machine. */
export const WAIT_MS = 10_000;

/**
 * Which client drives the socket: `ws` directly, or the edgewire SDK
 * (EdgewireSocket, `ws` injected as its WebSocket) over either transport.
 */
export type ClientKind = "ws" | "sdk-websocket" | "sdk-polling";

/** The client kinds every echo and room case runs with. */
export const CLIENT_KINDS: readonly ClientKind[] = ["ws", "sdk-websocket", "sdk-polling"];

/** A queued, awaitable WebSocket client. */
export class TestSocket {
  /** the underlying `ws` socket (only for kind "ws") */
  readonly ws: WebSocket;
  /** the SDK socket (kinds "sdk-*") */
  readonly sdk: EdgewireSocket | undefined;
  readonly #queue: Received[] = [];
  #waiter: (() => void) | undefined;
  /** resolves when the socket closes */
  readonly ended: Promise<Ended>;
  /** resolves when open, rejects with the HTTP status when the upgrade is refused */
  readonly opened: Promise<void>;

  /** connect to `url`, offering `protocols`, with the given client */
  constructor(url: string, protocols?: string | string[], headers?: Record<string, string>, kind: ClientKind = "ws") {
    if (kind !== "ws") {
      this.sdk = new EdgewireSocket(url, protocols, {
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        transport: kind === "sdk-polling" ? "polling" : "websocket",
        reconnect: false,
      });
      this.ws = undefined as unknown as WebSocket;
      const sdk = this.sdk;
      sdk.binaryType = "arraybuffer";
      sdk.addEventListener("message", (event) => {
        const data = (event as MessageEvent).data as string | ArrayBuffer;
        this.#queue.push(
          typeof data === "string" ? { data, binary: false } : { data: Buffer.from(data), binary: true },
        );
        this.#waiter?.();
      });
      this.ended = new Promise((resolve) => {
        sdk.addEventListener("close", (event) => {
          const { code, reason } = event as CloseEvent;
          resolve({ code, reason });
          this.#waiter?.();
        });
      });
      this.opened = new Promise((resolve, reject) => {
        sdk.addEventListener("open", () => resolve(), { once: true });
        sdk.addEventListener("close", (e) => reject(new Error(`closed before open: ${(e as CloseEvent).code}`)), {
          once: true,
        });
      });
      this.opened.catch(() => {});
      return;
    }
    this.sdk = undefined;
    this.ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...(headers ? { headers } : {}) });
    this.ws.on("message", (data: Buffer, binary: boolean) => {
      this.#queue.push({ data: binary ? data : data.toString("utf8"), binary });
      this.#waiter?.();
    });
    this.ended = new Promise((resolve) => {
      this.ws.on("close", (code, reason) => {
        resolve({ code, reason: reason.toString("utf8") });
        this.#waiter?.();
      });
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () =>
          reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })),
        );
      });
      this.ws.once("error", reject);
    });
    this.ws.on("error", () => {});
  }

  /** the negotiated subprotocol */
  get protocol(): string {
    return this.sdk ? this.sdk.protocol : this.ws.protocol;
  }

  get #closed(): boolean {
    return this.sdk ? this.sdk.readyState === 3 : this.ws.readyState === WebSocket.CLOSED;
  }

  /** send text, or bytes as a binary frame */
  send(data: string | Buffer): void {
    if (this.sdk) this.sdk.send(data);
    else this.ws.send(data, { binary: typeof data !== "string" });
  }

  /** the next frame, in arrival order */
  async next(ms = WAIT_MS): Promise<Received> {
    const deadline = Date.now() + ms;
    while (this.#queue.length === 0) {
      if (this.#closed && this.#queue.length === 0) throw new Error("socket closed while waiting for a frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.#queue.shift() as Received;
  }

  /** the next text frame parsed as JSON */
  async json<T = Record<string, unknown>>(ms = WAIT_MS): Promise<T> {
    const frame = await this.next(ms);
    if (frame.binary) throw new Error("expected a text frame, got binary");
    return JSON.parse(frame.data as string) as T;
  }

  /** skip frames until one of JSON type `type` arrives */
  async until<T = Record<string, unknown>>(type: string, ms = WAIT_MS): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const frame = await this.next(Math.max(1, deadline - Date.now()));
      if (frame.binary) continue;
      const json = JSON.parse(frame.data as string) as { type?: string };
      if (json.type === type) return json as T;
    }
  }

  /** the next frame as a value: text parsed as JSON, binary decoded as MessagePack (`edgewire.v1+msgpack`) */
  async value<T = unknown>(ms = WAIT_MS): Promise<T> {
    const frame = await this.next(ms);
    return (frame.binary ? decodeValue(frame.data as Buffer) : JSON.parse(frame.data as string)) as T;
  }

  /** skip frames (read as `value()` does) until one that `match` accepts arrives */
  async untilValue<T = unknown>(match: (value: unknown) => boolean, ms = WAIT_MS): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await this.value(Math.max(1, deadline - Date.now()));
      if (match(value)) return value as T;
    }
  }

  /** send a JSON frame */
  sendJson(value: unknown): void {
    this.send(JSON.stringify(value));
  }

  /** close and wait for the closing handshake */
  async close(code?: number, reason?: string): Promise<Ended> {
    if (this.sdk) this.sdk.close(code, reason);
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    return withTimeout(this.ended, WAIT_MS, "close");
  }
}

/** `promise`, or an error naming `what` after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
