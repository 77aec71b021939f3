/**
 * The crossws application, the same on every runtime: /echo echoes, and
 * /rooms/:room subscribes the peer to the room's topic, sends a welcome, and
 * publishes every text frame unchanged to the whole room. crossws's global
 * `publish` reaches every subscriber (the sender too), natively on Bun.
 */
import type { Hooks, Peer } from "crossws";

type Publisher = { publish(topic: string, message: unknown): void };

const roomOf = (peer: Peer): string | null => {
  const path = new URL(peer.request.url).pathname;
  return path.startsWith("/rooms/") ? path.slice(7) : null;
};
const rooms = new WeakMap<Peer, string | null>();

/** crossws hooks; `server` gives the adapter for its global publish */
export function hooks(server: () => Publisher): Partial<Hooks> {
  return {
    open(peer) {
      const room = roomOf(peer);
      rooms.set(peer, room);
      if (room !== null) {
        peer.subscribe(room);
        peer.send('{"type":"welcome"}');
      }
    },
    message(peer, message) {
      const room = rooms.get(peer) ?? null;
      if (room === null) peer.send(message.rawData);
      else server().publish(room, message.rawData);
    },
  };
}
