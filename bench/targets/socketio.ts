/**
 * socket.io on Node, WebSocket transport only (what the C client speaks:
 * engine.io v4 framing, `42["event",data]`). /echo is the event "echo" sent
 * back; rooms: the handshake query `room` joins a room, a "welcome" event
 * follows, and every "publish" is emitted as "message" to the whole room
 * (`io.to(room)`, sender included). With SOCKETIO_REDIS_URL it runs on
 * @socket.io/redis-adapter (keys under SOCKETIO_KEY): the fleet peer of
 * edgewire's Redis broker in bench/fleet.ts, where `io.to(room)` reaches
 * members on every instance.
 */
import { createServer } from "node:http";
import { Server, type ServerOptions } from "socket.io";

const REDIS_URL = process.env.SOCKETIO_REDIS_URL;

async function redisAdapter(url: string): Promise<Pick<ServerOptions, "adapter">> {
  const [{ createClient }, { createAdapter }] = await Promise.all([
    import("@redis/client"),
    import("@socket.io/redis-adapter"),
  ]);
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  return { adapter: createAdapter(pub, sub, { key: process.env.SOCKETIO_KEY ?? "bench-sio" }) };
}

const http = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(`{"ok":true,"runtime":"${REDIS_URL ? "socket.io-redis" : "socket.io"}"}`);
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
  ...(REDIS_URL ? await redisAdapter(REDIS_URL) : {}),
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
