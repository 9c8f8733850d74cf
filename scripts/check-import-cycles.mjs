#!/usr/bin/env node
// Fails when modules import each other in a cycle, directly or through others.
// A cycle makes evaluation order decide what a module sees at load (a class that
// is still undefined), and makes "one job per module" false: neither side can be
// read, tested or moved without the other. Run by `npm run lint`, over helper/,
// src-main/ and src-renderer/ (or the folders given as arguments).
//
// Counted: every static `import` and `export … from` with a relative path, type-only
// ones too (they couple the modules the same way). Not counted: `import()` calls,
// which run after both modules are evaluated (lazy loading is what they are for),
// and package imports. A script of its own rather than eslint-plugin-import-x's
// no-cycle: that costs about as much CPU (1 to 2 s more per lint run here), but adds
// 91 packages with a native resolver, needs resolver and parser settings to follow
// `.js` imports to `.ts` files, and does not see the renderer's .vue files.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SOURCE = /\.(?:ts|tsx|mts|cts|js|mjs|cjs|vue)$/u;
/** What an import's written extension may stand for on disk (TypeScript's ESM rule). */
const SUBSTITUTES = {
  '.js': ['.ts', '.tsx', '.js'],
  '.mjs': ['.mts', '.mjs'],
  '.cjs': ['.cts', '.cjs'],
  '': ['.ts', '.tsx', '.js', '/index.ts', '/index.js'],
};

function sourceFiles(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** A .vue file's script blocks; other files whole. */
function scriptText(file) {
  const text = readFileSync(file, 'utf8');
  if (!file.endsWith('.vue')) return text;
  const blocks = [...text.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gu)];
  return blocks.map((m) => m[1]).join('\n');
}

/** The relative module paths a file imports statically (type-only imports included). */
function importsOf(file) {
  const source = ts.createSourceFile(file, scriptText(file), ts.ScriptTarget.Latest, false);
  const specifiers = [];
  for (const statement of source.statements) {
    const spec =
      ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)
        ? statement.moduleSpecifier
        : undefined;
    if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.')) specifiers.push(spec.text);
  }
  return specifiers;
}

function resolveImport(from, specifier) {
  const target = resolve(dirname(from), specifier);
  if (existsSync(target) && statSync(target).isFile()) return target;
  const ext = extname(target);
  const stem = ext in SUBSTITUTES ? target.slice(0, target.length - ext.length) : target;
  for (const sub of SUBSTITUTES[ext in SUBSTITUTES ? ext : '']) {
    if (existsSync(stem + sub)) return stem + sub;
  }
  return undefined;
}

/** The import graph of the source files under `dirs`: file -> files it imports. */
function importGraph(dirs) {
  const graph = new Map();
  for (const dir of dirs) {
    for (const file of sourceFiles(dir)) {
      const targets = new Set();
      for (const specifier of importsOf(file)) {
        const target = resolveImport(file, specifier);
        if (target) targets.add(target);
      }
      graph.set(file, [...targets]);
    }
  }
  return graph;
}

/**
 * The cycles of a graph: one per strongly connected component of more than one
 * module (or a module importing itself): a closed path of files through it, and
 * all of its modules.
 */
function findCycles(graph) {
  // Tarjan's algorithm, iterative: deep import chains must not overflow the stack.
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  let counter = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work = [[start, 0]];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [node, i] = frame;
      const edges = graph.get(node) ?? [];
      if (i < edges.length) {
        frame[1]++;
        const next = edges[i];
        if (!graph.has(next)) continue;
        if (!index.has(next)) {
          index.set(next, counter);
          low.set(next, counter++);
          stack.push(next);
          onStack.add(next);
          work.push([next, 0]);
        } else if (onStack.has(next)) {
          low.set(node, Math.min(low.get(node), index.get(next)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(node)));
      }
      if (low.get(node) === index.get(node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== node);
        const selfLoop = component.length === 1 && edges.includes(node);
        if (component.length > 1 || selfLoop) components.push(component);
      }
    }
  }
  return components.map((component) => ({
    path: cyclePath(graph, new Set(component)),
    modules: component.sort(),
  }));
}

/** One closed path through a component: breadth-first from its first file (sorted) back to it. */
function cyclePath(graph, members) {
  const start = [...members].sort()[0];
  const previous = new Map();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const next of graph.get(node) ?? []) {
      if (!members.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0]));
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

function main() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const args = process.argv.slice(2);
  const dirs =
    args.length > 0
      ? args.map((d) => resolve(d))
      : ['helper', 'src-main', 'src-renderer'].map((d) => resolve(root, d));
  const cycles = findCycles(importGraph(dirs));
  const show = (f) => relative(process.cwd(), f);
  for (const { path, modules } of cycles) {
    console.error(`import cycle: ${path.map(show).join(' -> ')}`);
    if (modules.length > path.length - 1) {
      console.error(
        `  (all ${modules.length} modules of this cycle: ${modules.map(show).join(', ')})`,
      );
    }
  }
  if (cycles.length > 0) {
    console.error(
      `${cycles.length} import cycle(s): move what both sides need into a module both import.`,
    );
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
