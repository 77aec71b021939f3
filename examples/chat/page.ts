/**
 * The chat example's page: plain JavaScript on the browser SDK served at `/client.js`;
 * with `?codec=msgpack` it speaks `edgewire.v1+msgpack` (the codec from `/client-msgpack.js`).
 */
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>edgewire chat example</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #log { border: 1px solid #ccc; height: 18rem; overflow-y: auto; padding: .5rem; }
  #typing { color: #777; min-height: 1.2em; }
</style>
<h1>Chat: <span id="room"></span></h1>
<div id="log"></div>
<div id="typing"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="say something" size="40"> <button>Send</button></form>
<script type="module">
  import { joinRoom } from "/client.js";
  const params = new URLSearchParams(location.search);
  const roomName = params.get("room") || "lobby";
  const name = params.get("name") || "guest";
  document.getElementById("room").textContent = roomName;
  const base = location.origin.replace(/^http/, "ws") + "?name=" + encodeURIComponent(name);
  // The same room either way: a MessagePack member and a JSON member chat with each other.
  const codec = params.get("codec") === "msgpack" ? (await import("/client-msgpack.js")).msgpack : undefined;
  const room = joinRoom(base, roomName, { path: "/chat/:room", codec });
  window.room = room;
  const names = new Map();
  const log = document.getElementById("log");
  const line = (text) => { const p = document.createElement("p"); p.textContent = text; log.append(p); };
  room.on("welcome", (w) => { for (const m of w.members) names.set(m.id, m.info?.name); });
  room.on("presence", (p) => { if (p.event === "join") names.set(p.member.id, p.member.info?.name); });
  room.on("message", (m) => {
    const who = m.data.by ?? names.get(m.from) ?? m.from;
    line("#" + m.seq + " " + who + ": " + m.data.text + (m.data.replyTo ? " (re #" + m.data.replyTo + ")" : ""));
  });
  room.on("broadcast", (b) => {
    if (b.data.type === "typing") document.getElementById("typing").textContent = b.data.typing ? (names.get(b.from) ?? "someone") + " is typing…" : "";
    if (b.data.type === "rename") names.set(b.from, b.data.name);
  });
  const input = document.getElementById("text");
  input.addEventListener("input", () => room.send({ type: "typing", typing: input.value !== "" }));
  document.getElementById("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value;
    input.value = "";
    room.send({ type: "typing", typing: false });
    await room.publish({ type: "say", text });
  });
</script>
</html>
`;
