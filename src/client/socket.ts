/**
 * EdgewireSocket: the browser WebSocket API, plus reconnect, a bounded send
 * queue and an automatic long-polling fallback. Code written against
 * `WebSocket` runs unchanged; what it adds is opt-in (extra events, options).
 *
 * The reconnect model (docs/client.md explains it with examples):
 * - readyState starts CONNECTING. Failed attempts are retried with backoff
 *   while readyState stays CONNECTING; each retry is announced with a
 *   `reconnecting` event.
 * - An open connection that drops unexpectedly takes readyState from OPEN back
 *   to CONNECTING (a `reconnecting` event, no `close`), and `open` fires again
 *   when a new connection opens. Frames sent while CONNECTING wait in a
 *   bounded queue and go out, in order, right after that `open`.
 * - `close` fires once, at the very end: after a deliberate `close()`, after a
 *   close code that says "don't" (see isTerminalCloseCode), or when
 *   `reconnect.maxAttempts` failed attempts in a row are used up. An unclean
 *   end is preceded by `error`, as in browsers.
 */
import { type Bytes, copyBytes, utf8Length } from "../bytes.ts";
import {
  createCloseEvent,
  createMessageEvent,
  domException,
  ReconnectingEvent,
  TransportEvent,
  type TransportKind,
} from "./events.ts";
import { type HandshakeTicket, handshakePacer, hostKey, maxHandshakesPerHost, normalizeLimit } from "./pacing.ts";
import { type FetchLike, PollingTransport, probe } from "./polling.ts";
import { backoffDelay, type ReconnectOptions, type ReconnectPolicy, reconnectPolicy } from "./reconnect.ts";
import { type Transport, type TransportEvents, type WebSocketConstructor, WebSocketTransport } from "./transport.ts";

/** Options of an EdgewireSocket; every one has a default. */
export interface EdgewireSocketOptions {
  /** "auto" (default): WebSocket, falling back to long-polling when it is missing or keeps failing; or force one */
  transport?: "auto" | "websocket" | "polling";
  /** the WebSocket constructor (default: the global one). Node 20 has none: pass the `ws` package's. `null` means "there is none" */
  WebSocket?: WebSocketConstructor | null;
  /** the fetch used by long-polling (default: the global one) */
  fetch?: FetchLike;
  /** reconnect policy, or `false` to never reconnect (default: on, 0.5 s → 30 s, factor 2, jitter 0.5, unlimited attempts) */
  reconnect?: ReconnectOptions | boolean;
  /** most bytes the SDK holds for sending (queued while connecting, or awaiting a long-polling POST); beyond it send() throws QuotaExceededError (default 4 MiB) */
  maxQueueBytes?: number;
  /** WebSocket handshakes failing in a row, before any ever opened, after which "auto" switches to long-polling (default 2; 0: never on failures) */
  fallbackAfterFailures?: number;
  /** an attempt that has not opened after this long counts as failed (default 10 s); time spent waiting for a handshake slot (`maxHandshakesPerHost`) does not count */
  connectTimeoutMs?: number;
  /**
   * Most WebSocket handshakes in flight (CONNECTING) at once to one host (scheme, host, port),
   * counted across every EdgewireSocket of the page; the others wait, first come first served,
   * because browsers delay handshakes while many are pending (docs/client.md, "Many rooms on one
   * page"). Default: the page's (`setMaxHandshakesPerHost`, initially 4); `Infinity`: no pacing.
   * Long-polling is never paced.
   */
  maxHandshakesPerHost?: number;
  /** how long failing long-polling requests are retried before the session counts as dropped (default 60 s, the server's session expiry) */
  pollingTimeoutMs?: number;
  /**
   * Detect a dead WebSocket by itself (browsers never see protocol pings): after
   * `intervalMs` without a frame it sends `message`; after twice that it drops the
   * connection and reconnects. Off by default for plain sockets; room clients turn
   * it on with the server's interval (edgewire's room routes answer `{"type":"ping"}`,
   * which a Durable Object answers without waking).
   */
  heartbeat?: { intervalMs: number; message?: string };
  /** the URL of each connection attempt, from the socket's `url` (a room client adds where to resume) */
  attemptUrl?: (url: string) => string;
  /**
   * A credential (a JWT), or a function returning one, called before every connect and reconnect
   * so an expired token is replaced. WebSocket offers it as the subprotocol entry
   * `edgewire.bearer.<token>` (browsers cannot set headers on a handshake; the server never echoes
   * it), long-polling sends `Authorization: Bearer <token>`. A function that throws or rejects
   * fails that attempt, which is retried like any other.
   */
  token?: string | (() => string | Promise<string>);
}

