/** `npm start`: the edgewire service on Node, on the embedded in-memory broker. */
import { serve } from "../adapters/node.ts";
import { service } from "./service.ts";

await serve(service);
