/**
 * The edgewire service itself, as `npm start` runs it: `/echo` and
 * `/rooms/:room` (two routes built with the public API), the chat demo at `/`
 * with the browser SDK at `/client.js`, and `/healthz`.
 */
import { createEdgewire } from "./index.ts";
import { echo } from "./routes/echo.ts";
import { rooms } from "./routes/room.ts";

/** The service every start command runs. */
export const service = createEdgewire({ routes: [echo, rooms], demo: true });
