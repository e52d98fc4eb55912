import { describe, expect, it } from 'vitest';
import type { Config } from '../../../supervisor/config/config.ts';
import { pinRelease, ReleaseHistory } from '../../../supervisor/core/release-history.ts';

const base = { name: 'shop', cwd: '/srv/shop', command: ['node', '--import', '/opt/baton/register.js', 'current/app.mjs', '--port', '8080'] } as unknown as Config;

/** /srv/shop/current → releases/v1; /srv/link → /srv/shop. */
function realpath(p: string): string | undefined {
  if (p === '/srv/link') return '/srv/shop';
  if (p.startsWith('/srv/link/')) return realpath(`/srv/shop/${p.slice('/srv/link/'.length)}`);
  if (p.startsWith('/srv/shop/current/')) return `/srv/shop/releases/v1/${p.slice('/srv/shop/current/'.length)}`;
  return p.startsWith('/srv/') || p.startsWith('/opt/') ? p : undefined;
}

describe('pinRelease', () => {
  it('resolves the links in the working directory and in path arguments, and leaves flags and plain words alone', () => {
    expect(pinRelease(base, realpath).command).toEqual(['node', '--import', '/opt/baton/register.js', '/srv/shop/releases/v1/app.mjs', '--port', '8080']);
    expect(pinRelease({ ...base, cwd: '/srv/link', command: ['node', 'app.js'] }, realpath)).toMatchObject({ cwd: '/srv/shop', command: ['node', 'app.js'] });
  });

  it('keeps a path that does not exist (yet) as written, and everything without a realpath', () => {
    expect(pinRelease({ ...base, command: ['node', 'missing/app.js'] }, realpath).command).toEqual(['node', 'missing/app.js']);
    expect(pinRelease(base, undefined)).toBe(base);
  });
});

describe('ReleaseHistory', () => {
  const c = (name: string): Config => ({ ...base, name }) as Config;

  it('walks back one release per rollback; restarts keep the release under their new generation', () => {
    const h = new ReleaseHistory();
    h.promoted('new', 1, c('v1'));
    expect(h.previous()).toBeUndefined();
    h.promoted('new', 2, c('v2'));
    h.promoted('same', 3, c('v2'));
    h.promoted('new', 4, c('v3'));
    expect(h.previous()).toMatchObject({ generation: 3, config: { name: 'v2' } });
    h.promoted('back', 5, c('v2'));
    expect(h.previous()).toMatchObject({ generation: 1, config: { name: 'v1' } });
    h.promoted('back', 6, c('v1'));
    expect(h.previous()).toBeUndefined();
  });

  it('keeps the last eight releases', () => {
    const h = new ReleaseHistory();
    for (let g = 1; g <= 20; g++) h.promoted('new', g, c(`v${g}`));
    for (let g = 21; h.previous(); g++) h.promoted('back', g, c('x'));
    // 8 kept: seven rollbacks reach the oldest kept one, v13.
    expect(h.previous()).toBeUndefined();
  });
});
