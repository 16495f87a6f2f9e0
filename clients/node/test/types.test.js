// The declarations match the code: every runtime export of src/index.js and src/canonical.js is
// declared in its .d.ts (and nothing declared as a value is missing at runtime), read with the
// TypeScript compiler API. `tsc --noEmit` (npm run typecheck) checks examples/agent.ts with them.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import ts from 'typescript';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');

function declaredValues(dts) {
  const file = path.join(SRC, dts);
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  assert.ok(source, `${dts} was not loaded`);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  assert.deepEqual(
    diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    [],
    `${dts} does not type-check`,
  );
  const moduleSymbol = checker.getSymbolAtLocation(source);
  const names = [];
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (target.flags & ts.SymbolFlags.Value) names.push(symbol.getName());
  }
  return names.sort();
}

for (const [js, dts] of [
  ['index.js', 'index.d.ts'],
  ['canonical.js', 'canonical.d.ts'],
]) {
  test(`${dts} declares exactly the values ${js} exports`, async () => {
    const runtime = Object.keys(await import(path.join(SRC, js))).sort();
    assert.deepEqual(declaredValues(dts), runtime);
  });
}
