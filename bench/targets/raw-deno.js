/**
 * Raw `Deno.serve` + `Deno.upgradeWebSocket`: the ceiling for edgewire's Deno
 * adapter. Rooms relay each frame unchanged to every member with a loop
 * (Deno has no native topic publish); /m2m/:room (many-to-many) to the other members. (JavaScript, not TypeScript: the repo's
 * Node type check covers bench/.)
 */
const rooms = new Map();

Deno.serve({ port: Number(Deno.env.get("PORT")), hostname: Deno.env.get("HOST") ?? "127.0.0.1", onListen() {} }, (req) => {
  const path = new URL(req.url).pathname;
  if (path === "/healthz") return Response.json({ ok: true, runtime: "raw-deno" });
  const others = path.startsWith("/m2m/");
  const room = path.startsWith("/rooms/") ? path.slice(7) : others ? `m2m:${path.slice(5)}` : null;
  if (path !== "/echo" && room === null) return new Response("not found", { status: 404 });
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.binaryType = "arraybuffer";
  if (room === null) {
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  }
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  socket.onopen = () => {
    members.add(socket);
    socket.send('{"type":"welcome"}');
  };
  socket.onmessage = (e) => {
    for (const m of members) if (m.readyState === WebSocket.OPEN && (!others || m !== socket)) m.send(e.data);
  };
  socket.onclose = () => members.delete(socket);
  return response;
});
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
