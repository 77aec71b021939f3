/**
 * Raw workerd: the floor a Worker + Durable Object reaches with no framework,
 * to compare with edgewire-workerd (adapters/cloudflare.ts). The Worker serves
 * /echo itself with a plain accepted socket, as edgewire does; each room is one
 * SQLite-backed Durable Object (idFromName) holding its sockets through the
 * Hibernation API and relaying every frame unchanged to every member, the
 * sender included. /m2m/:room (many-to-many) is the same with the sender left
 * out (RawRoomOthers, its own class: a woken object knows which it is without
 * reading anything per message). (JavaScript, not TypeScript: the repo's Node
 * type check covers bench/.)
 */
import { DurableObject } from "cloudflare:workers";

// 1005 (no code) and 1006 (abnormal) may not be sent in a Close frame, and
// workerd throws if a handler echoes them: answer with a plain 1000.
const echoable = (code) => (code === 1005 || code === 1006 || code === 1015 ? 1000 : code);

const isUpgrade = (request) => request.headers.get("Upgrade")?.toLowerCase() === "websocket";

/** One room: its members are the object's hibernatable sockets. */
export class RawRoom extends DurableObject {
  fetch(request) {
    if (!isUpgrade(request)) return new Response("upgrade failed", { status: 400 });
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    server.send('{"type":"welcome"}');
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(_ws, message) {
    for (const ws of this.ctx.getWebSockets()) {
      // workerd throws when sending on a socket that is already closing.
      try {
        ws.send(message);
      } catch {}
    }
  }

  webSocketClose(ws, code, reason) {
    // Reciprocate, or the client sees 1006 instead of its own code.
    try {
      ws.close(echoable(code), reason);
    } catch {}
  }

  webSocketError() {}
}

/** One many-to-many room: every frame to the other members. */
export class RawRoomOthers extends RawRoom {
  webSocketMessage(sender, message) {
    for (const ws of this.ctx.getWebSockets()) {
      if (ws === sender) continue;
      try {
        ws.send(message);
      } catch {}
    }
  }
}

export default {
  fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path === "/healthz") return Response.json({ ok: true, runtime: "raw-workerd" });
    if (path.startsWith("/rooms/") && path.length > 7) {
      return env.ROOMS.get(env.ROOMS.idFromName(path.slice(7))).fetch(request);
    }
    if (path.startsWith("/m2m/") && path.length > 5) {
      return env.M2M.get(env.M2M.idFromName(path.slice(5))).fetch(request);
    }
    if (path !== "/echo") return new Response("not found", { status: 404 });
    if (!isUpgrade(request)) return new Response("upgrade failed", { status: 400 });
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    // Recent compatibility dates deliver binary as Blob; edgewire sets the same.
    server.binaryType = "arraybuffer";
    server.addEventListener("message", (e) => {
      try {
        server.send(e.data);
      } catch {}
    });
    server.addEventListener("close", (e) => {
      try {
        server.close(echoable(e.code), e.reason);
      } catch {}
    });
    return new Response(null, { status: 101, webSocket: client });
  },
};
