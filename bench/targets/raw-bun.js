/**
 * Raw `Bun.serve`: the ceiling for edgewire's Bun adapter. Rooms use Bun's
 * native topic publish (`server.publish`, sender included), the fastest fan-out
 * Bun has; /m2m/:room (many-to-many) publishes from the sender's socket (`ws.publish`: the other
 * members only), relaying every frame unchanged. With `--envelope` (target raw-bun-envelope) it relays the same bytes
 * edgewire sends — `{"type":"message","room","seq","from","data","ts"}` around the
 * publish's data, built by string slicing, no parsing — so edgewire ÷ it is
 * edgewire's per-publish work alone, and it ÷ raw-bun the cost of the bigger frame.
 * With `--envelope-msgpack` (target raw-bun-envelope-msgpack) it does the same for the
 * subprotocol edgewire.v1+msgpack: binary frames, built from bytes, no MessagePack library.
 * With `--broadcast-envelope` (target raw-bun-broadcast-envelope) /m2m/:room relays what edgewire's
 * `broadcast` sends — `{"type":"broadcast","room","from","data"}` around the update's data, by string
 * slicing — so edgewire ÷ it is edgewire's own per-update work, and it ÷ raw-bun what the bigger frame costs.
 * With `--compact-envelope` (target raw-bun-compact-envelope) it relays the positional form
 * `[1,"from",data]` (MessagePack's broadcast, as JSON): what a compact broadcast frame would buy.
 * (JavaScript, not TypeScript: the repo's Node type check covers bench/.)
 */
const BROADCAST = process.argv.includes("--broadcast-envelope");
const COMPACT = process.argv.includes("--compact-envelope");
const ENVELOPE = process.argv.includes("--envelope") || process.argv.includes("--envelope-no-room");
// --envelope-no-room (target raw-bun-envelope-no-room): the same envelope without "room", to measure
// what dropping the room name (redundant on a one-room connection) from message frames would buy.
const ROOM = !process.argv.includes("--envelope-no-room");
const PREFIX = '{"type":"publish","data":';
let seq = 0;
const broadcastEnvelope = (room, message) =>
  typeof message === "string" && message.startsWith(PREFIX)
    ? `{"type":"broadcast","room":"${room}","from":"AAAAAAAAAAAAAAAA","data":${message.slice(PREFIX.length, -1)}}`
    : message;
const compactEnvelope = (message) =>
  typeof message === "string" && message.startsWith(PREFIX)
    ? `[1,"AAAAAAAAAAAAAAAA",${message.slice(PREFIX.length, -1)}]`
    : message;
const envelope = (room, message) =>
  typeof message === "string" && message.startsWith(PREFIX)
    ? `{"type":"message",${ROOM ? `"room":"${room}",` : ""}"seq":${++seq},"from":"AAAAAAAAAAAAAAAA","data":${message.slice(PREFIX.length, -1)},"ts":${Date.now()}}`
    : message;

// --envelope-msgpack: a client's publish is the MessagePack map {type:"publish",data}; its fixed
// head is PUBLISH_HEAD, so the data value is every byte after it, relayed without decoding as
// edgewire's message array [0, seq, from, data, ts].
const MSGPACK = process.argv.includes("--envelope-msgpack");
const MP_SUBPROTOCOL = "edgewire.v1+msgpack";
const ascii = (s) => [...s].map((ch) => ch.charCodeAt(0));
const PUBLISH_HEAD = Uint8Array.of(0x82, 0xa4, ...ascii("type"), 0xa7, ...ascii("publish"), 0xa4, ...ascii("data"));
const FROM = Uint8Array.of(0xb0, ...ascii("AAAAAAAAAAAAAAAA"));
const MP_WELCOME = Uint8Array.of(0x81, 0xa4, ...ascii("type"), 0xa7, ...ascii("welcome"));
const isPublish = (m) => {
  if (typeof m === "string" || m.length <= PUBLISH_HEAD.length) return false;
  for (let i = 0; i < PUBLISH_HEAD.length; i++) if (m[i] !== PUBLISH_HEAD[i]) return false;
  return true;
};
const mpEnvelope = (message) => {
  if (!isPublish(message)) return message;
  const data = message.subarray(PUBLISH_HEAD.length);
  const s = ++seq;
  // seq as the smallest unsigned MessagePack integer that holds it: positive fixint, uint8, uint16, uint32
  const seqLen = s < 0x80 ? 1 : s < 0x100 ? 2 : s < 0x10000 ? 3 : 5;
  const out = new Uint8Array(2 + seqLen + FROM.length + data.length + 9);
  out[0] = 0x95; // fixarray of 5
  out[1] = 0x00; // 0: a room message
  if (seqLen === 1) out[2] = s;
  else {
    out[2] = seqLen === 2 ? 0xcc : seqLen === 3 ? 0xcd : 0xce;
    for (let k = 1; k < seqLen; k++) out[2 + k] = s >>> (8 * (seqLen - 1 - k)); // big-endian, stored mod 256
  }
  let at = 2 + seqLen;
  out.set(FROM, at);
  at += FROM.length;
  out.set(data, at);
  at += data.length;
  // ts: Date.now() as uint64, written byte by byte (no DataView or BigInt per message)
  const now = Date.now();
  const hi = Math.floor(now / 2 ** 32);
  const lo = now >>> 0;
  out[at] = 0xcf;
  for (let k = 0; k < 4; k++) {
    out[at + 1 + k] = hi >>> (24 - 8 * k);
    out[at + 5 + k] = lo >>> (24 - 8 * k);
  }
  return out;
};
const offersMsgpack = (req) =>
  (req.headers.get("sec-websocket-protocol") ?? "").split(",").some((p) => p.trim() === MP_SUBPROTOCOL);
const server = Bun.serve({
  port: Number(Bun.env.PORT),
  hostname: Bun.env.HOST ?? "127.0.0.1",
  fetch(req, srv) {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return Response.json({ ok: true, runtime: "raw-bun" });
    const others = path.startsWith("/m2m/");
    const room = path.startsWith("/rooms/") ? path.slice(7) : others ? `m2m:${path.slice(5)}` : null;
    if (path !== "/echo" && room === null) return new Response("not found", { status: 404 });
    const upgrade = { data: { room, others, name: others ? path.slice(5) : room } };
    if (MSGPACK && offersMsgpack(req)) upgrade.headers = { "Sec-WebSocket-Protocol": MP_SUBPROTOCOL };
    if (srv.upgrade(req, upgrade)) return undefined;
    return new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 1 << 20,
    open(ws) {
      if (ws.data.room === null) return;
      ws.subscribe(ws.data.room);
      ws.send(MSGPACK ? MP_WELCOME : '{"type":"welcome"}');
    },
    message(ws, message) {
      if (ws.data.room === null) ws.send(message);
      else if (ws.data.others)
        ws.publish(
          ws.data.room,
          BROADCAST ? broadcastEnvelope(ws.data.name, message) : COMPACT ? compactEnvelope(message) : message,
        );
      else
        server.publish(
          ws.data.room,
          MSGPACK ? mpEnvelope(message) : ENVELOPE ? envelope(ws.data.room, message) : message,
        );
    },
  },
});
process.once("SIGTERM", () => process.exit(0));
