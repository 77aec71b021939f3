/** Cases about one runtime's own machinery (Durable Object hibernation). */
import assert from "node:assert/strict";
import type { Case } from "./cases.ts";
import { freshRoom, joinPair } from "./cases.ts";

type Presence = { room: string; seq: number; count: number; members: { id: string }[]; instance?: string };

/** Cases that only some runtimes can do; the others say why in the table. */
export const runtimeCases: Case[] = [
  {
    name: "Durable Object evicted while hibernating: members and seq survive",
    clients: ["ws"],
    unsupported: (runtime) =>
      runtime === "workerd" ? undefined : "no hibernation: a room's state lives in the process for its whole life",
    async run(s) {
      const room = freshRoom("hibernate");
      const { a, b } = await joinPair(s, room);
      a.socket.sendJson({ type: "publish", data: "before" });
      for (const m of [a, b]) assert.equal((await m.socket.until<{ seq: number }>("message")).seq, 1);
      const before = (await (await fetch(`${s.http}/rooms/${room}`)).json()) as Presence;
      // workerd evicts an object ~10 s after its last event when only
      // hibernatable sockets remain; the sockets stay open (measured locally).
      await new Promise((r) => setTimeout(r, 13_000));
      const after = (await (await fetch(`${s.http}/rooms/${room}`)).json()) as Presence;
      assert.ok(before.instance && after.instance, "the object reports its incarnation");
      assert.notEqual(after.instance, before.instance, "the object was evicted and rebuilt");
      assert.equal(after.count, 2, "members are rebuilt from the sockets' attachments");
      assert.deepEqual(after.members.map((m) => m.id).sort(), before.members.map((m) => m.id).sort());
      assert.equal(after.seq, 1, "the sequence number is stored, not held in memory");
      b.socket.sendJson({ type: "publish", data: "after", id: "x" });
      for (const m of [a, b]) {
        const f = await m.socket.until<{ seq: number; data: string }>("message");
        assert.deepEqual([f.seq, f.data], [2, "after"]);
      }
      assert.equal((await b.socket.until<{ seq: number }>("ack")).seq, 2);
      await b.socket.close(4000, "bye");
      const left = await a.socket.until<{ event: string; count: number; code: number }>("presence");
      assert.deepEqual([left.event, left.count, left.code], ["leave", 1, 4000]);
      await a.socket.close();
    },
  },
];
