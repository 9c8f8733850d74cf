/**
 * Prompts announced by the browser (the web host's page; Electron main shows its own
 * desktop notifications). Only while the page is hidden, only once the person allowed
 * it (a browser asks for that permission only from a click), and rate-limited as the
 * desktop app's are (src-main/common/prompt-notices.ts): a burst of prompts is one
 * notice. A click brings the page to the front, on the prompts.
 */
import type { Prompt } from '../../../src-main/common/api.js';
import { PromptNotices, type PromptSummary } from '../../../src-main/common/prompt-notices.js';

/** What the page needs from the browser (a test seam). */
export interface NoticeHost {
  /** 'unsupported' when the browser has no Notification API (or is not a page of the web host). */
  permission(): NotificationPermission | 'unsupported';
  requestPermission(): Promise<NotificationPermission>;
  hidden(): boolean;
  show(title: string, body: string, onClick: () => void): void;
  now(): number;
}

export function browserNoticeHost(): NoticeHost {
  const api = typeof Notification === 'undefined' ? null : Notification;
  // Electron's windows are app:// pages with the desktop app's own notifications.
  const web = typeof location !== 'undefined' && location.protocol === 'http:';
  return {
    permission: () => (api && web ? api.permission : 'unsupported'),
    requestPermission: () =>
      api ? api.requestPermission() : Promise.resolve<NotificationPermission>('denied'),
    hidden: () => document.visibilityState === 'hidden',
    show: (title, body, onClick) => {
      if (!api) return;
      const n = new api(title, { body, tag: 'portcullis-prompts' });
      n.onclick = () => {
        window.focus();
        onClick();
        n.close();
      };
    },
    now: () => Date.now(),
  };
}

function summary(p: Prompt): PromptSummary {
  const r = p.request;
  const app = r.process?.comm ?? r.process?.exe ?? `uid ${r.uid ?? '?'}`;
  return { id: p.id, app, destination: `${r.host ?? r.dst}:${r.dport ?? ''}` };
}

export class BrowserNotices {
  private readonly notices = new PromptNotices();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private known = new Set<string>();

  constructor(
    private readonly host: NoticeHost,
    private readonly openPrompts: () => void,
  ) {}

  /** The prompts now pending (the store's list, each time it changes). */
  update(pending: readonly Prompt[]): void {
    const ids = new Set(pending.map((p) => p.id));
    for (const id of this.known) if (!ids.has(id)) this.notices.resolved(id);
    const fresh = pending.filter((p) => !this.known.has(p.id));
    this.known = ids;
    // Arrived while the page was in front (seen), or not allowed: nothing to announce.
    if (!this.host.hidden() || this.host.permission() !== 'granted') return;
    this.show(this.notices.offer(fresh.map(summary), this.host.now()));
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private show(notice: { title: string; body: string } | null): void {
    if (notice) this.host.show(notice.title, notice.body, this.openPrompts);
    const wait = this.notices.nextFlushIn(this.host.now());
    if (wait === null || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.host.hidden() && this.host.permission() === 'granted') {
        this.show(this.notices.flush(this.host.now()));
      }
    }, wait);
  }
}