/** The subprotocol prefix that carries a token (the server's BEARER_PROTOCOL). */
export const BEARER_PROTOCOL = "edgewire.bearer.";

/** Parse the reconnect hint of a server that is restarting ("reconnect in 1200 ms"), if any. */
export function reconnectHint(code: number, reason: string): number | undefined {
  if (code !== 1012 && code !== 1001) return undefined;
  const m = /reconnect in (\d+) ms/.exec(reason);
  return m ? Math.min(60_000, Number(m[1])) : undefined;
}

/** What send() accepts: the browser WebSocket's argument types. */
export type SendData = string | ArrayBufferLike | ArrayBufferView | Blob;

/** Events of an EdgewireSocket, for typed addEventListener. */
export interface EdgewireSocketEventMap {
  open: Event;
  message: MessageEvent;
  error: Event;
  close: CloseEvent;
  reconnecting: ReconnectingEvent;
  transport: TransportEvent;
}

/** After a restart hint, failed attempts are retried at most this far apart… */
const RESTART_DELAY_MS = 500;
/** …for this long after the hinted moment; then the backoff takes over again. */
const RESTART_RETRY_MS = 15_000;

/** Default bound of the SDK's send queue: 4 MiB, the server's own bound on unacknowledged long-polling frames. */
export const DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

interface Queued {
  data: string | Bytes | Blob;
  bytes: number;
}

type Handler<E extends Event> = ((this: EdgewireSocket, event: E) => unknown) | null;

interface HandlerSlot {
  handler: (this: EdgewireSocket, event: Event) => unknown;
  listener: (event: Event) => void;
}

const hasBlob = typeof Blob === "function";
const isBlob = (value: unknown): value is Blob => hasBlob && value instanceof Blob;

// Token characters of RFC 7230, the only ones a subprotocol name may use.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function parseUrl(input: string | URL): URL {
  let url: URL;
  try {
    const base = (globalThis as { location?: { href?: string } }).location?.href;
    url = new URL(String(input), base);
  } catch {
    throw domException(`invalid URL: ${String(input)}`, "SyntaxError");
  }
  // Browsers accept http(s) URLs for WebSocket now and map them the same way.
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw domException(`the URL's scheme must be ws, wss, http or https, not ${url.protocol}`, "SyntaxError");
  }
  if (url.hash !== "" || String(input).includes("#")) {
    throw domException("a WebSocket URL cannot have a fragment", "SyntaxError");
  }
  return url;
}

function parseProtocols(protocols: string | string[] | undefined): string[] {
  const list = protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : [...protocols];
  for (const p of list) {
    if (!TOKEN.test(p)) throw domException(`invalid subprotocol name: ${JSON.stringify(p)}`, "SyntaxError");
  }
  if (new Set(list).size !== list.length) throw domException("a subprotocol is offered twice", "SyntaxError");
  return list;
}

// A token travels as a subprotocol entry: only RFC 7230 token characters (a JWT's base64url and dots are).
function checkToken(token: string): string {
  if (!TOKEN.test(token))
    throw domException("a token may hold only RFC 7230 token characters (a JWT does)", "SyntaxError");
  return token;
}

function toQueued(data: SendData): Queued {
  if (typeof data === "string") return { data, bytes: utf8Length(data) };
  if (isBlob(data)) return { data, bytes: data.size };
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer || isSharedBuffer(data)) {
    const bytes = copyBytes(data);
    return { data: bytes, bytes: bytes.byteLength };
  }
  // The browser stringifies anything else it is given (send(42) sends "42").
  const text = String(data);
  return { data: text, bytes: utf8Length(text) };
}

function isSharedBuffer(value: unknown): value is ArrayBufferLike {
  return typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer;
}

