// @vitest-environment happy-dom
import { flushPromises, type VueWrapper } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';
import { nextTick, type Component } from 'vue';
import { useRulesStore } from '../../../src-renderer/src/stores/rules.js';
import PromptsView from '../../../src-renderer/src/views/PromptsView.vue';
import RulesView from '../../../src-renderer/src/views/RulesView.vue';
import { prompt, request } from './fixtures.js';
import { rendererBed } from './bed.js';

const bed = rendererBed();

async function view(component: Component = PromptsView): Promise<VueWrapper> {
  const w = bed.mount(component);
  await nextTick();
  return w;
}

const LONG_ARG = 'x'.repeat(300);
const api1 = request({
  host: 'api.example.com',
  process: {
    ...request().process!,
    cmdline: ['curl', '--retry', '3', `https://api.example.com/${LONG_ARG}`],
    ancestors: [
      { pid: 40, exe: '/usr/bin/bash', comm: 'bash' },
      { pid: 1, exe: '/usr/sbin/sshd', comm: 'sshd' },
    ],
  },
});

describe('Prompt card', () => {
  it('shows pid, user, parent chain, host, IP, port and protocol in its dense row', async () => {
    bed.api.upsertPrompt(prompt('p1', Date.now(), { request: api1 }));
    const w = await view();
    const card = w.get('[role=listitem]');
    expect(card.get('h3').text()).toContain('curl');
    expect(card.get('h3').text()).toContain('api.example.com');
    expect(card.get('[data-testid=prompt-destination]').text()).toBe('203.0.113.5 · 443 / tcp');
    expect(card.get('.who').text()).toContain('pid 4242');
    expect(card.get('.who').text()).toContain('user alice');
    expect(card.get('[data-testid=prompt-via]').text()).toBe('bash ← sshd');
    expect(card.get('.via').text()).toBe('via bash ← sshd');
  });

  it('bounds the command line in the row and shows it whole under Options', async () => {
    bed.api.upsertPrompt(prompt('p1', Date.now(), { request: api1 }));
    const w = await view();
    const whole = `curl --retry 3 https://api.example.com/${LONG_ARG}`;
    const cmd = w.get('[data-testid=prompt-cmdline]');
    // one line, cut by CSS; the whole text is its tooltip
    expect(cmd.classes()).toContain('cmd');
    expect(cmd.attributes('title')).toBe(whole);
    const options = w.get('.options');
    expect(options.isVisible()).toBe(false);
    const more = w.findAll('button').find((b) => b.text() === 'Options')!;
    expect(more.attributes('aria-expanded')).toBe('false');
    await more.trigger('click');
    expect(more.attributes('aria-expanded')).toBe('true');
    expect(options.isVisible()).toBe(true);
    expect(w.get('[data-testid=prompt-cmdline-full]').text()).toBe(whole);
  });

  it('answers *.domain for any app of this user for 5 minutes; the preview is the saved rule', async () => {
    bed.api.upsertPrompt(prompt('p1', Date.now(), { request: api1 }));
    const w = await view();
    await w.get('select').setValue('m5');
    await w.get('input[type=radio][value=domain]').setValue(true);
    await w.get('input[type=radio][value=user]').setValue(true);
    expect(w.get('.preview').text()).toBe('Remembers: uid 1000 to *.example.com port 443 tcp');
    await w
      .findAll('button')
      .find((b) => b.text() === 'Allow')!
      .trigger('click');
    await flushPromises();
    expect(bed.api.answers).toEqual([
      {
        promptId: 'p1',
        action: 'allow',
        scope: 'domain',
        who: 'user',
        duration: { kind: 'minutes', minutes: 5 },
      },
    ]);
    expect(bed.api.rules[0]!.match).toEqual({
      uid: 1000,
      host: '*.example.com',
      port: { from: 443, to: 443 },
      protocol: 'tcp',
      direction: 'outbound',
    });
  });

  it('offers this IP, this port, any destination and any app; *.domain only where the host has a parent', async () => {
    bed.api.upsertPrompt(prompt('p1', Date.now()));
    const w = await view();
    expect(w.get('input[type=radio][value=domain]').attributes('disabled')).toBeDefined();
    expect(w.get('.options').text()).toContain('*.domain (nothing above example.com)');
    await w.get('select').setValue('forever');
    const preview = async (scope: string, who: string): Promise<string> => {
      await w.get(`input[type=radio][value=${scope}]`).setValue(true);
      await w.get(`input[type=radio][value=${who}]`).setValue(true);
      return w.get('.preview').text();
    };
    expect(await preview('address', 'app')).toBe(
      'Remembers: /usr/bin/curl uid 1000 to 203.0.113.5 port 443 tcp',
    );
    expect(await preview('port', 'anyone')).toBe('Remembers: to any host port 443 tcp');
    expect(await preview('any', 'anyone')).toBe('Remembers: to any host');
  });

  it.each([
    ['s30', { kind: 'seconds', seconds: 30 }],
    ['m5', { kind: 'minutes', minutes: 5 }],
    ['h1', { kind: 'minutes', minutes: 60 }],
    ['process', { kind: 'process', pid: 4242, startTime: 777 }],
    ['session', { kind: 'session' }],
    ['forever', { kind: 'forever' }],
    ['once', { kind: 'once' }],
  ])('duration %s answers %j', async (choice, duration) => {
    bed.api.upsertPrompt(prompt('p1', Date.now()));
    const w = await view();
    await w.get('select').setValue(choice);
    await w
      .findAll('button')
      .find((b) => b.text() === 'Deny')!
      .trigger('click');
    await flushPromises();
    expect(bed.api.answers).toEqual([
      { promptId: 'p1', action: 'deny', scope: 'destination', duration },
    ]);
  });

  it('a 30 s rule from a prompt shows its deadline in Rules, and editing it keeps 30 s', async () => {
    bed.api.upsertPrompt(prompt('p1', Date.now()));
    const w = await view();
    await w.get('select').setValue('s30');
    await w
      .findAll('button')
      .find((b) => b.text() === 'Allow')!
      .trigger('click');
    await flushPromises();
    const rule = bed.api.rules[0]!;
    expect(rule.expires! - rule.created).toBe(30_000);
    const rules = await view(RulesView);
    await useRulesStore().load();
    await flushPromises();
    const row = rules.get(`[data-rule=${rule.id}]`);
    expect(row.text()).toContain('until ');
    await row
      .findAll('button')
      .find((b) => b.text() === 'Edit')!
      .trigger('click');
    expect((rules.get('select[name=duration]').element as HTMLSelectElement).value).toBe('seconds');
    await rules.get('form.editor').trigger('submit');
    await flushPromises();
    expect(bed.api.rules[0]!.duration).toEqual({ kind: 'seconds', seconds: 30 });
  });

  it('Enter on a focused Deny button denies, though Allow is the chosen action', async () => {
    bed.api.upsertPrompt(prompt('p1', Date.now()));
    const w = await view();
    const deny = w.findAll('button').find((b) => b.text() === 'Deny')!;
    // what a browser does for Enter on a button: keydown (bubbling to the list), then click
    const event = new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true });
    deny.element.dispatchEvent(event);
    if (!event.defaultPrevented) await deny.trigger('click');
    await flushPromises();
    expect(bed.api.answers).toEqual([
      { promptId: 'p1', action: 'deny', scope: 'destination', duration: { kind: 'once' } },
    ]);
  });
});
