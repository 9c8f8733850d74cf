/**
 * Light/dark theme: follows prefers-color-scheme unless the person picks one.
 * The choice is an attribute on <html> that the CSS variables key on.
 */
export type ThemeChoice = 'system' | 'light' | 'dark';

const STORAGE_KEY = 'portcullis.theme';

export function loadTheme(storage: Pick<Storage, 'getItem'> | null): ThemeChoice {
  const v = storage?.getItem(STORAGE_KEY);
  return v === 'light' || v === 'dark' ? v : 'system';
}

export function applyTheme(
  choice: ThemeChoice,
  root: HTMLElement,
  storage: Pick<Storage, 'setItem' | 'removeItem'> | null,
): void {
  if (choice === 'system') {
    delete root.dataset.theme;
    storage?.removeItem(STORAGE_KEY);
  } else {
    root.dataset.theme = choice;
    storage?.setItem(STORAGE_KEY, choice);
  }
}

export function nextTheme(choice: ThemeChoice): ThemeChoice {
  return choice === 'system' ? 'light' : choice === 'light' ? 'dark' : 'system';
}