/**
 * A WebSocket-compatible client with reconnect, a bounded send queue and an
 * automatic long-polling fallback. See the module comment for the reconnect
 * model and docs/client.md for the whole story.
 */
export class EdgewireSocket extends EventTarget {
  /** the connection is not yet open (or is being re-established) */
  static readonly CONNECTING = CONNECTING;
  /** the connection is open */
  static readonly OPEN = OPEN;
  /** close() was called; the closing handshake is in progress */
  static readonly CLOSING = CLOSING;
  /** closed for good */
  static readonly CLOSED = CLOSED;
  /** same as the static */
  readonly CONNECTING = CONNECTING;
  /** same as the static */
  readonly OPEN = OPEN;
  /** same as the static */
  readonly CLOSING = CLOSING;
  /** same as the static */
  readonly CLOSED = CLOSED;

  /** the URL, normalised (http(s) given → ws(s)) */
  readonly url: string;

  readonly #origin: string;
  readonly #protocols: string[];
  readonly #mode: "auto" | "websocket" | "polling";
  readonly #Ctor: WebSocketConstructor | undefined;
  readonly #fetch: FetchLike | undefined;
  readonly #policy: ReconnectPolicy;
  readonly #maxQueueBytes: number;
  readonly #fallbackAfter: number;
  readonly #connectTimeoutMs: number;
  /** the socket's own maxHandshakesPerHost; undefined: the page's default at each attempt */
  readonly #maxHandshakes: number | undefined;
  readonly #hostKey: string;
  readonly #pollingTimeoutMs: number;
  readonly #tokenSource: EdgewireSocketOptions["token"];
  /** the credential of the attempt in flight (the token given, or the one its function returned) */
  #credential: string | undefined;
  /** a restarting server's clients retry quickly until then (ms since the epoch) */
  #restartUntil = 0;

  #state: number = CONNECTING;
  #binaryType: BinaryType = hasBlob ? "blob" : "arraybuffer";
  #protocol = "";
  #extensions = "";
  #kind: TransportKind;
  #transport: Transport | undefined;
  #transportOpen = false;
  /** identity of the current attempt: callbacks of an older attempt are ignored */
  #token: object | undefined;
  #queue: Queued[] = [];
  #queueBytes = 0;
  #attempts = 0;
  #wsFailures = 0;
  #wsEverOpened = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  /** when the current attempt began (the token function included), for its connect timeout */
  #connectStarted = 0;
  /** the current attempt's place in the handshake pacer: queued or holding a slot */
  #slot: HandshakeTicket | undefined;
  #inbound: Promise<void> | undefined;
  #inboundPending = 0;
  #heartbeat: { intervalMs: number; message: string } | undefined;
  readonly #attemptUrl: ((url: string) => string) | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #lastReceived = 0;
  readonly #handlers = new Map<string, HandlerSlot>();

  /** connect to `url` (ws, wss, http or https), offering `protocols`; throws SyntaxError like `new WebSocket()` */
  constructor(url: string | URL, protocols?: string | string[], options: EdgewireSocketOptions = {}) {
    super();
    const parsed = parseUrl(url);
    this.url = parsed.href;
    this.#origin = parsed.origin;
    this.#protocols = parseProtocols(protocols);
    this.#mode = options.transport ?? "auto";
    this.#Ctor =
      options.WebSocket === null
        ? undefined
        : (options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket);
    const globalFetch = (globalThis as { fetch?: FetchLike }).fetch;
    // Called through globalThis: a detached `fetch` throws "Illegal invocation" in browsers.
    this.#fetch = options.fetch ?? (globalFetch ? (input, init) => globalThis.fetch(input, init) : undefined);
    this.#policy = reconnectPolicy(options.reconnect);
    this.#maxQueueBytes = Math.max(0, options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES);
    this.#fallbackAfter = Math.max(0, options.fallbackAfterFailures ?? 2);
    this.#connectTimeoutMs = Math.max(1, options.connectTimeoutMs ?? 10_000);
    this.#maxHandshakes =
      options.maxHandshakesPerHost === undefined ? undefined : normalizeLimit(options.maxHandshakesPerHost);
    this.#hostKey = hostKey(this.url);
    this.#pollingTimeoutMs = Math.max(0, options.pollingTimeoutMs ?? 60_000);
    if (options.heartbeat) this.setHeartbeat(options.heartbeat.intervalMs, options.heartbeat.message);
    this.#attemptUrl = options.attemptUrl;
    this.#tokenSource = options.token;
    if (typeof options.token === "string") checkToken(options.token);

    if (this.#mode === "websocket" && !this.#Ctor) {
      throw domException(
        "no WebSocket constructor here: pass options.WebSocket (e.g. the ws package)",
        "NotSupportedError",
      );
    }
    if (this.#mode !== "websocket" && !this.#Ctor && !this.#fetch) {
      throw domException(
        "neither WebSocket nor fetch exists here: pass options.WebSocket or options.fetch",
        "NotSupportedError",
      );
    }
    this.#kind = this.#mode === "polling" || !this.#Ctor ? "polling" : "websocket";
    this.#connect();
  }

