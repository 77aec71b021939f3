/** The mounted app on Node: `serve(edgewire, { app })` serves your app, the edgewire inside it. */
import { serve } from "edgewire/node";
import realtime, { app } from "./app.ts";

await serve(realtime, { app });
