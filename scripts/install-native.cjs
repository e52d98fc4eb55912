'use strict';
// npm's install hook, in plain CommonJS so any Node that runs npm can run it. An installed package
// carries a prebuilt addon and exec shim for linux-x64 and linux-arm64 (glibc): when both work
// here, nothing is compiled and no compiler is needed. Otherwise, and always in a checkout (its C
// sources may have changed), scripts/build-native.sh builds them from source with node-gyp into
// build/Release/, which shared/native/native.ts prefers.
var cp = require('child_process');
var fs = require('fs');
var path = require('path');

var root = path.join(__dirname, '..');

function build(reason) {
  if (reason) process.stderr.write('baton: ' + reason + '; building the native addon from source\n');
  var r = cp.spawnSync('sh', [path.join(__dirname, 'build-native.sh')], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}

function firstLine(text) {
  return String(text || '').trim().split('\n')[0] || 'no output';
}

var env = process.env;
if (/^(1|true)$/.test(env.npm_config_build_from_source || '') || env.BATON_BUILD_FROM_SOURCE === '1') {
  build('asked to build from source');
}
// A checkout (it has the TypeScript sources, which the package does not ship) builds from them.
if (fs.existsSync(path.join(root, 'supervisor', 'cli', 'cli.ts'))) build();

if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
  build('no prebuild for ' + process.platform + '-' + process.arch);
}
var dir = path.join(root, 'prebuilds', 'linux-' + process.arch + '-glibc');
var addon = path.join(dir, 'baton.node');
var shim = path.join(dir, 'baton-exec');
if (!fs.existsSync(addon) || !fs.existsSync(shim)) build('no prebuild in ' + dir);

// Loaded in a child process: a prebuild linked against a newer glibc (or on musl) fails to load,
// and then a source build is what fits this machine.
var probe = cp.spawnSync(process.execPath, ['-e', 'require(process.argv[1])', addon], { encoding: 'utf8' });
if (probe.status !== 0) build('the prebuilt addon does not load here (' + firstLine(probe.stderr) + ')');
// Without arguments the shim prints its usage and exits 2: that proves it executes here.
var run = cp.spawnSync(shim, [], { encoding: 'utf8' });
if (run.status !== 2) build('the prebuilt exec shim does not run here (' + firstLine(run.error ? run.error.message : run.stderr) + ')');
