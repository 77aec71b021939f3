/** The docs say what the code does: the README's configuration table is generated from SETTINGS, every error and close code is documented. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { withTable } from "../../scripts/config-doc.ts";
import { CloseCode, ErrorCode } from "../../src/protocol.ts";

const root = resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(resolve(root, file), "utf8");

describe("docs", () => {
  it("the README's configuration table matches the settings in the code (npm run docs:config)", () => {
    const readme = read("README.md");
    assert.equal(readme, withTable(readme), "README.md is behind src/config.ts: run `npm run docs:config`");
  });

  it("every error code and close code is in the README and in docs/protocol.md", () => {
    for (const file of ["README.md", "docs/protocol.md"]) {
      const text = read(file);
      for (const code of Object.values(ErrorCode))
        assert.ok(text.includes(`\`${code}\``), `${file} lacks error code ${code}`);
      for (const code of Object.values(CloseCode))
        assert.ok(text.includes(String(code)), `${file} lacks close code ${code}`);
    }
  });
});
