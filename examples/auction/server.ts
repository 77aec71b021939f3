/**
 * The auction example as its own edgewire: the auction route, the browser SDK at `/client.js` and
 * a page at `/`. Run it with any adapter; `worker.ts` is its Cloudflare entry.
 */
import { createEdgewire } from "edgewire";
import { auction } from "./auction.ts";
import { AUCTION_PAGE } from "./page.ts";

/** The auction example's edgewire. */
const edgewire = createEdgewire({ routes: [auction], clientScript: true });
edgewire.app.get("/", (c) => c.html(AUCTION_PAGE));

export default edgewire;
