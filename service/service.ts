/**
 * The edgewire service itself, as `npm start` runs it — a user of the kit, apart from it: `/echo`
 * and `/rooms/:room` (the kit's two ready-made routes, built with the public API), the chat demo at `/`
 * with the browser SDK at `/client.js`, `/healthz`, and its AsyncAPI document
 * at `/asyncapi.json` (committed as docs/asyncapi.json by `npm run docs`).
 */
import { createEdgewire, echo, rooms } from "../src/index.ts";

/** The service every start command runs. */
export const service = createEdgewire({
  routes: [echo, rooms],
  demo: true,
  // The protocol's version (edgewire.v1), not the package's: what a client of this API depends on.
  asyncapi: {
    title: "edgewire",
    version: "1.0.0",
    description:
      "The edgewire service as `npm start` runs it: `/echo` sends every frame back unchanged, `/rooms/{room}` is the general-purpose room (any JSON value, binary relayed).",
  },
});
