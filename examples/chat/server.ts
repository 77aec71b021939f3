/**
 * The chat example as its own edgewire: the chat route, the browser SDK at
 * `/client.js` and a page at `/` (added to the edgewire's app like any Hono
 * route). Run it with any adapter; `worker.ts` is its Cloudflare entry.
 */
import { createEdgewire } from "edgewire";
import { chat } from "./chat.ts";
import { CHAT_PAGE } from "./page.ts";

/** The chat example's edgewire. */
const edgewire = createEdgewire({ routes: [chat], clientScript: true });
edgewire.app.get("/", (c) => c.html(CHAT_PAGE));

export default edgewire;
