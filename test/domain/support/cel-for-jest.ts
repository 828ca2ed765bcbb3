/**
 * Jest (on Node < 24.9) cannot `require` an ES module from node_modules, and
 * @marcbachmann/cel-js ships only ESM; Node itself (require(esm), Node >= 20.19) and
 * Temporal's workflow bundler load it fine. Until jest.config.js lets the package through
 * its transform (transformIgnorePatterns), this helper registers a mock that loads the very
 * same installed files, converted to CommonJS by TypeScript's transpiler, inside the test's
 * realm. Import it first in any test that reaches the rules code.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';

function loadCelJs(): unknown {
  const root = resolve(__dirname, '..', '..', '..', 'node_modules', '@marcbachmann', 'cel-js');
  const cache = new Map<string, { exports: unknown }>();
  const load = (file: string): unknown => {
    const hit = cache.get(file);
    if (hit) return hit.exports;
    const mod = { exports: {} as unknown };
    cache.set(file, mod);
    const js = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 }, fileName: file }).outputText;
    const localRequire = (spec: string): unknown => {
      if (!spec.startsWith('.')) throw new Error(`cel-for-jest: unexpected import ${spec} in ${file}`);
      return load(resolve(dirname(file), spec));
    };
    new Function('exports', 'require', 'module', js)(mod.exports, localRequire, mod);
    return mod.exports;
  };
  return load(join(root, 'lib', 'index.js'));
}

jest.mock('@marcbachmann/cel-js', () => loadCelJs());
