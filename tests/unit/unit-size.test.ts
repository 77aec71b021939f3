/**
 * No unit over 80 lines in src/ or adapters/ (issue #22): every function, method, constructor,
 * accessor, arrow and function expression, counted from its first line to its last, parsed with
 * the TypeScript compiler. A unit that must stay whole says why in a comment on the line just
 * above it, containing `one unit:`.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";

const root = resolve(import.meta.dirname, "../..");
const MAX_LINES = 80;

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(root, path)).isDirectory() ? filesUnder(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const isUnit = (node: ts.Node): node is ts.FunctionLikeDeclaration =>
  ts.isFunctionDeclaration(node) ||
  ts.isMethodDeclaration(node) ||
  ts.isConstructorDeclaration(node) ||
  ts.isGetAccessorDeclaration(node) ||
  ts.isSetAccessorDeclaration(node) ||
  ts.isArrowFunction(node) ||
  ts.isFunctionExpression(node);

/** What a unit is called in a message: its own name, or the name it is assigned to. */
function nameOf(unit: ts.FunctionLikeDeclaration, source: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(unit)) return "constructor";
  if (unit.name) return unit.name.getText(source);
  const parent = unit.parent;
  if ((ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) && parent.name)
    return parent.name.getText(source);
  return "(anonymous)";
}

/** Each unit of `code` over MAX_LINES lines without a `one unit:` comment just above it, as "file:line name (N lines)". */
function oversized(file: string, code: string): string[] {
  const source = ts.createSourceFile(file, code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const lines = code.split("\n");
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (isUnit(node)) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const length = last - first + 1;
      const above = lines[first - 1] ?? "";
      const excused = /(\/\/|\/\*|^\s*\*).*one unit:/.test(above);
      if (length > MAX_LINES && !excused) found.push(`${file}:${first + 1} ${nameOf(node, source)} (${length} lines)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe("unit size", () => {
  it(`no function, method or arrow in src/ or adapters/ is over ${MAX_LINES} lines unless a comment says why`, () => {
    const found = ["src", "adapters"]
      .flatMap(filesUnder)
      .flatMap((file) => oversized(file, readFileSync(join(root, file), "utf8")));
    assert.deepEqual(found, [], `over ${MAX_LINES} lines (split them, or say why above: // one unit: …)`);
  });

  it("the check itself sees a long unit, nested ones too, and only a `one unit:` comment excuses one", () => {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  const a${i} = ${i};`).join("\n");
    const long = `function long() {\n${body(MAX_LINES - 1)}\n}\n`;
    assert.deepEqual(oversized("x.ts", `function fits() {\n${body(MAX_LINES - 2)}\n}\n`), []);
    assert.deepEqual(oversized("x.ts", long), [`x.ts:1 long (${MAX_LINES + 1} lines)`]);
    const nested = `class C {\n  run() {\n    const inner = () => {\n${body(MAX_LINES)}\n    };\n  }\n}\n`;
    assert.deepEqual(
      oversized("x.ts", nested).map((f) => f.split(" ")[1]),
      ["run", "inner"],
    );
    assert.deepEqual(oversized("x.ts", `// one unit: a reason\n${long}`), []);
    assert.deepEqual(oversized("x.ts", `// a comment without the words\n${long}`).length, 1);
  });
});
