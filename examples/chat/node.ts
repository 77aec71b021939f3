/** `npx tsx examples/chat/node.ts` (after `npm run build`): the chat example on Node. */
import { serve } from "edgewire/node";
import edgewire from "./server.ts";

await serve(edgewire);
