import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../supervisor/config/config.ts';
import { admits, resolveGroup, supplementaryGroups } from '../../../supervisor/control/access.ts';
import { ensurePrivateDir } from '../../../supervisor/os/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-access-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const groupFile = path.join(tmp, 'group');
fs.writeFileSync(groupFile, 'root:x:0:\nops:x:1042:alice,bob\n# a comment line\nnogroup:x:65534:\n');

describe('resolveGroup', () => {
  it('reads a name from the group file and takes a number as a gid', () => {
    expect(resolveGroup('ops', groupFile)).toBe(1042);
    expect(resolveGroup('nogroup', groupFile)).toBe(65534);
    expect(resolveGroup('4321', groupFile)).toBe(4321);
    expect(resolveGroup(7, groupFile)).toBe(7);
  });

  it('names an unknown group', () => {
    expect(() => resolveGroup('opz', groupFile)).toThrow(`no group named 'opz' in ${groupFile}; give an existing group name or a numeric gid`);
  });

  it('is checked by the configuration, which names the key', () => {
    const validate = (group: unknown) => validateConfig({ command: 'node app.js', 'control-group': group }, 'baton.yaml', '/srv');
    expect(validate(0).controlGroup).toBe(0);
    expect(validate('0').controlGroup).toBe(0);
    expect(validate('root').controlGroup).toBe(0);
    expect(validate(undefined).controlGroup).toBeUndefined();
    expect(() => validate('no-such-group-here')).toThrow(
      "invalid configuration in baton.yaml:\n  control-group: no group named 'no-such-group-here' in /etc/group; give an existing group name or a numeric gid",
    );
    expect(() => validate(-1)).toThrow(/control-group: /);
  });
});

describe('admits', () => {
  const owner = 1000;
  const groups = (pid: number) => (pid === 77 ? [5, 1042] : []);

  it('admits the owner and root, and nobody else without a group', () => {
    expect(admits({ pid: 1, uid: 1000, gid: 1000 }, owner, undefined, groups)).toBe(true);
    expect(admits({ pid: 1, uid: 0, gid: 0 }, owner, undefined, groups)).toBe(true);
    expect(admits({ pid: 77, uid: 1001, gid: 1042 }, owner, undefined, groups)).toBe(false);
  });

  it('with a group, admits a peer whose primary or supplementary group it is', () => {
    expect(admits({ pid: 1, uid: 1001, gid: 1042 }, owner, 1042, groups)).toBe(true);
    expect(admits({ pid: 77, uid: 1001, gid: 1001 }, owner, 1042, groups)).toBe(true);
    expect(admits({ pid: 78, uid: 1001, gid: 1001 }, owner, 1042, groups)).toBe(false);
    expect(admits({ pid: -1, uid: -1, gid: -1 }, owner, 1042, groups)).toBe(false);
  });

  it('reads supplementary groups from /proc', () => {
    // getgroups() adds the effective gid to the supplementary list; /proc lists only the latter.
    expect(process.getgroups!()).toEqual(expect.arrayContaining(supplementaryGroups(process.pid)));
    expect(supplementaryGroups(2 ** 22 + 1)).toEqual([]);
  });
});

describe('ensurePrivateDir', () => {
  // Our own gid: a group every owner may give its files to, root or not.
  const gid = process.getgid!();
  const fresh = (name: string) => path.join(tmp, name);
  const mode = (dir: string) => fs.statSync(dir).mode & 0o777;

  it('creates a 0700 directory, and opens it to the control group 0750', () => {
    ensurePrivateDir(fresh('private'));
    expect(mode(fresh('private'))).toBe(0o700);
    ensurePrivateDir(fresh('shared'), gid);
    expect(mode(fresh('shared'))).toBe(0o750);
    expect(fs.statSync(fresh('shared')).gid).toBe(gid);
    ensurePrivateDir(fresh('shared'), gid);
    expect(mode(fresh('shared'))).toBe(0o750);
  });

  it('refuses a directory open to the world, to group writes, or to another group', () => {
    for (const [name, bits] of [['world', 0o755], ['group-write', 0o770], ['other-x', 0o701]] as const) {
      fs.mkdirSync(fresh(name), { mode: 0o700 });
      fs.chmodSync(fresh(name), bits);
      expect(() => ensurePrivateDir(fresh(name), gid)).toThrow(`is open to others (mode ${bits.toString(8)})`);
      expect(mode(fresh(name))).toBe(bits);
    }
    fs.mkdirSync(fresh('group-only'), { mode: 0o700 });
    fs.chmodSync(fresh('group-only'), 0o750);
    expect(() => ensurePrivateDir(fresh('group-only'))).toThrow('is open to others (mode 750)');
    expect(() => ensurePrivateDir(fresh('group-only'), gid + 1)).toThrow(`expected 0700, or 0750 owned by group ${gid + 1} (it is group ${gid})`);
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a directory of another owner, group or not', () => {
    fs.mkdirSync(fresh('foreign'), { mode: 0o700 });
    fs.chownSync(fresh('foreign'), 65534, gid);
    expect(() => ensurePrivateDir(fresh('foreign'), gid)).toThrow('belongs to uid 65534, not 0');
  });
});
