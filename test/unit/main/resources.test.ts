import { describe, expect, it } from 'vitest';
import {
  detectLayout,
  resolveAppPaths,
  runtimeFacts,
  type RuntimeFacts,
} from '../../../src-main/node/resources.js';

const base: RuntimeFacts = {
  execPath: '/opt/Portcullis/portcullis',
  resourcesPath: '/opt/Portcullis/resources',
  isPackaged: true,
  isElectron: true,
  appImage: null,
  appRoot: '/ignored',
};

describe('resource paths', () => {
  it('dev tree: everything under the checkout', () => {
    const p = resolveAppPaths({ ...base, isPackaged: false, appRoot: '/src/p' });
    expect(p).toMatchObject({
      layout: 'dev',
      helperScript: '/src/p/bin/portcullis.js',
      helperCli: '/src/p/dist/helper/cli.js',
      nativeAddon: '/src/p/native/build/Release/portcullis_native.node',
      rendererDir: '/src/p/dist/renderer',
      preload: '/src/p/dist/preload/preload.js',
    });
  });

  it('packaged: the helper tree and addon in resources/helper, the UI in app.asar', () => {
    const p = resolveAppPaths(base);
    expect(p).toMatchObject({
      layout: 'packaged',
      helperRoot: '/opt/Portcullis/resources/helper',
      helperScript: '/opt/Portcullis/resources/helper/bin/portcullis.js',
      nativeAddon: '/opt/Portcullis/resources/helper/native/build/Release/portcullis_native.node',
      rendererDir: '/opt/Portcullis/resources/app.asar/dist/renderer',
      preload: '/opt/Portcullis/resources/app.asar/dist/preload/preload.js',
    });
  });

  it('AppImage: same layout under the mount, recognised by $APPIMAGE', () => {
    const f = { ...base, resourcesPath: '/tmp/.mount_x/resources', appImage: '/home/a/P.AppImage' };
    expect(detectLayout(f)).toBe('appimage');
    expect(resolveAppPaths(f).helperScript).toBe(
      '/tmp/.mount_x/resources/helper/bin/portcullis.js',
    );
    // Not packaged (electron . in a checkout) wins over a stray APPIMAGE.
    expect(detectLayout({ ...f, isPackaged: false })).toBe('dev');
  });

  it('reads the process facts; APPIMAGE must be absolute', () => {
    const f = runtimeFacts({ appRoot: '/r', env: { APPIMAGE: 'relative.AppImage' } });
    expect(f).toMatchObject({
      execPath: process.execPath,
      resourcesPath: null,
      isPackaged: false,
      isElectron: false,
      appImage: null,
    });
    expect(runtimeFacts({ appRoot: '/r', env: { APPIMAGE: '/a/P.AppImage' } }).appImage).toBe(
      '/a/P.AppImage',
    );
  });
});
