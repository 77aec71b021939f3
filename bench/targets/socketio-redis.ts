/**
 * socket.io on Node with @socket.io/redis-adapter: the fleet peer of
 * edgewire's Redis broker. The same app as socketio.ts (rooms by the
 * handshake query `room`, "publish" emitted to the whole room as "message"),
 * and `io.to(room)` reaches members on every instance through Redis.
 */
import { createServer } from "node:http";
import { createClient } from "@redis/client";
import { createAdapter } from "@socket.io/redis-adapter";
import { Server } from "socket.io";

const pub = createClient({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379/12" });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end('{"ok":true,"runtime":"socket.io-redis"}');
  }
  if (!req.url?.startsWith("/socket.io/")) {
    res.writeHead(404);
    res.end();
  }
});
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 1 << 20,
  serveClient: false,
  adapter: createAdapter(pub, sub, { key: process.env.SOCKETIO_KEY ?? "bench-sio" }),
});
io.on("connection", (socket) => {
  const room = socket.handshake.query.room;
  if (typeof room === "string" && room) {
    socket.join(room);
    socket.emit("welcome");
    socket.on("publish", (data) => io.to(room).emit("message", data));
  } else {
    socket.on("echo", (data) => socket.emit("echo", data));
  }
});
http.listen(Number(process.env.PORT), process.env.HOST ?? "127.0.0.1");
process.once("SIGTERM", () => process.exit(0));
