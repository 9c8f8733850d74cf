/**
 * What tsc compiles from helper/ and src-main/ lands in dist/ and in the packages
 * (app.asar, the helper tree), so each such module must be part of the product:
 * reachable by imports from one of its entry points. A test double or a benchmark's
 * helper belongs under test/ or bench/, which are never packed.
 */
import { describe, expect, it } from 'vitest';
import {
  PRODUCT_SOURCE_DIRS,
  productEntries,
  reachableFrom,
  sourcesUnder,
} from '../../support/product-modules.js';

describe('product modules', () => {
  const product = reachableFrom(productEntries());

  it('every module compiled from helper/ and src-main/ is reached from a product entry point', () => {
    const unreached = sourcesUnder(PRODUCT_SOURCE_DIRS).filter((f) => !product.has(f));
    expect(unreached).toEqual([]);
  });

  it('no product module imports from test/ or bench/', () => {
    expect([...product].filter((f) => /^(test|bench)\//u.test(f))).toEqual([]);
  });

  it('the walk sees the imports that make a module product or test-only', () => {
    // Through the renderer (a .vue file) into src-main/common and the protocol module.
    expect(product).toContain('src-main/common/matching.ts');
    expect(product).toContain('helper/protocol/rules.ts');
    // bin/portcullis.js's two programs.
    expect(product).toContain('helper/daemon/daemon.ts');
    expect(product).toContain('src-main/node/web-host.ts');
    const test = reachableFrom(['test/unit/renderer/components.test.ts']);
    expect(test).toContain('test/support/memory-api.ts');
    expect(test).toContain('test/support/synthetic.ts');
    expect(product).not.toContain('test/support/memory-api.ts');
  });
});
