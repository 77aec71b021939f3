/**
 * The package as a user gets it: `npm pack`, install the tarball into a fresh
 * project, write a custom route there in plain JavaScript, type-check a
 * TypeScript use of it against the shipped .d.ts, and run it on Node (plain
 * `node`, no tsx) and Bun — started with the shipped `edgewire/testing`
 * harness, then spoken to over real sockets.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { encodeValue } from "../../src/msgpack.ts";
import { ROOT } from "../support/servers.ts";
import { TestSocket, withTimeout } from "../support/test-socket.ts";

const APP = `import { createEdgewire, defineRoom, defineRoute } from "edgewire";
import * as v from "valibot";

const shout = defineRoute({
  path: "/shout",
  schema: v.object({ text: v.string() }),
  message(ctx, m) {
    ctx.connection.send({ loud: m.text.toUpperCase() });
  },
});
const votes = defineRoom({ path: "/votes/:room", schema: v.object({ option: v.picklist(["yes", "no"]) }) });

export default createEdgewire({ routes: [shout, votes] });
`;

const TYPED = `import { createEdgewire, defineRoom } from "edgewire";
import { joinRoom } from "edgewire/client";
import { msgpack } from "edgewire/client/msgpack";
import { serve } from "edgewire/node";
import * as v from "valibot";

const votes = defineRoom({
  path: "/votes/:room",
  schema: v.object({ option: v.picklist(["yes", "no"]) }),
  message: (ctx, vote) => ctx.room.publish(vote),
});
export const server = () => serve(createEdgewire({ routes: [votes] }), { port: 0, signals: false });
const room = joinRoom<typeof votes>("ws://localhost:1", "r", { path: "/votes/:room" });
void room.publish({ option: "yes" });
// @ts-expect-error: not an option
void room.publish({ option: "maybe" });
const packed = joinRoom<typeof votes>("ws://localhost:1", "r", { path: "/votes/:room", codec: msgpack });
packed.on("message", (m) => m.data.option satisfies "yes" | "no");
`;

describe("the packed package in a fresh project", { timeout: 240_000 }, () => {
  const project = mkdtempSync(join(tmpdir(), "edgewire-user-"));
  type Harness = typeof import("../../testing/index.ts");
  let harness: Harness;

  before(() => {
    const packed = mkdtempSync(join(tmpdir(), "edgewire-pack-"));
    execFileSync("npm", ["pack", "--silent", "--pack-destination", packed], { cwd: ROOT, stdio: "pipe" });
    const tarball = join(packed, readdirSync(packed).find((f) => f.endsWith(".tgz")) as string);
    const pkg = {
      name: "my-realtime-app",
      private: true,
      type: "module",
      dependencies: { edgewire: `file:${tarball}`, valibot: "^1.5.0" },
    };
    writeFileSync(join(project, "package.json"), JSON.stringify(pkg, null, 2));
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: project, stdio: "pipe" });
    writeFileSync(join(project, "app.js"), APP);
  });

  before(async () => {
    harness = (await import(
      pathToFileURL(join(project, "node_modules/edgewire/build/testing/index.js")).href
    )) as Harness;
  });

  it("ships built JavaScript and types, and none of our runtime tools", () => {
    const shipped = join(project, "node_modules/edgewire/build");
    for (const file of [
      "src/index.js",
      "src/index.d.ts",
      "adapters/node.js",
      "adapters/bun.js",
      "adapters/deno.js",
      "adapters/cloudflare.js",
      "src/client/index.js",
      "src/client/msgpack.js",
      "testing/index.js",
    ]) {
      assert.ok(existsSync(join(shipped, file)), `${file} is in the package`);
    }
    // The MessagePack codec resolves from plain node, with its one dependency installed for the user.
    const protocol = execFileSync(
      process.execPath,
      ["--input-type=module", "-e", 'import { msgpack } from "edgewire/client/msgpack"; console.log(msgpack.protocol)'],
      { cwd: project, encoding: "utf8" },
    );
    assert.equal(protocol.trim(), "edgewire.v1+msgpack");
    for (const tool of ["tsx", "typescript", "wrangler", "bun", "deno"]) {
      assert.ok(!existsSync(join(project, "node_modules", tool)), `${tool} is not installed for the user`);
    }
  });

  it("type-checks a TypeScript use of the package against its .d.ts, inference included", () => {
    writeFileSync(join(project, "typed.ts"), TYPED);
    const tsconfig = {
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: "ESNext",
        moduleResolution: "Bundler",
        target: "ES2022",
        lib: ["ES2023", "DOM"],
        types: [],
        skipLibCheck: true,
      },
      files: ["typed.ts"],
    };
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(tsconfig));
    execFileSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", project], { cwd: project, stdio: "pipe" });
  });

  it("fails at once, naming the package to add, when a runtime is not installed", async () => {
    // The project has no deno in node_modules/.bin, and this PATH has none either: spawn fails (ENOENT).
    await assert.rejects(
      harness.startServer("deno", { entry: "app.js", root: project, env: { PATH: "/nonexistent" } }),
      /could not start deno .*npm i -D deno/,
    );
  });

  it("fails at once, pointing at the prefix, when the server is up but its health path answers 404", async () => {
    // What a user meets who mounted the edgewire under a prefix and kept the default health path.
    await assert.rejects(
      harness.startServer("node", { entry: "app.js", root: project, health: "/realtime/healthz" }),
      /answers 404 at \/realtime\/healthz: if your edgewire is mounted under a prefix/,
    );
  });

  for (const runtime of ["node", "bun"] as const) {
    it(`runs the user's own routes on ${runtime}`, async () => {
      // Bun as a user has it on PATH (our dev dependency's binary), not in the fresh project.
      const env = { PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH ?? ""}` };
      const server = await harness.startServer(runtime, { entry: "app.js", root: project, env });
      try {
        const shout = new TestSocket(`${server.ws}/shout`);
        await withTimeout(shout.opened, 10_000, "open /shout");
        shout.send(JSON.stringify({ text: "hello" }));
        assert.deepEqual(await shout.json(), { loud: "HELLO" });
        shout.send(JSON.stringify({ text: 1 }));
        assert.equal((await shout.json<{ code: string }>()).code, "invalid_message");
        await shout.close();
        // The same route in MessagePack: the message decoded, the object sent back packed.
        const packed = new TestSocket(`${server.ws}/shout`, "edgewire.v1+msgpack");
        await withTimeout(packed.opened, 10_000, "open /shout in MessagePack");
        packed.send(Buffer.from(encodeValue({ text: "quiet" })));
        assert.deepEqual(await packed.value(), { loud: "QUIET" });
        await packed.close();
        const votes = new TestSocket(`${server.ws}/votes/poll-1`, "edgewire.v1");
        assert.equal((await votes.json()).type, "welcome");
        votes.send(JSON.stringify({ type: "publish", id: "v1", data: { option: "yes" } }));
        const message = await votes.until<{ seq: number; data: unknown }>("message");
        assert.deepEqual([message.seq, message.data], [1, { option: "yes" }]);
        await votes.close();
      } catch (error) {
        throw Object.assign(error as Error, { serverOutput: server.output() });
      } finally {
        await server.stop();
      }
    });
  }
});
