// The raw control for stateful rooms on workerd: a plain Worker and one SQLite-backed Durable Object
// per room (Hibernation API), no framework. A publish is what a careful engineer would write by hand:
// read the best bid (kept in memory, the object is the only writer), raise it, storage.put it, then
// broadcast the message to every socket and ack the sender — the put and the sends share the output gate.
import { DurableObject } from "cloudflare:workers";

export class RawStateRoom extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.seq = 0;
    this.state = undefined;
  }

  async fetch(request) {
    if (request.headers.get("upgrade") !== "websocket") return new Response("websocket only", { status: 426 });
    if (this.state === undefined) this.state = (await this.ctx.storage.get("state")) ?? { best: 0, bids: 0 };
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    server.send(JSON.stringify({ type: "welcome", seq: this.seq, view: this.state }));
    return new Response(null, { status: 101, webSocket: client, headers: { "sec-websocket-protocol": "edgewire.v1" } });
  }

  async webSocketMessage(ws, message) {
    const frame = JSON.parse(message);
    if (frame.type !== "publish") return;
    if (this.state === undefined) this.state = (await this.ctx.storage.get("state")) ?? { best: 0, bids: 0 };
    const state = { best: Math.max(this.state.best, frame.data.amount), bids: this.state.bids + 1 };
    this.state = state;
    this.ctx.storage.put("state", state);
    const seq = ++this.seq;
    const out = JSON.stringify({ type: "message", room: "r", seq, from: "m", data: frame.data, ts: Date.now(), view: state });
    for (const socket of this.ctx.getWebSockets()) socket.send(out);
    ws.send(JSON.stringify({ type: "ack", id: frame.id, seq }));
  }
}

export default {
  fetch(request, env) {
    const room = new URL(request.url).pathname.split("/").pop() ?? "r";
    return env.ROOMS.get(env.ROOMS.idFromName(room)).fetch(request);
  },
};
