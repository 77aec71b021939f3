/**
 * The auction example's page: plain JavaScript on the browser SDK served at `/client.js`. It shows
 * the room's view (`room.state`: the best bid, how many, whether closed), the bidders present, and
 * bids with the next amount the route accepts; a refused bid shows the route's own code.
 */
export const AUCTION_PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>edgewire auction example</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #best { font-size: 1.6rem; }
  #status { color: #777; min-height: 1.2em; }
</style>
<h1>Lot <span id="item"></span></h1>
<p id="best">no bids yet</p>
<p>bids: <span id="bids">0</span> · <span id="closed">open</span> · bidders: <span id="bidders"></span></p>
<form id="form"><input id="amount" type="number" min="1" size="8"> <button>Bid</button></form>
<p id="status"></p>
<script type="module">
  import { joinRoom } from "/client.js";
  const params = new URLSearchParams(location.search);
  const item = params.get("item") || "lot-1";
  const name = params.get("name") || "guest";
  document.getElementById("item").textContent = item;
  const query = "?name=" + encodeURIComponent(name) + (params.get("role") ? "&role=" + params.get("role") : "");
  const room = joinRoom(location.origin.replace(/^http/, "ws") + query, item, { path: "/auction/:item" });
  window.room = room;
  const show = (view) => {
    document.getElementById("best").textContent = view.best ? view.best.amount + " by " + view.best.bidder : "no bids yet";
    document.getElementById("bids").textContent = String(view.bids);
    document.getElementById("closed").textContent = view.closed ? "closed" : "open";
    document.getElementById("amount").value = String(view.best ? view.best.amount + 5 : 1);
  };
  const bidders = () => {
    document.getElementById("bidders").textContent = room.members.map((m) => m.info && m.info.name).join(", ");
  };
  room.on("state", ({ view }) => show(view));
  room.on("presence", bidders);
  room.on("welcome", bidders);
  document.getElementById("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const amount = Number(document.getElementById("amount").value);
    try {
      const { seq } = await room.publish({ type: "bid", amount });
      document.getElementById("status").textContent = "bid " + amount + " accepted (#" + seq + ")";
    } catch (error) {
      document.getElementById("status").textContent = "refused: " + error.code;
    }
  });
</script>
</html>
`;
