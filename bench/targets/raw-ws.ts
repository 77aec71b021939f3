/**
 * Raw `ws` on Node: the ceiling edgewire's Node adapter is compared with.
 * /echo echoes; /rooms/:room sends a welcome, then relays every text frame
 * unchanged to every member (sender included) with a plain send loop.
 */
import { createServer } from "node:http";
import { type WebSocket, WebSocketServer } from "ws";

const rooms = new Map<string, Set<WebSocket>>();
const server = createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
  res.end(req.url === "/healthz" ? '{"ok":true,"runtime":"raw-ws"}' : '{"error":"not_found"}');
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 20 });

server.on("upgrade", (req, socket, head) => {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  const room = path.startsWith("/rooms/") ? path.slice(7) : null;
  if (path !== "/echo" && room === null) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (room === null) {
      ws.on("message", (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
      return;
    }
    let members = rooms.get(room);
    if (!members) {
      members = new Set();
      rooms.set(room, members);
    }
    members.add(ws);
    ws.send('{"type":"welcome"}');
    ws.on("message", (data, isBinary) => {
      for (const m of members) m.send(data as Buffer, { binary: isBinary });
    });
    ws.on("close", () => members.delete(ws));
  });
});
server.listen(Number(process.env.PORT), process.env.HOST ?? "127.0.0.1");
process.once("SIGTERM", () => process.exit(0));
