/** The demo's /client.js is generated from src/client/: fail when it is stale. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { it } from "node:test";
import { generatedModule } from "../../scripts/build-client.ts";

it("src/demo/client-bundle.gen.ts matches src/client/ (run `npm run build:client`)", async () => {
  const committed = readFileSync(resolve(import.meta.dirname, "../../src/demo/client-bundle.gen.ts"), "utf8");
  assert.ok(committed === (await generatedModule()), "stale bundle: run `npm run build:client`");
});
