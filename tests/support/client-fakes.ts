/**
 * A small fake edgewire server for the client SDK's unit tests: `/echo` and
 * `/rooms/:room` over WebSocket (the `ws` package) and over the long-polling
 * transport of docs/protocol.md (node:http), with switches to misbehave the
 * ways a network does: refused upgrades, lost responses, dropped sessions.
 * It is deliberately tiny and independent of src/, so the client's tests do
 * not move when the real server does.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket as ServerSocket, WebSocketServer } from "ws";

type Frame = string | Uint8Array;
type PollFrame = { t: string } | { b: string };

/** A connection the fake server holds, on either transport. */
export interface FakePeer {
  id: string;
  route: "echo" | "room";
  room: string | null;
  transport: "websocket" | "polling";
  protocol: string;
  joinedAt: number;
  /** asked to resume after this seq of this epoch (`?seq=&epoch=`) */
  resume?: { seq: number; epoch: string };
  send(frame: Frame): void;
  /** server-initiated close with a code */
  close(code: number, reason: string): void;
  /** drop without a closing handshake (WebSocket: terminate; polling: forget the session) */
  drop(): void;
}

/** How a connection ended, as the server saw it. */
export interface SeenClose {
  id: string;
  transport: "websocket" | "polling";
  code: number;
  reason: string;
}

/** Switches a test flips to make the fake misbehave. */
export interface FakeHooks {
  /** answer every WebSocket upgrade with this HTTP status */
  refuseUpgrades?: number;
  /** answer `POST {route}/poll` with this HTTP status */
  refusePollOpen?: number;
  /** return true to lose this GET's response after the server produced it (the client must retry the cursor) */
  loseGet?: (sid: string, cursor: number, frames: number) => boolean;
  /** return true to lose this POST's response after the server handled it (the client must retry the same n) */
  losePost?: (sid: string, n: number) => boolean;
  /** hold POST responses this long */
  postDelayMs?: number;
  /** rooms: ignore publishes (no message, no ack), to keep a publish pending */
  mutePublish?: boolean;
  /** answer nothing at all (a dead server behind a live TCP connection) */
  silent?: boolean;
  /** rooms: refuse every resume as if history no longer reached back */
  loseHistory?: boolean;
  /** rooms: answer a publish's ack at once and deliver its message this much later (a fleet's fan-out) */
  messageAfterAckMs?: number;
}

/** A running fake server. */
export interface FakeServer {
  /** `http://127.0.0.1:port` */
  http: string;
  /** `ws://127.0.0.1:port` */
  ws: string;
  hooks: FakeHooks;
  /** WebSocket upgrade requests seen (refused ones included) */
  upgrades: number;
  /** long-polling sessions opened */
  sessions: number;
  /** `x-edgewire-protocol` headers seen on session opens */
  protocolHeaders: (string | undefined)[];
  /** cursors of every GET, in order, per sid */
  gets: { sid: string; cursor: number }[];
  /** every POST's n, in order, per sid */
  posts: { sid: string; n: number }[];
  /** frames the server handled (after dedup), in order */
  received: { id: string; data: Frame }[];
  closes: SeenClose[];
  peers: Set<FakePeer>;
  /** backend push into a room (as `POST /rooms/:room/messages` would) */
  push(room: string, data: unknown): number;
  /** close every connection with a code */
  closeAll(code: number, reason: string): void;
  /** drop every connection without a handshake */
  dropAll(): void;
  stop(): Promise<void>;
}

const POLL_OPEN = /^\/(echo|rooms\/([A-Za-z0-9_.-]+))\/poll$/;
const POLL_SESSION = /^\/(echo|rooms\/([A-Za-z0-9_.-]+))\/poll\/([^/]+)$/;
const WS_ROUTE = /^\/(echo|rooms\/([A-Za-z0-9_.-]+))$/;

interface Session {
  sid: string;
  peer: FakePeer;
  /** frames not yet acknowledged; frames[0] has number `base` */
  frames: PollFrame[];
  base: number;
  lastN: number;
  closed: { code: number; reason: string } | undefined;
  held: { res: ServerResponse; timer: ReturnType<typeof setTimeout> } | undefined;
}

const encode = (frame: Frame): PollFrame =>
  typeof frame === "string" ? { t: frame } : { b: Buffer.from(frame).toString("base64") };
const decode = (frame: PollFrame): Frame => ("t" in frame ? frame.t : new Uint8Array(Buffer.from(frame.b, "base64")));

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

