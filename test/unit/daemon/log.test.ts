import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  createLogger,
  formatJournalLine,
  formatLogLine,
  isJournalStream,
} from '../../../helper/daemon/log.js';
import { PolicyFallbackDecider } from '../../../helper/daemon/fallback-decider.js';

describe('log', () => {
  it('one line: time, level, component, message, fields (quoted when needed, undefined left out)', () => {
    expect(
      formatLogLine(new Date(0), 'warn', 'interceptor', 'two\n lines', {
        a: 1,
        b: 'x y',
        c: null,
        d: undefined,
        e: true,
      }),
    ).toBe('1970-01-01T00:00:00.000Z warn interceptor: two lines a=1 b="x y" c=null e=true');
  });

  it('filters by level', () => {
    const lines: string[] = [];
    const log = createLogger({
      level: 'warn',
      write: (l) => lines.push(l),
      now: () => new Date(0),
    });
    log.debug('x', 'no');
    log.info('x', 'no');
    log.warn('x', 'yes');
    log.error('x', 'yes too');
    expect(lines).toEqual([
      '1970-01-01T00:00:00.000Z warn x: yes\n',
      '1970-01-01T00:00:00.000Z error x: yes too\n',
    ]);
  });
});

describe('log to journald', () => {
  it('prefixes each line with its syslog priority and leaves the time to journald', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', journal: true, write: (l) => lines.push(l) });
    log.debug('x', 'd');
    log.info('x', 'i', { a: 1 });
    log.warn('x', 'w');
    log.error('x', 'e');
    expect(lines).toEqual([
      '<7>debug x: d\n',
      '<6>info x: i a=1\n',
      '<4>warn x: w\n',
      '<3>error x: e\n',
    ]);
    expect(formatJournalLine('warn', 'c', 'two\nlines')).toBe('<4>warn c: two lines');
  });

  it('stderr is the journal only when its device and inode are JOURNAL_STREAM', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-log-'));
    const a = openSync(join(dir, 'a'), 'w');
    const b = openSync(join(dir, 'b'), 'w');
    try {
      const st = fstatSync(a, { bigint: true });
      const stream = `${st.dev}:${st.ino}`;
      expect(isJournalStream(a, stream)).toBe(true);
      // Inherited by a child whose stderr went elsewhere: not the journal.
      expect(isJournalStream(b, stream)).toBe(false);
      expect(isJournalStream(a, undefined)).toBe(false);
      expect(isJournalStream(a, 'garbage')).toBe(false);
      expect(isJournalStream(a, `${st.dev}:${st.ino}x`)).toBe(false);
    } finally {
      closeSync(a);
      closeSync(b);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a helper process whose stderr is the journal stream writes priorities journald reads', () => {
    // A real child node with the built logger and its real stderr, as systemd starts the
    // helper: stderr is a stream whose device:inode systemd put in JOURNAL_STREAM.
    const module = fileURLToPath(new URL('../../../dist/helper/daemon/log.js', import.meta.url));
    const source = `
      const { createLogger } = await import(${JSON.stringify(module)});
      const log = createLogger({ level: 'debug' });
      log.info('helper', 'serving');
      log.warn('history', 'damaged line', { offset: 12 });
      log.error('helper', 'failed');`;
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-log-'));
    const path = join(dir, 'stderr');
    const run = (journalStream: (fd: number) => string): string => {
      const fd = openSync(path, 'w');
      try {
        execFileSync(process.execPath, ['--input-type=module', '-e', source], {
          stdio: ['ignore', 'ignore', fd],
          env: { ...process.env, JOURNAL_STREAM: journalStream(fd) },
        });
      } finally {
        closeSync(fd);
      }
      return readFileSync(path, 'utf8');
    };
    try {
      const journal = run((fd) => {
        const st = fstatSync(fd, { bigint: true });
        return `${st.dev}:${st.ino}`;
      });
      expect(journal.split('\n').filter(Boolean)).toEqual([
        '<6>info helper: serving',
        '<4>warn history: damaged line offset=12',
        '<3>error helper: failed',
      ]);
      // JOURNAL_STREAM names some other stream: plain lines with their own time.
      const plain = run(() => '1:1');
      expect(plain).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z info helper: serving$/mu);
      expect(plain).not.toContain('<');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fallback decider', () => {
  it('answers the no-GUI policy at once, without a rule', async () => {
    for (const action of ['allow', 'deny'] as const) {
      await expect(
        new PolicyFallbackDecider(action).decide({} as never, { deadline: 0 }),
      ).resolves.toEqual({ action, reason: 'no-gui', ruleId: null });
    }
  });
});
