/**
 * edgewire-bun with its broadcast path timed in place: the bench service on the Bun adapter, with
 * the engine's message handler, the connection's broadcast, the broker's broadcast and Bun's native
 * `ws.publish` wrapped in Bun.nanoseconds(), so a many-to-many run tells where an update's server
 * time goes — before the broadcast (parse, checks, the handler), the `publishes` check, the frame
 * and the hub's fan-out, and the native publish to the room's others. Every second it appends one
 * line per encoding to bench/.work/split.log (mean ns per update). The wrappers cost about 0.1 µs
 * per update themselves; read the parts against each other, and the total against edgewire-bun.
 * (JavaScript, not TypeScript: the repo's Node type check covers bench/.)
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { serve } from "../../adapters/bun.ts";
import { ConnectionContext } from "../../src/core/context.ts";
import { Engine } from "../../src/core/engine.ts";
import { MemoryBroker } from "../../src/pubsub/memory.ts";
import { benchService } from "./edgewire-service.ts";

const LOG = join(import.meta.dir, "../.work/split.log");
mkdirSync(join(import.meta.dir, "../.work"), { recursive: true });
const now = Bun.nanoseconds;
const parts = { message: 0, broadcast: 0, broker: 0, publish: 0, updates: 0 };
let encoding = "";

// Inclusive time of `proto[name]` into parts[key].
function time(proto, name, key) {
  const original = proto[name];
  proto[name] = function (...args) {
    const start = now();
    try {
      return original.apply(this, args);
    } finally {
      parts[key] += now() - start;
    }
  };
}

let nativeTimed = false;
const message = Engine.prototype.message;
Engine.prototype.message = function (peer, data, text) {
  if (!nativeTimed && peer.ws) {
    nativeTimed = true;
    time(Object.getPrototypeOf(peer.ws), "publish", "publish");
  }
  encoding ||= typeof data === "string" ? "json" : "msgpack";
  const start = now();
  message.call(this, peer, data, text);
  parts.message += now() - start;
  parts.updates++;
};
time(ConnectionContext.prototype, "broadcast", "broadcast");
time(MemoryBroker.prototype, "broadcast", "broker");

setInterval(() => {
  const n = parts.updates;
  if (n > 1000 && parts.publish > 0) {
    const per = (v) => (v / n).toFixed(0);
    appendFileSync(
      LOG,
      `${encoding} updates ${n}: before the broadcast ${per(parts.message - parts.broadcast)} ns, publishes check ${per(parts.broadcast - parts.broker)} ns, frame and fan-out ${per(parts.broker - parts.publish)} ns, native publish ${per(parts.publish)} ns\n`,
    );
  }
  for (const k of Object.keys(parts)) parts[k] = 0;
}, 1000);

await serve(benchService);
