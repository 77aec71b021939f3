/**
 * The crossws application, the same on every runtime: /echo echoes, and
 * /rooms/:room subscribes the peer to the room's topic, sends a welcome, and
 * publishes every text frame unchanged to the whole room. crossws's global
 * `publish` reaches every subscriber (the sender too), natively on Bun.
 * /m2m/:room (many-to-many) publishes from the peer (`peer.publish`: the
 * other members only; Bun's native `ws.publish`).
 */
import type { Hooks, Peer } from "crossws";

type Publisher = { publish(topic: string, message: unknown): void };

type Room = { topic: string; others: boolean };
const roomOf = (peer: Peer): Room | null => {
  const path = new URL(peer.request.url).pathname;
  if (path.startsWith("/m2m/")) return { topic: `m2m:${path.slice(5)}`, others: true };
  return path.startsWith("/rooms/") ? { topic: path.slice(7), others: false } : null;
};
const rooms = new WeakMap<Peer, Room | null>();

/** crossws hooks; `server` gives the adapter for its global publish */
export function hooks(server: () => Publisher): Partial<Hooks> {
  return {
    open(peer) {
      const room = roomOf(peer);
      rooms.set(peer, room);
      if (room !== null) {
        peer.subscribe(room.topic);
        peer.send('{"type":"welcome"}');
      }
    },
    message(peer, message) {
      const room = rooms.get(peer) ?? null;
      if (room === null) peer.send(message.rawData);
      else if (room.others) peer.publish(room.topic, message.rawData);
      else server().publish(room.topic, message.rawData);
    },
  };
}
