/**
 * Where the app's parts are on disk, for the three ways Portcullis runs:
 *
 * - `dev`: from a checkout (`npm run build`), under Node (web host) or Electron;
 * - `packaged`: an electron-builder install (.deb under /opt/Portcullis, or an unpacked dir);
 * - `appimage`: the same layout, but mounted by FUSE for the user only, so root
 *   cannot read it and the helper has to be started by re-running `$APPIMAGE`.
 *
 * The helper ships as its own small tree outside app.asar (electron-builder
 * extraResources), laid out like the repository so that bin/portcullis.js,
 * dist/helper/cli.js and the addon finder (helper/native/load.ts: the
 * `../../../native/build/Release` candidate) work unchanged:
 *
 *   resources/helper/package.json
 *   resources/helper/bin/portcullis.js
 *   resources/helper/dist/helper/**.js
 *   resources/helper/node_modules/{valibot,ws}
 *   resources/helper/native/build/Release/portcullis_native.node
 *
 * Pure: the facts about the process come in as data (see runtimeFacts()).
 */
import { join } from 'node:path';

export type Layout = 'dev' | 'packaged' | 'appimage';

/** What the caller knows about the running process. */
export interface RuntimeFacts {
  /** process.execPath: node, or the Electron app binary. */
  execPath: string;
  /** process.resourcesPath under Electron; null under plain Node. */
  resourcesPath: string | null;
  /** app.isPackaged under Electron; false under plain Node. */
  isPackaged: boolean;
  /** Whether this is an Electron binary (then it needs ELECTRON_RUN_AS_NODE=1 to run scripts). */
  isElectron: boolean;
  /** $APPIMAGE when running from an AppImage (set by its runtime), else null. */
  appImage: string | null;
  /** The checkout's root (where package.json is), used in the dev layout. */
  appRoot: string;
}

export interface AppPaths {
  layout: Layout;
  /** The helper's tree (see above). */
  helperRoot: string;
  /** Entry of the `portcullis` command inside helperRoot. */
  helperScript: string;
  /** The compiled CLI module (main(argv)) inside helperRoot. */
  helperCli: string;
  nativeAddon: string;
  /** dist/renderer: what the app:// protocol serves. */
  rendererDir: string;
  /** The compiled preload (CommonJS, sandboxed). */
  preload: string;
  /** Window and tray icon. */
  icon: string;
}

/** Resource folder name of the helper tree, relative to resourcesPath (electron-builder.yml). */
const HELPER_RESOURCE_DIR = 'helper';
const ADDON = 'portcullis_native.node';

export function detectLayout(f: RuntimeFacts): Layout {
  if (!f.isPackaged || f.resourcesPath === null) return 'dev';
  return f.appImage !== null ? 'appimage' : 'packaged';
}

export function resolveAppPaths(f: RuntimeFacts): AppPaths {
  const layout = detectLayout(f);
  if (layout === 'dev') {
    const root = f.appRoot;
    return {
      layout,
      helperRoot: root,
      helperScript: join(root, 'bin', 'portcullis.js'),
      helperCli: join(root, 'dist', 'helper', 'cli.js'),
      nativeAddon: join(root, 'native', 'build', 'Release', ADDON),
      rendererDir: join(root, 'dist', 'renderer'),
      preload: join(root, 'dist', 'preload', 'preload.js'),
      icon: join(root, 'build', 'icons', '256x256.png'),
    };
  }
  // resourcesPath is non-null here (detectLayout).
  const resources = f.resourcesPath as string;
  const helperRoot = join(resources, HELPER_RESOURCE_DIR);
  // app.asar is a file to the OS but a folder to Electron's fs: these paths are
  // only ever opened by Electron itself (protocol handler, preload, icon).
  const asar = join(resources, 'app.asar');
  return {
    layout,
    helperRoot,
    helperScript: join(helperRoot, 'bin', 'portcullis.js'),
    helperCli: join(helperRoot, 'dist', 'helper', 'cli.js'),
    nativeAddon: join(helperRoot, 'native', 'build', 'Release', ADDON),
    rendererDir: join(asar, 'dist', 'renderer'),
    preload: join(asar, 'dist', 'preload', 'preload.js'),
    icon: join(resources, 'icons', '256x256.png'),
  };
}

/** The facts of the current process (the only impure part). */
export function runtimeFacts(options: {
  appRoot: string;
  isPackaged?: boolean;
  env?: NodeJS.ProcessEnv;
}): RuntimeFacts {
  const env = options.env ?? process.env;
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  const appImage = env['APPIMAGE'];
  return {
    execPath: process.execPath,
    resourcesPath: typeof resources === 'string' ? resources : null,
    isPackaged: options.isPackaged ?? false,
    isElectron: typeof process.versions['electron'] === 'string',
    appImage: appImage && appImage.startsWith('/') ? appImage : null,
    appRoot: options.appRoot,
  };
}
