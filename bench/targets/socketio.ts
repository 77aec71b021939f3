/**
 * socket.io on Node, WebSocket transport only (what the C client speaks:
 * engine.io v4 framing, `42["event",data]`). /echo is the event "echo" sent
 * back; rooms: the handshake query `room` joins a room, a "welcome" event
 * follows, and every "publish" is emitted as "message" to the whole room
 * (`io.to(room)`, sender included).
 */
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end('{"ok":true,"runtime":"socket.io"}');
  }
  // socket.io answers its own path; everything else is not found.
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