/** Start the fake on 127.0.0.1 and a free port; `holdMs` is how long a GET is held. */
export async function startFakeServer(options: { holdMs?: number } = {}): Promise<FakeServer> {
  const holdMs = options.holdMs ?? 2_000;
  const sessions = new Map<string, Session>();
  const rooms = new Map<string, { seq: number; epoch: string; log: string[]; members: Map<string, FakePeer> }>();
  let nextId = 0;
  const newId = (prefix: string) => `${prefix}${++nextId}`;

  const roomOf = (name: string) => {
    let room = rooms.get(name);
    if (!room) {
      room = { seq: 0, epoch: `e-${name}`, log: [], members: new Map() };
      rooms.set(name, room);
    }
    return room;
  };
  const broadcast = (name: string, frame: Frame, except?: string) => {
    for (const member of roomOf(name).members.values()) if (member.id !== except) member.send(frame);
  };
  const publish = (name: string, from: string, data: unknown): number => {
    const room = roomOf(name);
    room.seq += 1;
    const frame = JSON.stringify({ type: "message", room: name, seq: room.seq, from, data, ts: Date.now() });
    room.log.push(frame);
    const later = fake.hooks.messageAfterAckMs;
    if (later === undefined) broadcast(name, frame);
    else setTimeout(() => broadcast(name, frame), later);
    return room.seq;
  };

  // The route handlers: the same for both transports, like the real engine's.
  const open = (peer: FakePeer) => {
    fake.peers.add(peer);
    if (peer.route !== "room" || peer.room === null) return;
    const room = roomOf(peer.room);
    room.members.set(peer.id, peer);
    const members = [...room.members.values()].map((m) => ({ id: m.id, joinedAt: m.joinedAt }));
    // Resume as the real server does: the same epoch and all of history → resumed + replay; else resync.
    const r = peer.resume;
    const resumed = r !== undefined && r.epoch === room.epoch && r.seq <= room.seq && !fake.hooks.loseHistory;
    peer.send(
      JSON.stringify({
        type: "welcome",
        id: peer.id,
        room: peer.room,
        protocol: peer.protocol,
        seq: resumed ? r.seq : room.seq,
        epoch: room.epoch,
        ...(resumed ? { resumed: true } : {}),
        members,
      }),
    );
    if (resumed) for (const frame of room.log.slice(r.seq)) peer.send(frame);
    else if (r) {
      peer.send(
        JSON.stringify({
          type: "resync",
          room: peer.room,
          epoch: room.epoch,
          seq: room.seq,
          reason: fake.hooks.loseHistory ? "history_truncated" : "epoch_changed",
          from: r.seq + 1,
          to: room.seq,
        }),
      );
    }
    const member = { id: peer.id, joinedAt: peer.joinedAt };
    broadcast(
      peer.room,
      JSON.stringify({ type: "presence", room: peer.room, event: "join", member, count: room.members.size }),
      peer.id,
    );
  };
  const message = (peer: FakePeer, data: Frame) => {
    fake.received.push({ id: peer.id, data });
    if (fake.hooks.silent) return;
    if (peer.route === "echo" || peer.room === null) {
      peer.send(data);
      return;
    }
    if (typeof data !== "string") {
      broadcast(peer.room, data, peer.id);
      return;
    }
    const frame = JSON.parse(data) as { type: string; data?: unknown; id?: string };
    if (frame.type === "ping") peer.send(JSON.stringify({ type: "pong", ...(frame.id ? { id: frame.id } : {}) }));
    if (frame.type !== "publish" || fake.hooks.mutePublish) return;
    if (!("data" in frame)) {
      peer.send(JSON.stringify({ type: "error", code: "invalid_message", message: "data: missing", id: frame.id }));
      return;
    }
    const seq = publish(peer.room, peer.id, frame.data);
    if (frame.id !== undefined) peer.send(JSON.stringify({ type: "ack", id: frame.id, seq }));
  };
  const closed = (peer: FakePeer, code: number, reason: string) => {
    if (!fake.peers.delete(peer)) return;
    fake.closes.push({ id: peer.id, transport: peer.transport, code, reason });
    if (peer.route !== "room" || peer.room === null) return;
    const room = roomOf(peer.room);
    room.members.delete(peer.id);
    const member = { id: peer.id, joinedAt: peer.joinedAt };
    broadcast(
      peer.room,
      JSON.stringify({
        type: "presence",
        room: peer.room,
        event: "leave",
        member,
        count: room.members.size,
        code,
        reason,
      }),
    );
  };

  // Long-polling: answer a held GET (or this one) with what is pending.
  const answer = (session: Session, res: ServerResponse, cursor: number) => {
    const frames = session.frames.slice();
    const reply = {
      cursor: session.base + frames.length,
      frames,
      ...(session.closed ? { close: session.closed } : {}),
    };
    if (frames.length > 0 && fake.hooks.loseGet?.(session.sid, cursor, frames.length)) {
      res.socket?.destroy();
      return;
    }
    json(res, 200, reply);
    if (session.closed) sessions.delete(session.sid);
  };
  const wake = (session: Session) => {
    const held = session.held;
    if (!held) return;
    session.held = undefined;
    clearTimeout(held.timer);
    answer(session, held.res, session.base);
  };

  const pollOpen = (req: IncomingMessage, res: ServerResponse, route: "echo" | "room", room: string | null) => {
    if (fake.hooks.refusePollOpen) {
      json(res, fake.hooks.refusePollOpen, { error: { code: "unauthorized", message: "refused by the test" } });
      return;
    }
    const offer = req.headers["x-edgewire-protocol"] as string | undefined;
    fake.protocolHeaders.push(offer);
    const offered = offer?.split(",").map((p) => p.trim()) ?? [];
    if (offered.length > 0 && !offered.includes("edgewire.v1")) {
      json(res, 400, { error: { code: "unsupported_protocol", message: "offer edgewire.v1" } });
      return;
    }
    const sid = newId("s");
    const session: Session = {
      sid,
      frames: [],
      base: 0,
      lastN: 0,
      closed: undefined,
      held: undefined,
      peer: {
        id: newId("m"),
        route,
        room,
        transport: "polling",
        protocol: offered.length > 0 ? "edgewire.v1" : "",
        joinedAt: Date.now(),
        send(frame) {
          if (session.closed || !sessions.has(sid)) return;
          session.frames.push(encode(frame));
          wake(session);
        },
        close(code, reason) {
          if (session.closed) return;
          session.closed = { code, reason };
          closed(session.peer, code, reason);
          wake(session);
        },
        drop() {
          sessions.delete(sid);
          if (session.held) {
            clearTimeout(session.held.timer);
            session.held.res.socket?.destroy();
            session.held = undefined;
          }
          closed(session.peer, 1006, "");
        },
      },
    };
    sessions.set(sid, session);
    fake.sessions += 1;
    json(res, 200, { sid, protocol: session.peer.protocol, timeoutMs: holdMs });
    open(session.peer);
  };

  const pollSession = async (req: IncomingMessage, res: ServerResponse, sid: string, query: URLSearchParams) => {
    const session = sessions.get(sid);
    if (!session) {
      json(res, 404, { error: { code: "session_not_found", message: "no such session" } });
      return;
    }
    if (req.method === "GET") {
      const cursor = Number(query.get("cursor") ?? "0");
      fake.gets.push({ sid, cursor });
      while (session.base < cursor && session.frames.length > 0) {
        session.frames.shift();
        session.base += 1;
      }
      if (session.held) {
        const previous = session.held;
        session.held = undefined;
        clearTimeout(previous.timer);
        json(previous.res, 200, { cursor: session.base, frames: [] });
      }
      if (session.frames.length > 0 || session.closed) {
        answer(session, res, cursor);
        return;
      }
      const timer = setTimeout(() => {
        session.held = undefined;
        json(res, 200, { cursor: session.base, frames: [] });
      }, holdMs);
      session.held = { res, timer };
      return;
    }
    if (req.method === "POST") {
      const body = JSON.parse(await readBody(req)) as { n: number; frames: PollFrame[] };
      fake.posts.push({ sid, n: body.n });
      if (body.n > session.lastN) {
        session.lastN = body.n;
        for (const frame of body.frames) message(session.peer, decode(frame));
      }
      if (fake.hooks.losePost?.(sid, body.n)) {
        res.socket?.destroy();
        return;
      }
      const delay = fake.hooks.postDelayMs ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      json(res, 200, { ok: true });
      return;
    }
    if (req.method === "DELETE") {
      const code = query.has("code") ? Number(query.get("code")) : 1005;
      sessions.delete(sid);
      if (session.held) wake(session);
      session.closed = { code, reason: query.get("reason") ?? "" };
      closed(session.peer, code, session.closed.reason);
      json(res, 200, { ok: true });
      return;
    }
    json(res, 405, { error: { code: "not_found", message: "method" } });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const opening = req.method === "POST" ? POLL_OPEN.exec(url.pathname) : null;
    if (opening) {
      pollOpen(req, res, opening[1] === "echo" ? "echo" : "room", opening[2] ?? null);
      return;
    }
    const existing = POLL_SESSION.exec(url.pathname);
    if (existing?.[3]) {
      pollSession(req, res, decodeURIComponent(existing[3]), url.searchParams).catch(() => res.destroy());
      return;
    }
    json(res, WS_ROUTE.test(url.pathname) ? 426 : 404, { error: { code: "not_found", message: url.pathname } });
  });

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has("edgewire.v1") ? "edgewire.v1" : false),
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    fake.upgrades += 1;
    const status = fake.hooks.refuseUpgrades;
    const match = WS_ROUTE.exec(new URL(req.url ?? "/", "http://127.0.0.1").pathname);
    if (status || !match) {
      // What a proxy that strips Upgrade, or a gateway without the backend, answers.
      socket.end(`HTTP/1.1 ${status ?? 404} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    const query = new URL(req.url ?? "/", "http://127.0.0.1").searchParams;
    const resume = query.has("seq") ? { seq: Number(query.get("seq")), epoch: query.get("epoch") ?? "" } : undefined;
    wss.handleUpgrade(req, socket, head, (ws: ServerSocket) => {
      const peer: FakePeer = {
        ...(resume ? { resume } : {}),
        id: newId("m"),
        route: match[1] === "echo" ? "echo" : "room",
        room: match[2] ?? null,
        transport: "websocket",
        protocol: ws.protocol,
        joinedAt: Date.now(),
        send: (frame) => ws.send(frame),
        close: (code, reason) => ws.close(code, reason),
        drop: () => ws.terminate(),
      };
      ws.on("message", (data: Buffer, binary: boolean) =>
        message(peer, binary ? new Uint8Array(data) : data.toString("utf8")),
      );
      ws.on("close", (code: number, reason: Buffer) => closed(peer, code, reason.toString("utf8")));
      ws.on("error", () => {});
      open(peer);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const fake: FakeServer = {
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    hooks: {},
    upgrades: 0,
    sessions: 0,
    protocolHeaders: [],
    gets: [],
    posts: [],
    received: [],
    closes: [],
    peers: new Set(),
    push: (room, data) => publish(room, "server", data),
    closeAll(code, reason) {
      for (const peer of [...fake.peers]) peer.close(code, reason);
    },
    dropAll() {
      for (const peer of [...fake.peers]) peer.drop();
    },
    async stop() {
      for (const session of sessions.values()) {
        if (session.held) {
          clearTimeout(session.held.timer);
          session.held.res.destroy();
        }
      }
      sessions.clear();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}

/** Resolve when `predicate` holds, checking every few ms; reject after `ms`. */
export async function waitFor(predicate: () => boolean, ms = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The next `type` event of `target`, or a rejection after `ms`. */
export function nextEvent<E extends Event = Event>(target: EventTarget, type: string, ms = 5_000): Promise<E> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, on);
      reject(new Error(`no ${type} event within ${ms} ms`));
    }, ms);
    const on = (event: Event) => {
      clearTimeout(timer);
      target.removeEventListener(type, on);
      resolve(event as E);
    };
    target.addEventListener(type, on);
  });
}

/** A TCP port on 127.0.0.1 where nothing listens. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Every event type an EdgewireSocket dispatches, logged by name in order. */
export function recordEvents(socket: EventTarget): string[] {
  const log: string[] = [];
  for (const type of ["open", "message", "error", "close", "reconnecting", "transport"]) {
    socket.addEventListener(type, () => log.push(type));
  }
  return log;
}

/** A WebSocket a test drives by hand: nothing goes on the network; the test decides when it opens or fails. */
export class FakeWebSocket {
  readyState = 0;
  readonly bufferedAmount = 0;
  protocol = "";
  readonly extensions = "";
  binaryType = "blob";
  onopen: ((event: never) => void) | null = null;
  onmessage: ((event: never) => void) | null = null;
  onerror: ((event: never) => void) | null = null;
  onclose: ((event: never) => void) | null = null;
  /** the SDK called close() on it (an abort while connecting, or a closing handshake) */
  closedByClient = false;
  readonly sent: unknown[] = [];

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}

  /** the handshake succeeded */
  accept(): void {
    if (this.readyState !== 0) return;
    this.readyState = 1;
    (this.onopen as ((event: unknown) => void) | null)?.({ type: "open" });
  }

  /** the handshake failed, or the open connection dropped */
  fail(code = 1006): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    (this.onclose as ((event: unknown) => void) | null)?.({ type: "close", code, reason: "", wasClean: false });
  }

  send(data: unknown): void {
    this.sent.push(data);
  }

  close(): void {
    this.closedByClient = true;
    this.readyState = 3;
  }
}

/** A WebSocket constructor whose sockets are FakeWebSockets, and every one it made, in order. */
export function fakeWebSockets(): {
  WebSocket: new (url: string, protocols?: string | string[]) => FakeWebSocket;
  created: FakeWebSocket[];
  /** the sockets still handshaking (made, neither opened nor failed nor dropped by the SDK) */
  connecting(): FakeWebSocket[];
} {
  const created: FakeWebSocket[] = [];
  class Recorded extends FakeWebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      created.push(this);
    }
  }
  return {
    WebSocket: Recorded,
    created,
    connecting: () => created.filter((ws) => ws.readyState === 0),
  };
}