  /** CONNECTING (also while reconnecting), OPEN, CLOSING or CLOSED */
  get readyState(): number {
    return this.#state;
  }

  /** bytes accepted by send() and not yet sent: the SDK's queue plus the transport's buffer (long-polling: until the server acknowledged the POST) */
  get bufferedAmount(): number {
    return this.#queueBytes + (this.#transport?.bufferedAmount ?? 0);
  }

  /** how binary messages are delivered: "blob" (default, as in browsers) or "arraybuffer" */
  get binaryType(): BinaryType {
    return this.#binaryType;
  }

  set binaryType(value: BinaryType) {
    // Browsers ignore values outside the enum rather than throw.
    if (value === "arraybuffer" || (value === "blob" && hasBlob)) this.#binaryType = value;
  }

  /** the subprotocol the server chose ("" before open, or when none was offered) */
  get protocol(): string {
    return this.#protocol;
  }

  /** extensions the server chose ("" on long-polling) */
  get extensions(): string {
    return this.#extensions;
  }

  /** the transport in use now: "websocket" or "polling"; a `transport` event fires when it changes */
  get transport(): TransportKind {
    return this.#kind;
  }

  /** handler of `open` */
  get onopen(): Handler<Event> {
    return this.#getHandler("open") as Handler<Event>;
  }
  set onopen(handler: Handler<Event>) {
    this.#setHandler("open", handler as HandlerSlot["handler"] | null);
  }

  /** handler of `message` */
  get onmessage(): Handler<MessageEvent> {
    return this.#getHandler("message") as Handler<MessageEvent>;
  }
  set onmessage(handler: Handler<MessageEvent>) {
    this.#setHandler("message", handler as HandlerSlot["handler"] | null);
  }

  /** handler of `error` */
  get onerror(): Handler<Event> {
    return this.#getHandler("error") as Handler<Event>;
  }
  set onerror(handler: Handler<Event>) {
    this.#setHandler("error", handler as HandlerSlot["handler"] | null);
  }

  /** handler of `close` */
  get onclose(): Handler<CloseEvent> {
    return this.#getHandler("close") as Handler<CloseEvent>;
  }
  set onclose(handler: Handler<CloseEvent>) {
    this.#setHandler("close", handler as HandlerSlot["handler"] | null);
  }

