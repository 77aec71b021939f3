/**
 * The demo page served at `/`: a small chat room built on the client SDK
 * (`/client.js`), showing messages, presence, connection state and transport.
 * `?transport=polling` (or `websocket`) forces a transport; `?room=` and
 * `?name=` prefill the form.
 */

/** The whole page: HTML, CSS and a module script, no build step. */
export const DEMO_HTML = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgewire demo</title>
<style>
  :root { font: 15px/1.45 system-ui, sans-serif; color: #1d2330; background: #f4f6fa; }
  body { margin: 0; }
  header { background: #1d2330; color: #fff; padding: 12px 20px; display: flex; gap: 12px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header small { opacity: .7; }
  main { display: grid; grid-template-columns: 1fr 220px; gap: 16px; padding: 16px 20px; max-width: 960px; }
  .card { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px #0002; padding: 12px 14px; }
  form { display: flex; gap: 8px; }
  input { flex: 1; padding: 7px 9px; border: 1px solid #c8cfdb; border-radius: 6px; font: inherit; }
  button { padding: 7px 14px; border: 0; border-radius: 6px; background: #3056d3; color: #fff; font: inherit; cursor: pointer; }
  button:disabled { background: #9aa7c7; cursor: default; }
  #status { display: flex; gap: 8px; margin: 10px 0; font-size: 13px; }
  .badge { padding: 2px 8px; border-radius: 10px; background: #e3e8f2; }
  .badge[data-state="open"] { background: #d5f2dc; color: #17622c; }
  .badge[data-state="reconnecting"], .badge[data-state="connecting"] { background: #fff1cc; color: #7a5a00; }
  .badge[data-state="closed"] { background: #f8d7da; color: #842029; }
  #messages { list-style: none; margin: 0; padding: 0; height: 360px; overflow-y: auto; }
  #messages li { padding: 4px 0; border-bottom: 1px solid #eef1f6; }
  #messages .seq { color: #8a94a6; font-size: 12px; margin-right: 6px; }
  #messages .who { font-weight: 600; margin-right: 6px; }
  #messages .system { color: #8a94a6; font-style: italic; }
  #members { list-style: none; padding: 0; margin: 0; }
  #members li { padding: 3px 0; font-size: 13px; overflow: hidden; text-overflow: ellipsis; }
  #members li.me { font-weight: 600; }
  h2 { font-size: 14px; margin: 0 0 8px; color: #55607a; text-transform: uppercase; letter-spacing: .04em; }
</style>
</head>
<body>
<header><h1>edgewire</h1><small id="runtime">realtime on every edge runtime</small></header>
<main>
  <section class="card">
    <form id="join-form">
      <input id="room" placeholder="room" value="lobby" pattern="[A-Za-z0-9_.\\-]{1,64}" required>
      <input id="name" placeholder="your name" required>
      <button id="join">Join</button>
    </form>
    <div id="status">
      <span class="badge" id="state" data-state="idle">not joined</span>
      <span class="badge" id="transport">—</span>
      <span class="badge" id="seq">seq 0</span>
    </div>
    <ul id="messages"></ul>
    <form id="send-form">
      <input id="text" placeholder="say something" autocomplete="off" disabled>
      <button id="send" disabled>Send</button>
    </form>
  </section>
  <aside class="card">
    <h2>Members (<span id="count">0</span>)</h2>
    <ul id="members"></ul>
  </aside>
</main>
<script type="module">
  import { joinRoom } from "/client.js";
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  if (params.get("room")) $("room").value = params.get("room");
  $("name").value = params.get("name") || "guest-" + Math.random().toString(36).slice(2, 6);
  fetch("/healthz").then((r) => r.json()).then((h) => ($("runtime").textContent = "running on " + h.runtime)).catch(() => {});

  const names = new Map();
  let client;

  function line(html, cls) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    li.append(...html);
    $("messages").append(li);
    $("messages").scrollTop = $("messages").scrollHeight;
  }
  const span = (cls, text) => Object.assign(document.createElement("span"), { className: cls, textContent: text });
  function setState(state, text) {
    $("state").dataset.state = state;
    $("state").textContent = text ?? state;
  }
  function renderMembers() {
    $("members").replaceChildren(
      ...client.members.map((m) =>
        Object.assign(document.createElement("li"), {
          className: m.id === client.id ? "me" : "",
          textContent: (names.get(m.id) ?? "member " + m.id.slice(0, 8)) + (m.id === client.id ? " (you)" : ""),
        }),
      ),
    );
    $("count").textContent = String(client.count);
  }

  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    client?.close();
    $("messages").replaceChildren();
    const transport = params.get("transport") || "auto";
    const me = $("name").value;
    client = joinRoom(location.origin.replace(/^http/, "ws"), $("room").value, { transport });
    setState("connecting");
    client.on("welcome", (w) => {
      names.set(w.id, me);
      setState("open", "connected");
      $("transport").textContent = client.transport;
      $("text").disabled = $("send").disabled = false;
      line([span("system", "joined " + w.room + " as " + me)], "system");
      renderMembers();
    });
    client.on("message", (m) => {
      const data = m.data ?? {};
      if (data.name) names.set(m.from, String(data.name));
      $("seq").textContent = "seq " + m.seq;
      line([span("seq", "#" + m.seq), span("who", data.name ?? m.from.slice(0, 8)), document.createTextNode(String(data.text ?? JSON.stringify(m.data)))]);
      renderMembers();
    });
    client.on("presence", (p) => {
      // In rooms above the presence limit only the count changes ("count" and "sync" carry no single member).
      if (p.member) {
        const who = names.get(p.member.id) ?? "member " + p.member.id.slice(0, 8);
        line([span("system", who + (p.event === "join" ? " joined" : " left"))], "system");
      }
      renderMembers();
    });
    client.on("transport", (t) => ($("transport").textContent = t.transport));
    client.on("reconnecting", () => setState("reconnecting"));
    client.on("close", (c) => {
      setState("closed", "closed (" + c.code + ")");
      $("text").disabled = $("send").disabled = true;
    });
  });

  $("send-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text || !client) return;
    $("text").value = "";
    try {
      await client.publish({ name: $("name").value, text });
    } catch (error) {
      line([span("system", "not sent: " + error.message)], "system");
    }
  });

  if (params.has("autojoin")) $("join").click();
</script>
</body>
</html>
`;
