import { describe, expect, it } from 'vitest';
import { drainLaunch } from '../../../supervisor/canary/drain-launch.ts';
import type { Config } from '../../../supervisor/config/config.ts';

const base = { drainTimeout: 30_000, preload: 'auto', pacedClose: 0.5 } as Config;

describe('drainLaunch', () => {
  it('adds the preload to a node command and runs a bare script with the Node that runs Baton', () => {
    const node = drainLaunch(base, 'node', ['app.js']);
    expect(node).toMatchObject({ command: 'node', preload: true });
    expect(node.args[0]).toBe('--import');
    expect(node.args[1]).toMatch(/child\/register\.ts$/);
    expect(node.args.slice(2)).toEqual(['app.js']);
    const script = drainLaunch(base, 'server.mjs', ['--port', '1']);
    expect(script.command).toBe(process.execPath);
    expect(script.args.slice(2)).toEqual(['server.mjs', '--port', '1']);
  });

  it('leaves other commands, preload: off, and a command that already has it alone; the paced-close span is the share of drain-timeout', () => {
    expect(drainLaunch(base, 'gunicorn', ['app:app'])).toMatchObject({ command: 'gunicorn', args: ['app:app'], preload: false });
    expect(drainLaunch({ ...base, preload: 'off' }, 'node', ['app.js'])).toMatchObject({ command: 'node', args: ['app.js'], preload: false });
    const once = drainLaunch(base, 'node', ['app.js']);
    expect(drainLaunch(base, once.command, once.args).args).toEqual(once.args);
    expect(drainLaunch(base, 'node', []).env).toEqual({ BATON_PACED_CLOSE_MS: '15000', BATON_PRELOAD: 'auto' });
    expect(drainLaunch(base, 'gunicorn', []).env).toEqual({ BATON_PACED_CLOSE_MS: '15000' });
  });
});
