/**
 * Whether the renderer was built: without dist/renderer/index.html every URL of the
 * web host would answer 404, so the UI refuses to start and says how to build it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The message to print when `dir` holds no built renderer, or null. */
export function rendererMissing(dir: string): string | null {
  if (existsSync(join(dir, 'index.html'))) return null;
  return (
    `the UI is not built (${join(dir, 'index.html')} is missing): ` +
    'run `npm run build:renderer` (or `bash scripts/setup.sh`, which also builds it)'
  );
}
