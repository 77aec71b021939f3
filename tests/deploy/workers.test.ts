/**
 * The Cloudflare deploy, offline: `wrangler deploy --dry-run --outdir` bundles the
 * service (wrangler.toml) and every example (examples/<name>/wrangler.toml) exactly as
 * `wrangler deploy` would upload them, with no warning in wrangler's output. Each bundle
 * exports the Worker and the Durable Object class its binding names, and imports no
 * Node.js module (none of the configs turns on nodejs_compat).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { WRANGLER_ENV } from "../../testing/index.ts";
import { ROOT } from "../support/servers.ts";

const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
// A bound on what is uploaded, so a dependency pulled in by accident shows up here: the bundles
// measure 480–506 KiB, 126–133 KiB gzipped (the README's figures, with room state and timers); a
// bound close above them.
const MAX_BUNDLE_BYTES = 540 * 1024;
const MAX_GZIP_BYTES = 144 * 1024;

interface DryRun {
  status: number | null;
  output: string;
  bundle: string;
}

function dryRun(config: string): DryRun {
  const outdir = mkdtempSync(join(tmpdir(), "edgewire-cf-bundle-"));
  const run = spawnSync(WRANGLER, ["deploy", "--dry-run", "--outdir", outdir, "--config", config], {
    cwd: dirname(config),
    env: { ...process.env, ...WRANGLER_ENV, NO_COLOR: "1", FORCE_COLOR: "0" },
    encoding: "utf8",
    timeout: 120_000,
  });
  const js = readdirSync(outdir).filter((f) => f.endsWith(".js"));
  const bundle = js.length === 1 ? readFileSync(join(outdir, js[0] as string), "utf8") : "";
  return { status: run.status, output: `${run.stdout}\n${run.stderr}`, bundle };
}

// wrangler marks warnings with ▲ and the word WARNING (and errors with ✘ / ERROR).
const complaints = (output: string) => output.split("\n").filter((line) => /▲|\[WARNING\]|✘|\[ERROR\]/.test(line));

const configs = [
  join(ROOT, "wrangler.toml"),
  ...readdirSync(join(ROOT, "examples"))
    .map((name) => join(ROOT, "examples", name, "wrangler.toml"))
    .filter((file) => existsSync(file)),
];

describe("wrangler deploy --dry-run: the bundles Cloudflare would receive", () => {
  it("every example has a wrangler.toml", () => {
    for (const name of readdirSync(join(ROOT, "examples")))
      assert.ok(existsSync(join(ROOT, "examples", name, "wrangler.toml")), `examples/${name} has no wrangler.toml`);
  });

  for (const config of configs) {
    const label = config.slice(ROOT.length + 1);
    it(`${label}: bundles with no warning, exports the Worker and RoomObject, no node: imports`, () => {
      const run = dryRun(config);
      assert.equal(run.status, 0, run.output);
      assert.deepEqual(complaints(run.output), [], run.output);
      assert.match(run.output, /env\.ROOMS \(RoomObject\)\s+Durable Object/);
      assert.ok(run.bundle.length > 0, "no bundle written");
      const gzipped = gzipSync(run.bundle).byteLength;
      assert.ok(run.bundle.length < MAX_BUNDLE_BYTES, `bundle is ${run.bundle.length} bytes`);
      assert.ok(gzipped < MAX_GZIP_BYTES, `bundle is ${gzipped} bytes gzipped`);
      assert.match(run.bundle, /export\s*\{[^}]*\bRoomObject\b[^}]*\}/);
      assert.match(run.bundle, /export\s*\{[^}]*\bas default\b[^}]*\}/);
      assert.doesNotMatch(run.bundle, /(?:from|import|require\()\s*["']node:/);
    });
  }

  it("the check itself sees a warning (a config with a field wrangler does not know)", () => {
    const dir = mkdtempSync(join(tmpdir(), "edgewire-cf-warn-"));
    const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8")
      .replace('main = "service/cloudflare.ts"', `main = "${join(ROOT, "service/cloudflare.ts")}"`)
      .replace("[vars]", "not_a_wrangler_field = true\n\n[vars]");
    writeFileSync(join(dir, "wrangler.toml"), toml);
    const run = dryRun(join(dir, "wrangler.toml"));
    assert.notDeepEqual(complaints(run.output), [], run.output);
  });
});