  /** listen to `open`, `message`, `error`, `close`, `reconnecting` or `transport` */
  override addEventListener<K extends keyof EdgewireSocketEventMap>(
    type: K,
    listener: (this: EdgewireSocket, event: EdgewireSocketEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
  }

  /** stop listening */
  override removeEventListener<K extends keyof EdgewireSocketEventMap>(
    type: K,
    listener: (this: EdgewireSocket, event: EdgewireSocketEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
  }

  /**
   * Send text or bytes. Unlike a browser WebSocket, send() while CONNECTING
   * queues the frame instead of throwing, so code may send before `open` and
   * during a reconnect. The SDK holds at most `maxQueueBytes`; a frame that
   * does not fit throws a QuotaExceededError and is not queued (the socket
   * stays as it is). After close() frames are discarded, as in browsers.
   */
  send(data: SendData): void {
    if (this.#state === CLOSING || this.#state === CLOSED) return;
    const item = toQueued(data);
    const direct = this.#state === OPEN && this.#queue.length === 0 && !isBlob(item.data);
    // A WebSocket in OPEN buffers for us; everything else is held in the SDK's memory.
    if (!direct || this.#kind === "polling") {
      const held = this.#queueBytes + (this.#transport?.heldBytes ?? 0);
      if (held + item.bytes > this.#maxQueueBytes) {
        throw domException(
          `send queue full: ${held} bytes held, ${item.bytes} more would pass maxQueueBytes (${this.#maxQueueBytes})`,
          "QuotaExceededError",
        );
      }
    }
    if (direct) {
      this.#transport?.send(item.data as string | Bytes);
      return;
    }
    this.#queue.push(item);
    this.#queueBytes += item.bytes;
    if (isBlob(item.data)) this.#readBlob(item, item.data);
    else this.#flush();
  }

  /**
   * Close for good: no reconnect follows. Validates like the browser: `code`
   * must be 1000 or 3000–4999 (else InvalidAccessError) and `reason` at most
   * 123 UTF-8 bytes (else SyntaxError). Closing while CONNECTING (or
   * reconnecting) ends at once with a `close` event carrying `code` (1005 if
   * none) and wasClean false.
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined && !(Number.isInteger(code) && (code === 1000 || (code >= 3000 && code <= 4999)))) {
      throw domException(`close code must be 1000 or in 3000–4999, not ${code}`, "InvalidAccessError");
    }
    const why = reason === undefined ? "" : String(reason);
    if (utf8Length(why) > 123) throw domException("close reason is longer than 123 UTF-8 bytes", "SyntaxError");
    if (this.#state === CLOSING || this.#state === CLOSED) return;
    this.#state = CLOSING;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#transport && this.#transportOpen) {
      // The transport answers with its close callback once the handshake is done.
      this.#transport.close(code, why);
      return;
    }
    this.#drop();
    this.#clearQueue();
    // Events are dispatched from a task, never from inside the caller's close().
    setTimeout(() => this.#finish(code ?? 1005, why, false, false), 0);
  }

  #connect(): void {
    this.#retryTimer = undefined;
    if (this.#state !== CONNECTING) return;
    const token = {};
    this.#token = token;
    this.#transportOpen = false;
    const live = () => this.#token === token;
    // From here, so a token function that never answers times out like a handshake.
    this.#connectStarted = Date.now();
    this.#armConnectTimer(token, this.#connectTimeoutMs);
    const source = this.#tokenSource;
    if (typeof source !== "function") {
      this.#attempt(token, source);
      return;
    }
    // Asked before every attempt, so a refreshed token is used; a failure fails only this attempt.
    let credential: string | Promise<string>;
    try {
      credential = source();
    } catch (error) {
      this.#failLater(token, `token: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    Promise.resolve(credential).then(
      (value) => {
        if (!live()) return;
        try {
          this.#attempt(token, checkToken(String(value)));
        } catch (error) {
          this.#failLater(token, `token: ${(error as Error).message}`);
        }
      },
      (error: unknown) => {
        if (live()) this.#failLater(token, `token: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
  }

  #armConnectTimer(token: object, ms: number): void {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = setTimeout(() => {
      if (this.#token !== token || this.#transportOpen) return;
      this.#transport?.abort();
      this.#ended(1006, "connect timeout", false);
    }, ms);
  }

  // An attempt that could not start, reported from a task so listeners added after `new` still hear it.
  #failLater(token: object, reason: string): void {
    setTimeout(() => {
      if (this.#token === token) this.#ended(1006, reason, false);
    }, 0);
  }

  #attempt(token: object, credential: string | undefined): void {
    this.#credential = credential;
    if (this.#kind !== "websocket" || !this.#Ctor) {
      this.#start(token, credential);
      return;
    }
    // WebSocket handshakes wait for a slot of their host (src/client/pacing.ts says why). The wait
    // is not the server's fault: the connect timeout stops meanwhile and resumes with what was left.
    let granted = false;
    let queuedAt: number | undefined;
    const limit = this.#maxHandshakes ?? maxHandshakesPerHost();
    const ticket = handshakePacer.request(this.#hostKey, limit, (slot) => {
      granted = true;
      if (this.#token !== token) {
        slot.release(); // every end of an attempt releases its ticket first; never leak a slot anyway
        return;
      }
      this.#slot = slot;
      if (queuedAt !== undefined) {
        this.#armConnectTimer(token, Math.max(1, this.#connectTimeoutMs - (queuedAt - this.#connectStarted)));
      }
      this.#start(token, credential);
    });
    if (granted) return;
    this.#slot = ticket;
    queuedAt = Date.now();
    clearTimeout(this.#connectTimer);
  }

  // Start the attempt's transport.
  #start(token: object, credential: string | undefined): void {
    const live = () => this.#token === token;
    const events: TransportEvents = {
      open: (protocol, extensions) => {
        if (live()) this.#opened(protocol, extensions);
      },
      message: (data) => {
        if (live()) this.#received(data);
      },
      close: (code, reason, wasClean) => {
        if (live()) this.#ended(code, reason, wasClean);
      },
    };
    try {
      const url = this.#attemptUrl ? this.#attemptUrl(this.url) : this.url;
      this.#transport =
        this.#kind === "websocket" && this.#Ctor
          ? new WebSocketTransport(
              this.#Ctor,
              url,
              credential ? [...this.#protocols, BEARER_PROTOCOL + credential] : this.#protocols,
              events,
            )
          : new PollingTransport(
              url,
              this.#protocols,
              {
                fetch: this.#fetch ?? (() => Promise.reject(new TypeError("no fetch"))),
                retryDelay: (attempt) => backoffDelay(this.#policy, attempt),
                sessionExpiryMs: this.#pollingTimeoutMs,
                token: credential,
              },
              events,
            );
    } catch (error) {
      // The constructor refused (a blocked port, a CSP rule): a failed attempt.
      this.#transport = undefined;
      this.#releaseSlot();
      this.#failLater(token, error instanceof Error ? error.message : String(error));
      return;
    }
  }

  /**
   * Turn dead-connection detection on (or change its interval; `0` turns it
   * off): see `EdgewireSocketOptions.heartbeat`. Applies to WebSocket only —
   * long-polling's requests are their own liveness check.
   */
  setHeartbeat(intervalMs: number, message = '{"type":"ping"}'): void {
    this.#heartbeat = intervalMs > 0 ? { intervalMs, message } : undefined;
    this.#startHeartbeat();
  }

  #startHeartbeat(): void {
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    const hb = this.#heartbeat;
    if (!hb || this.#state !== OPEN || this.#kind !== "websocket") return;
    this.#lastReceived = Date.now();
    let pinged = false;
    this.#heartbeatTimer = setInterval(
      () => {
        if (this.#state !== OPEN || !this.#transportOpen) return;
        const quiet = Date.now() - this.#lastReceived;
        if (quiet >= 2 * hb.intervalMs) {
          // No frame, no pong: the connection is dead even if the OS has not noticed.
          this.#transport?.abort();
          this.#ended(1006, "heartbeat timeout", false);
        } else if (quiet >= hb.intervalMs && !pinged) {
          pinged = true;
          this.#transport?.send(hb.message);
        } else if (quiet < hb.intervalMs) pinged = false;
      },
      Math.max(50, Math.floor(hb.intervalMs / 4)),
    );
  }

  #opened(protocol: string, extensions: string): void {
    clearTimeout(this.#connectTimer);
    this.#releaseSlot();
    this.#transportOpen = true;
    this.#state = OPEN;
    this.#attempts = 0;
    if (this.#kind === "websocket") {
      this.#wsEverOpened = true;
      this.#wsFailures = 0;
    }
    this.#protocol = protocol;
    this.#extensions = extensions;
    // Frames queued while connecting go first: they were sent before anything
    // an `open` handler may send.
    this.#flush();
    this.#startHeartbeat();
    this.dispatchEvent(new Event("open"));
  }

  #received(data: unknown): void {
    if (this.#state !== OPEN) return;
    this.#lastReceived = Date.now();
    const value = this.#convert(data);
    if (this.#inboundPending === 0 && !(value instanceof Promise)) {
      this.dispatchEvent(createMessageEvent(value, this.#origin));
      return;
    }
    // A Blob had to be read to honour binaryType "arraybuffer": later messages
    // wait behind it so the order never changes.
    this.#inboundPending += 1;
    const previous = this.#inbound ?? Promise.resolve();
    this.#inbound = previous
      .then(() => value)
      .then(
        (ready) => {
          if (this.#state === OPEN) this.dispatchEvent(createMessageEvent(ready, this.#origin));
        },
        () => {},
      )
      .finally(() => {
        this.#inboundPending -= 1;
      });
  }

  // Binary arrives as ArrayBuffer (we ask the transport for it); it is turned
  // into what binaryType asks for at the time it arrives, as browsers do.
  #convert(data: unknown): unknown {
    if (typeof data === "string") return data;
    let buffer: ArrayBuffer | undefined;
    if (data instanceof ArrayBuffer) buffer = data;
    else if (ArrayBuffer.isView(data)) buffer = copyBytes(data).buffer;
    if (buffer !== undefined) return this.#binaryType === "blob" ? new Blob([buffer]) : buffer;
    if (isBlob(data)) return this.#binaryType === "blob" ? data : data.arrayBuffer();
    return data;
  }

  // The current attempt's transport ended, opened or not.
  #ended(code: number, reason: string, wasClean: boolean): void {
    clearTimeout(this.#connectTimer);
    this.#releaseSlot();
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    const wasOpen = this.#transportOpen;
    this.#transport = undefined;
    this.#token = undefined;
    this.#transportOpen = false;
    if (this.#state === CLOSING || this.#state === CLOSED) {
      this.#finish(code, reason, wasClean, false);
      return;
    }
    // What was handed to a connection that dropped is lost with it, as with a
    // WebSocket; only frames sent from now on (while CONNECTING) are queued.
    if (wasOpen) this.#clearQueue();
    else if (this.#kind === "websocket") {
      this.#wsFailures += 1;
      if (this.#fetch) {
        this.#probe(code, reason, wasClean);
        return;
      }
    }
    this.#next(code, reason, wasClean, wasOpen);
  }

  // A WebSocket handshake failed, and a browser does not say why: ask the server whether it refuses
  // this connection (a 4xx: final, no retry, no fallback) or would take it (an outage: go on), and
  // when it wants us back (Retry-After). Meanwhile the probe holds the attempt's token, so nothing else
  // starts here (the handshake's pacing slot is already free: a probe is not a handshake).
  #probe(code: number, reason: string, wasClean: boolean): void {
    const token = {};
    this.#token = token;
    const url = this.#attemptUrl ? this.#attemptUrl(this.url) : this.url;
    void probe(this.#fetch as FetchLike, url, this.#protocols, this.#credential, this.#connectTimeoutMs).then(
      (answer) => {
        if (this.#token !== token) return; // closed meanwhile
        this.#token = undefined;
        if (answer?.refusal) {
          this.#finish(answer.refusal.code, answer.refusal.reason, false, true);
          return;
        }
        this.#next(code, reason, wasClean, false, answer?.retryAfterMs);
      },
    );
  }

  // After an attempt ended: fall back to long-polling, retry after a delay, or give up.
  #next(code: number, reason: string, wasClean: boolean, wasOpen: boolean, retryAfter?: number): void {
    if (this.#shouldFallBack()) {
      const previous = this.#kind;
      this.#kind = "polling";
      this.#state = CONNECTING;
      const why = `${this.#wsFailures} WebSocket handshake(s) failed without ever opening (last: ${code} ${reason})`;
      this.dispatchEvent(new TransportEvent("polling", previous, why));
      if (this.#state === CONNECTING && this.#token === undefined && this.#retryTimer === undefined) {
        this.#retryTimer = setTimeout(() => this.#connect(), 0);
      }
      return;
    }

    const policy = this.#policy;
    if (!policy.enabled || !policy.shouldReconnect(code, reason) || this.#attempts >= policy.maxAttempts) {
      this.#finish(code, reason, wasClean, !wasClean);
      return;
    }
    this.#attempts += 1;
    // A restarting server says when to come back (1012 "reconnect in N ms"), spread per client; a
    // refusal says it with Retry-After. Either comes before our own backoff. A server that said it
    // is restarting will be back shortly: until RESTART_RETRY_MS after its hint, a failed attempt is
    // retried within RESTART_DELAY_MS, not after a growing backoff (its clients came back seconds
    // after it did).
    const hint = this.#attempts === 1 ? reconnectHint(code, reason) : undefined;
    if (hint !== undefined) this.#restartUntil = Date.now() + hint + RESTART_RETRY_MS;
    const restarting = Date.now() < this.#restartUntil;
    // Retry-After 0 (or a refusal from the same instance again) must not become a loop without pause.
    const delayMs =
      (retryAfter === undefined ? undefined : Math.max(retryAfter, 100 + Math.random() * 150)) ??
      hint ??
      (restarting
        ? Math.min(backoffDelay(policy, this.#attempts), RESTART_DELAY_MS * (0.5 + Math.random() / 2))
        : backoffDelay(policy, this.#attempts));
    this.#state = CONNECTING;
    this.dispatchEvent(
      new ReconnectingEvent({
        attempt: this.#attempts,
        delayMs,
        code,
        reason,
        wasClean,
        dropped: wasOpen,
        transport: this.#kind,
      }),
    );
    // A `reconnecting` listener may have called close().
    if (this.#state === CONNECTING && this.#token === undefined && this.#retryTimer === undefined) {
      this.#retryTimer = setTimeout(() => this.#connect(), delayMs);
    }
  }

  // "auto" falls back only while WebSocket has never opened here: once it has,
  // failures mean a server or network outage, which polling would not fix.
  #shouldFallBack(): boolean {
    if (this.#mode !== "auto" || this.#kind !== "websocket" || this.#wsEverOpened || !this.#fetch) return false;
    if (this.#fallbackAfter === 0) return false;
    // Without reconnect there is no second handshake to wait for.
    return this.#wsFailures >= this.#fallbackAfter || !this.#policy.enabled;
  }

  #finish(code: number, reason: string, wasClean: boolean, error: boolean): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#connectTimer);
    this.#retryTimer = undefined;
    this.#drop();
    this.#clearQueue();
    if (error) this.dispatchEvent(new Event("error"));
    this.dispatchEvent(createCloseEvent({ code, reason, wasClean }));
  }

  #drop(): void {
    clearTimeout(this.#connectTimer);
    this.#transport?.abort();
    this.#releaseSlot();
    this.#transport = undefined;
    this.#token = undefined;
    this.#transportOpen = false;
  }

  // Leave the handshake pacer (its queue, or the slot held): the handshake opened, failed or was given up.
  #releaseSlot(): void {
    const slot = this.#slot;
    this.#slot = undefined;
    slot?.release();
  }

  #flush(): void {
    while (this.#state === OPEN && this.#transport && this.#transportOpen) {
      const head = this.#queue[0];
      if (head === undefined || isBlob(head.data)) return; // a Blob's read flushes again when done
      this.#queue.shift();
      this.#queueBytes -= head.bytes;
      this.#transport.send(head.data);
    }
  }

  #readBlob(item: Queued, blob: Blob): void {
    blob.arrayBuffer().then(
      (buffer) => {
        item.data = new Uint8Array(buffer);
        this.#flush();
      },
      () => {
        // An unreadable Blob (revoked, file gone) is skipped, not allowed to block the queue.
        const at = this.#queue.indexOf(item);
        if (at >= 0) {
          this.#queue.splice(at, 1);
          this.#queueBytes -= item.bytes;
        }
        this.#flush();
      },
    );
  }

  #clearQueue(): void {
    this.#queue = [];
    this.#queueBytes = 0;
  }

  #getHandler(type: string): HandlerSlot["handler"] | null {
    return this.#handlers.get(type)?.handler ?? null;
  }

  // on<event> handlers keep the position of their first assignment among the
  // listeners, as the HTML "event handler" rules say.
  #setHandler(type: string, handler: HandlerSlot["handler"] | null): void {
    const slot = this.#handlers.get(type);
    if (typeof handler !== "function") {
      if (slot) {
        super.removeEventListener(type, slot.listener);
        this.#handlers.delete(type);
      }
      return;
    }
    if (slot) {
      slot.handler = handler;
      return;
    }
    const created: HandlerSlot = {
      handler,
      listener: (event) => {
        created.handler.call(this, event);
      },
    };
    this.#handlers.set(type, created);
    super.addEventListener(type, created.listener);
  }
}
