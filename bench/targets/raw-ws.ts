/**
 * Raw `ws` on Node. /echo echoes; /rooms/:room sends a welcome, then relays every frame unchanged
 * to every member (sender included); /m2m/:room (many-to-many) relays it to the other members.
 *
 * Two targets: `raw-ws`, a plain send loop, and `raw-ws-corked` (`--cork`), the Node ceiling
 * edgewire's adapter is compared with: a socket written to stays corked until the tick ends (one
 * shared nextTick uncorks them all), exactly as adapters/node.ts does, so a burst of frames to a
 * socket leaves in one writev instead of one write per frame. Without it the baseline pays a
 * syscall per frame the adapter does not: many-to-many read 2.3× the plain loop but 0.6–0.7× the
 * corked one (issue 25), so the plain loop alone flattered edgewire.
 */
import { createServer } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";

const CORK = process.argv.includes("--cork");

let corked: Duplex[] = [];
let generation = 0;
function uncorkAll(): void {
  const sockets = corked;
  [corked, generation] = [[], generation + 1];
  for (const socket of sockets) socket.uncork();
}

/** A `ws` socket that corks its TCP socket on the first write of a tick (as adapters/node.ts's NodePeer). */
class CorkedWebSocket extends WebSocket {
  #corkedAt = -1;
  override send(data: Buffer | string, options?: unknown, cb?: unknown): void {
    const socket = (this as unknown as { _socket?: Duplex })._socket;
    if (socket && this.#corkedAt !== generation) {
      this.#corkedAt = generation;
      if (corked.length === 0) process.nextTick(uncorkAll);
      socket.cork();
      corked.push(socket);
    }
    (super.send as (d: unknown, o?: unknown, c?: unknown) => void)(data, options, cb);
  }
}

const rooms = new Map<string, Set<WebSocket>>();
const server = createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
  res.end(req.url === "/healthz" ? `{"ok":true,"runtime":"raw-ws${CORK ? "-corked" : ""}"}` : '{"error":"not_found"}');
});
const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: 1 << 20,
  ...(CORK ? { WebSocket: CorkedWebSocket } : {}),
});

server.on("upgrade", (req, socket, head) => {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  const others = path.startsWith("/m2m/");
  const room = path.startsWith("/rooms/") || others ? path.slice(path.indexOf("/", 1) + 1) : null;
  if (path !== "/echo" && room === null) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (room === null) {
      ws.on("message", (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
      return;
    }
    const key = `${others ? "m2m" : "rooms"}:${room}`;
    let members = rooms.get(key);
    if (!members) {
      members = new Set();
      rooms.set(key, members);
    }
    members.add(ws);
    ws.send('{"type":"welcome"}');
    ws.on("message", (data, isBinary) => {
      for (const m of members) if (!others || m !== ws) m.send(data as Buffer, { binary: isBinary });
    });
    ws.on("close", () => members.delete(ws));
  });
});
server.listen(Number(process.env.PORT), process.env.HOST ?? "127.0.0.1");
process.once("SIGTERM", () => process.exit(0));
