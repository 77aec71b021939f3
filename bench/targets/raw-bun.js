/**
 * Raw `Bun.serve`: the ceiling for edgewire's Bun adapter. Rooms use Bun's
 * native topic publish (`server.publish`, sender included), the fastest fan-out
 * Bun has. With `--envelope` (target raw-bun-envelope) it relays the same bytes
 * edgewire sends — `{"type":"message","room","seq","from","data","ts"}` around the
 * publish's data, built by string slicing, no parsing — so edgewire ÷ it is
 * edgewire's per-publish work alone, and it ÷ raw-bun the cost of the bigger frame.
 * (JavaScript, not TypeScript: the repo's Node type check covers bench/.)
 */
const ENVELOPE = process.argv.includes("--envelope") || process.argv.includes("--envelope-no-room");
// --envelope-no-room (target raw-bun-envelope-no-room): the same envelope without "room", to measure
// what dropping the room name (redundant on a one-room connection) from message frames would buy.
const ROOM = !process.argv.includes("--envelope-no-room");
const PREFIX = '{"type":"publish","data":';
let seq = 0;
const envelope = (room, message) =>
  typeof message === "string" && message.startsWith(PREFIX)
    ? `{"type":"message",${ROOM ? `"room":"${room}",` : ""}"seq":${++seq},"from":"AAAAAAAAAAAAAAAA","data":${message.slice(PREFIX.length, -1)},"ts":${Date.now()}}`
    : message;
const server = Bun.serve({
  port: Number(Bun.env.PORT),
  hostname: Bun.env.HOST ?? "127.0.0.1",
  fetch(req, srv) {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return Response.json({ ok: true, runtime: "raw-bun" });
    const room = path.startsWith("/rooms/") ? path.slice(7) : null;
    if (path !== "/echo" && room === null) return new Response("not found", { status: 404 });
    if (srv.upgrade(req, { data: { room } })) return undefined;
    return new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 1 << 20,
    open(ws) {
      if (ws.data.room === null) return;
      ws.subscribe(ws.data.room);
      ws.send('{"type":"welcome"}');
    },
    message(ws, message) {
      if (ws.data.room === null) ws.send(message);
      else server.publish(ws.data.room, ENVELOPE ? envelope(ws.data.room, message) : message);
    },
  },
});
process.once("SIGTERM", () => process.exit(0));
