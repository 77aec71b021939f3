/**
 * The events an EdgewireSocket dispatches. `message` and `close` use the
 * runtime's own MessageEvent/CloseEvent where it has them (so `instanceof`
 * works in user code) and look-alike Event subclasses where it does not
 * (Node 20 has no CloseEvent global).
 */

/** Which transport carries a socket's frames. */
export type TransportKind = "websocket" | "polling";

/** Fields of a close, as CloseEvent carries them. */
export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
}

/** A CloseEvent for runtimes without the global. */
class CloseEventShim extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  constructor(info: CloseInfo) {
    super("close");
    this.code = info.code;
    this.reason = info.reason;
    this.wasClean = info.wasClean;
  }
}

/** A MessageEvent for runtimes without the global. */
class MessageEventShim extends Event {
  readonly data: unknown;
  readonly origin: string;
  readonly lastEventId = "";
  readonly source = null;
  readonly ports: readonly MessagePort[] = [];
  constructor(data: unknown, origin: string) {
    super("message");
    this.data = data;
    this.origin = origin;
  }
}

interface EventGlobals {
  CloseEvent?: typeof CloseEvent;
  MessageEvent?: typeof MessageEvent;
  DOMException?: typeof DOMException;
}
const globals = globalThis as EventGlobals;

/** A `close` event: the runtime's CloseEvent when it has one. */
export function createCloseEvent(info: CloseInfo): CloseEvent {
  const Native = globals.CloseEvent;
  if (typeof Native === "function") return new Native("close", info);
  return new CloseEventShim(info) as unknown as CloseEvent;
}

/** A `message` event: the runtime's MessageEvent when it has one. */
export function createMessageEvent(data: unknown, origin: string): MessageEvent {
  const Native = globals.MessageEvent;
  if (typeof Native === "function") return new Native("message", { data, origin });
  return new MessageEventShim(data, origin) as unknown as MessageEvent;
}

/** A DOMException with a name (`SyntaxError`, `InvalidAccessError`, …), or an Error carrying that name where DOMException is missing. */
export function domException(message: string, name: string): Error {
  const Native = globals.DOMException;
  if (typeof Native === "function") return new Native(message, name);
  return Object.assign(new Error(message), { name });
}

/** Dispatched when the connection dropped (or an attempt failed) and another attempt is scheduled; readyState is CONNECTING meanwhile. */
export class ReconnectingEvent extends Event {
  /** 1 for the first retry after an open or a failed attempt, counting up until an open */
  readonly attempt: number;
  /** how long until the next attempt */
  readonly delayMs: number;
  /** close code of what ended (1006 when a connection dropped or a handshake failed) */
  readonly code: number;
  /** close reason of what ended */
  readonly reason: string;
  /** whether what ended was closed with a closing handshake */
  readonly wasClean: boolean;
  /** true when an OPEN connection dropped (frames it had not delivered are lost); false when a connection attempt failed */
  readonly dropped: boolean;
  /** the transport of the next attempt */
  readonly transport: TransportKind;
  constructor(init: {
    attempt: number;
    delayMs: number;
    code: number;
    reason: string;
    wasClean: boolean;
    dropped: boolean;
    transport: TransportKind;
  }) {
    super("reconnecting");
    this.attempt = init.attempt;
    this.delayMs = init.delayMs;
    this.code = init.code;
    this.reason = init.reason;
    this.wasClean = init.wasClean;
    this.dropped = init.dropped;
    this.transport = init.transport;
  }
}

/** Dispatched when the socket switches transport (automatic fallback to long-polling). */
export class TransportEvent extends Event {
  /** the transport now in use */
  readonly transport: TransportKind;
  /** the transport used before */
  readonly previous: TransportKind;
  /** why it switched, for logs */
  readonly reason: string;
  constructor(transport: TransportKind, previous: TransportKind, reason: string) {
    super("transport");
    this.transport = transport;
    this.previous = previous;
    this.reason = reason;
  }
}
