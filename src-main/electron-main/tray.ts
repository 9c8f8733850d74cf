/** Tray icon with the number of pending prompts (tooltip, title where the
 * desktop shows one, launcher badge where supported). */
import type { App, Menu as MenuType, NativeImage, Tray as TrayType } from 'electron';
import { trayTooltip } from '../common/prompt-notices.js';

export interface TrayDeps {
  Tray: new (image: NativeImage | string) => TrayType;
  Menu: { buildFromTemplate: typeof MenuType.buildFromTemplate };
  app: Pick<App, 'setBadgeCount' | 'quit'>;
  icon: NativeImage | string;
  show(): void;
}

export class PendingTray {
  private readonly tray: TrayType;
  private pending = 0;
  private helperLine = '';

  constructor(private readonly deps: TrayDeps) {
    this.tray = new deps.Tray(deps.icon);
    this.tray.setContextMenu(
      deps.Menu.buildFromTemplate([
        { label: 'Show Portcullis', click: () => deps.show() },
        { type: 'separator' },
        { label: 'Quit', click: () => deps.app.quit() },
      ]),
    );
    this.tray.on('click', () => deps.show());
    this.render();
  }

  setPending(n: number): void {
    this.pending = Math.max(0, Math.floor(n));
    this.render();
  }

  setHelperLine(line: string): void {
    this.helperLine = line;
    this.render();
  }

  destroy(): void {
    this.tray.destroy();
  }

  private render(): void {
    this.tray.setToolTip(trayTooltip(this.pending, this.helperLine));
    // Shown next to the icon by some desktops (AppIndicator label).
    this.tray.setTitle(this.pending > 0 ? String(this.pending) : '');
    this.deps.app.setBadgeCount(this.pending);
  }
}
