import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const script = 'scripts/check-import-cycles.mjs';
const fixtures = 'test/fixtures/import-cycles';

/** Exit code and stderr of the checker over `dirs`. */
async function check(...dirs: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, [script, ...dirs]);
    return { code: 0, stderr };
  } catch (error) {
    const e = error as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

describe('scripts/check-import-cycles.mjs', () => {
  it('fails on a cycle through a type-only import and a re-export, naming its path', async () => {
    const { code, stderr } = await check(`${fixtures}/cyclic`);
    expect(code).toBe(1);
    expect(stderr).toContain(
      `import cycle: ${fixtures}/cyclic/a.ts -> ${fixtures}/cyclic/b.ts -> ${fixtures}/cyclic/c.ts -> ${fixtures}/cyclic/a.ts`,
    );
    expect(stderr).not.toContain('outside.ts');
    expect(stderr).toContain('1 import cycle(s)');
  });

  it("follows a .vue file's script imports", async () => {
    const { code, stderr } = await check(`${fixtures}/vue-cycle`);
    expect(code).toBe(1);
    expect(stderr).toContain(`${fixtures}/vue-cycle/Panel.vue`);
  });

  it('passes a diamond, package imports and a dynamic import back to the importer', async () => {
    expect(await check(`${fixtures}/acyclic`)).toEqual({ code: 0, stderr: '' });
  });

  it('reports each cycle of several folders once', async () => {
    const { code, stderr } = await check(
      `${fixtures}/cyclic`,
      `${fixtures}/acyclic`,
      `${fixtures}/vue-cycle`,
    );
    expect(code).toBe(1);
    expect(stderr.match(/^import cycle:/gmu)).toHaveLength(2);
  });
});
