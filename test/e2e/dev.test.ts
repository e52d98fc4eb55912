// `baton dev` end to end: a real dev runner on a temp copy of test/fixtures/dev-app (an unmodified
// TypeScript app run through tsx and the preload), real file edits, real load.
import { execa, type ResultPromise } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDevArgs } from '../../supervisor/dev/command.ts';
import { findLocation } from '../../supervisor/dev/output.ts';
import { compileFilters, globBase } from '../../supervisor/dev/watch.ts';
import { alive, BIN, NODE_FLAGS, ROOT, waitForGone } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';
import { freePort, get } from '../helpers/ports.ts';

const FIXTURE = path.join(ROOT, 'test/fixtures/dev-app');
/** `baton dev` with a gate before the runner's modules (see the file). */
const GATED = path.join(ROOT, 'test/fixtures/dev-gated.ts');
const live = new Set<DevProcess>();

interface DevOptions {
  /** Files written into the project before the start, by path. */
  files?: Record<string, string>;
  /** The app's entry. @default 'server.ts' */
  entry?: string;
  /** Runs test/fixtures/dev-gated.ts instead of bin/baton, its gate the file GATE in the project; a list boots generation 1 from those arguments (a wrong guess). */
  gated?: true | string[];
}

/** The file dev-gated.ts waits for; the apps that open the gate append their pid to it. */
const GATE = 'imported.pids';

/** A `baton dev server.ts` on its own copy of the fixture project, port, runtime and stats dirs. */
class DevProcess {
  readonly dir: string;
  readonly statsDir: string;
  readonly port: number;
  readonly proc: ResultPromise;
  readonly lines: string[] = [];
  /** Every app pid a response named, so cleanup can check none survives. */
  readonly appPids = new Set<number>();
  readonly exited: Promise<{ exitCode?: number; signal?: string }>;
  private readonly waiters: { re: RegExp; from: number; resolve: (m: RegExpMatchArray) => void }[] = [];

  constructor(port: number, args: string[] = [], options: DevOptions = {}) {
    this.port = port;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-dev-'));
    fs.cpSync(FIXTURE, this.dir, { recursive: true });
    for (const [file, text] of Object.entries(options.files ?? {})) fs.writeFileSync(path.join(this.dir, file), text);
    this.statsDir = fs.mkdtempSync('/dev/shm/baton-dev-');
    const devArgs = [...args, options.entry ?? 'server.ts'];
    const gate = path.join(this.dir, GATE);
    const guess = Array.isArray(options.gated) ? ['--guess', ...options.gated, options.entry ?? 'server.ts', '--'] : [];
    const launch = options.gated ? [GATED, gate, ...guess] : [BIN, 'dev'];
    this.proc = execa(process.execPath, [...NODE_FLAGS, ...launch, ...devArgs], {
      cwd: this.dir,
      env: { PORT: String(port), BATON_RUNTIME_DIR: path.join(this.dir, '.run'), BATON_STATS_DIR: this.statsDir, NO_COLOR: '1', GATE: gate },
      reject: false,
      buffer: false,
      stdin: 'pipe',
    });
    let partial = '';
    const take = (chunk: Buffer): void => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        this.lines.push(line);
        for (const w of [...this.waiters]) {
          const m = this.match(w.re, w.from);
          if (m) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(m);
          }
        }
      }
    };
    this.proc.stdout?.on('data', take);
    this.proc.stderr?.on('data', take);
    this.exited = this.proc.then((r) => ({ exitCode: r.exitCode, signal: r.signal }));
    live.add(this);
  }

  /** The first line from index `from` on that matches `re` (already printed or to come). */
  waitFor(re: RegExp, from = 0, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const seen = this.match(re, from);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${this.lines.slice(-40).join('\n')}`)), timeoutMs);
      this.waiters.push({ re, from, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  /** Both the first generation serving and the watcher ready. */
  async started(): Promise<void> {
    await this.waitFor(/✔ gen 1 ready in \d+ ms/);
    await this.waitFor(/watching \. \(/);
  }

  /** The pids the gated apps appended to the gate, in the order they were imported. */
  importedPids(): number[] {
    return fs.readFileSync(path.join(this.dir, GATE), 'utf8').split('\n').filter(Boolean).map(Number);
  }

  /** The index of the first line matching `re`, -1 if none. */
  indexOf(re: RegExp): number {
    return this.lines.findIndex((l) => re.test(l));
  }

  count(re: RegExp): number {
    return this.lines.filter((l) => re.test(l)).length;
  }

  write(file: string, text: string): void {
    fs.writeFileSync(path.join(this.dir, file), text);
  }

  /** A GET on the app; remembers the pid it names. */
  async get(urlPath = '/'): Promise<string> {
    const { status, body } = await get({ port: this.port }, urlPath);
    expect(status).toBe(200);
    const pid = /pid (\d+)/.exec(body)?.[1];
    if (pid) this.appPids.add(Number(pid));
    return body.trim();
  }

  key(line: string): void {
    this.proc.stdin?.write(`${line}\n`);
  }

  async cleanup(): Promise<void> {
    live.delete(this);
    this.proc.kill('SIGKILL');
    await this.exited;
    const left = await waitForGone([...this.appPids], 5_000);
    for (const pid of left) if (alive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.rmSync(this.statsDir, { recursive: true, force: true });
    expect(left, 'app processes outlived the dev runner').toEqual([]);
  }

  private match(re: RegExp, from: number): RegExpMatchArray | undefined {
    for (let i = from; i < this.lines.length; i++) {
      const m = re.exec(this.lines[i] as string);
      if (m) return m;
    }
    return undefined;
  }
}

afterEach(async () => {
  await Promise.all([...live].map((d) => d.cleanup()));
});

const message = (text: string): string => `export const message: string = '${text}';\n`;

/** An app that says at import who imported it and opens dev-gated.ts's gate, and tells whether it was booted ahead. */
const EARLY_APP = `import fs from 'node:fs';
import http from 'node:http';
const woken = (globalThis as Record<symbol, unknown>)[Symbol.for('baton.standby.woken')] !== undefined;
console.log(\`imported by pid \${process.pid} as generation \${process.env.BATON_GENERATION}\`);
fs.appendFileSync(process.env.GATE as string, \`\${process.pid}\\n\`);
http
  .createServer((req, res) => res.end(req.url === '/started' ? \`\${woken ? 'from a standby' : 'cold'}, pid \${process.pid}\\n\` : \`early from pid \${process.pid}\\n\`))
  .listen(Number(process.env.PORT), () => console.log(\`listening on \${process.env.PORT}\`));
`;

describe('baton dev', () => {
  it('an edit under keep-alive, new-connection and slow-request load: 0 refused, 0 failed; the new code answers', async () => {
    const dev = new DevProcess(await freePort());
    await dev.started();
    expect(await dev.get()).toMatch(/^v1 from dev pid \d+$/);
    const load = startLoad({ port: dev.port }, { keepAlive: 3, newConnection: 3 });
    // Requests that take 300 ms: some are in flight on the old generation at every reload.
    const slow = startLoad({ port: dev.port }, { keepAlive: 1, newConnection: 1, path: '/slow' });
    await Promise.all([load.progress(5), slow.progress(1)]);
    for (const [i, version] of ['v2', 'v3', 'v4'].entries()) {
      const from = dev.lines.length;
      dev.write('message.ts', message(version));
      await dev.waitFor(new RegExp(`✔ reload ${i + 1} → gen ${i + 2} ready .* message\\.ts changed`), from);
      await Promise.all([load.progress(3), slow.progress(2)]);
      expect(await dev.get()).toMatch(new RegExp(`^${version} from dev pid`));
    }
    const counts = await load.stop();
    const slowCounts = await slow.stop();
    console.log(`baton dev under load: 3 edits, ${describeCounts(counts)}; /slow: ${describeCounts(slowCounts)}`);
    for (const c of [counts, slowCounts]) {
      expect(c.refused, describeCounts(c)).toBe(0);
      expect(c.reset, describeCounts(c)).toBe(0);
      expect(c.other, describeCounts(c)).toBe(0);
      expect(c.non200, describeCounts(c)).toBe(0);
      expect(c.ok).toBe(c.requests);
    }
    // The traffic moved to each new version in turn.
    const versions = new Set(counts.bodies.map((b) => b.split(' ')[0]));
    expect([...versions].sort()).toEqual(['v1', 'v2', 'v3', 'v4']);
    for (const b of [...counts.bodies, ...slowCounts.bodies]) dev.appPids.add(Number(/pid (\d+)/.exec(b)?.[1]));
  });

  it('a broken save leaves the last good generation serving and names file and line; the fix is served', async () => {
    const dev = new DevProcess(await freePort());
    await dev.started();
    const first = await dev.get();
    expect(first).toMatch(/^v1 /);

    let from = dev.lines.length;
    dev.write('message.ts', "export const message: string = 'v2' +;\n");
    await dev.waitFor(/✖ reload 1 failed · message\.ts changed · gen 2 exited with code 1 before it was ready · gen 1 keeps serving/, from);
    await dev.waitFor(/^baton +│ +message\.ts:1:\d+ +ERROR: Unexpected ";"/, from);
    expect(await dev.get()).toBe(first);

    from = dev.lines.length;
    dev.write('message.ts', "export const message: string = 'v3';\nthrow new Error('broken at start-up');\n");
    await dev.waitFor(/✖ reload 2 failed · .* gen 1 keeps serving/, from);
    await dev.waitFor(/^baton +│ +message\.ts:2 +Error: broken at start-up/, from);
    expect(await dev.get()).toBe(first);

    from = dev.lines.length;
    dev.write('message.ts', message('v4'));
    await dev.waitFor(/✔ reload 3 → gen 4 ready/, from);
    expect(await dev.get()).toMatch(/^v4 from dev pid \d+$/);
  });

  it('ten saves within 200 ms make one reload; r reloads; a save during a reload is not lost', async () => {
    // The premise is a burst: every gap between two saves well under the debounce (under 100 ms). A
    // stalled machine can stretch a 15 ms sleep past it (a write once took 2.9 s while a CI run
    // installed packages beside it): then the burst is made again on a fresh runner, at most
    // three times, instead of judging the runner by the test's own sleeps.
    let dev!: DevProcess;
    let widest = Number.POSITIVE_INFINITY;
    for (let attempt = 1; attempt <= 3 && widest >= 100; attempt++) {
      if (attempt > 1) console.log(`burst ${attempt - 1}: widest gap ${Math.round(widest)} ms, past the debounce: again on a fresh runner`);
      // A debounce of 300 ms, three times the widest gap allowed below: the runner, starved on a
      // loaded machine, can see the saves' events later and further apart than they were written
      // (a CI trial split a burst of gaps under 100 ms at the default 100 ms debounce).
      dev = new DevProcess(await freePort(), ['--debounce', '300ms']);
      await dev.started();
      let last = performance.now();
      widest = 0;
      for (let i = 0; i < 10; i++) {
        dev.write('message.ts', message(`burst${i}`));
        const now = performance.now();
        widest = Math.max(widest, now - last);
        last = now;
        if (i < 9) await new Promise((r) => setTimeout(r, 15));
      }
    }
    expect(widest, 'the saves were not a burst in three tries: this machine stalled past the debounce between two of them').toBeLessThan(100);
    await dev.waitFor(/✔ reload 1 → gen 2 ready .* message\.ts changed/);
    expect(await dev.get()).toMatch(/^burst9 from dev/);
    // A reload asked for now is numbered 2 only if the burst made exactly one.
    dev.key('r');
    await dev.waitFor(/✔ reload 2 → gen 3 ready .* r pressed/);
    console.log(`10 saves, widest gap ${Math.round(widest)} ms: ${dev.count(/↻ reload \d+ · message/)} reload`);
    expect(dev.count(/↻ reload \d+ · message\.ts changed/)).toBe(1);
    expect(dev.count(/✔ reload \d+ →/)).toBe(2);

    // A save while reload 3 is starting is kept and runs as reload 4.
    const from = dev.lines.length;
    dev.write('message.ts', message('during-1'));
    await dev.waitFor(/↻ reload 3 · message\.ts changed/, from);
    dev.write('message.ts', message('during-2'));
    await dev.waitFor(/✔ reload 4 → gen 5 ready/, from);
    expect(await dev.get()).toMatch(/^during-2 from dev/);
  });

  it('generation 1 is the process booted while the runner loaded (a standby), unless --listen binds sockets it would need from its start', async () => {
    const dev = new DevProcess(await freePort());
    await dev.started();
    expect(await dev.get('/started')).toBe('from a standby');
    await dev.get();
    const listening = new DevProcess(await freePort(), ['--listen', `127.0.0.1:${await freePort()}`]);
    await listening.started();
    expect(await listening.get('/started')).toBe('cold');
    await listening.get();
  });

  it('generation 1 is woken as soon as it is booted: its import, its output and its listen happen before the runner’s supervisor exists, and it serves', async () => {
    // The runner's modules load only once the app has been imported (dev-gated.ts).
    const dev = new DevProcess(await freePort(), [], { gated: true, entry: 'early.ts', files: { 'early.ts': EARLY_APP } });
    await dev.started();
    const [imported, ...more] = dev.importedPids();
    expect(more).toEqual([]); // imported once: the process woken early is the one taken
    dev.appPids.add(imported!);
    expect(await dev.get('/started')).toBe(`from a standby, pid ${imported}`);
    expect(await dev.get()).toBe(`early from pid ${imported}`);
    // Its line of the import was held while no supervisor was there to take it, and came out as gen 1's,
    // before what it printed once its listen was answered (the same pipe; its IPC messages are another
    // channel, so the runner's own lines are in no fixed order with these).
    const importLine = dev.indexOf(new RegExp(`^gen 1 +│ imported by pid ${imported} as generation 1$`));
    expect(importLine).toBeGreaterThanOrEqual(0);
    expect(dev.indexOf(new RegExp(`^gen 1 +│ listening on ${dev.port}$`))).toBeGreaterThan(importLine);
  });

  it('a guess that misses what generation 1 is handed: the process woken with it is killed, nothing of it is left, and generation 1 starts cold', async () => {
    // Booted and woken for --drain-timeout 4s (BATON_PACED_CLOSE_MS 2000); the runner spawns with the default 10 s (5000).
    const dev = new DevProcess(await freePort(), [], { gated: ['--drain-timeout', '4s'], entry: 'early.ts', files: { 'early.ts': EARLY_APP } });
    await dev.started();
    const [guessed, fresh, ...more] = dev.importedPids();
    expect(more).toEqual([]);
    dev.appPids.add(guessed!);
    expect(await dev.get('/started')).toBe(`cold, pid ${fresh}`);
    expect(await waitForGone([guessed!], 10_000), 'the process woken with the wrong guess outlived its kill').toEqual([]);
    // What it printed was no generation's: only the cold one's import is in the output.
    expect(dev.count(/│ imported by pid/)).toBe(1);
    expect(dev.indexOf(new RegExp(`^gen 1 +│ imported by pid ${fresh} as generation 1$`))).toBeGreaterThanOrEqual(0);
  });

  it('q drains every generation and exits 0', async () => {
    const dev = new DevProcess(await freePort());
    await dev.started();
    await dev.get();
    dev.key('q');
    await dev.waitFor(/q pressed: stopping/);
    await dev.waitFor(/│ stopped$/);
    expect(await dev.exited).toMatchObject({ exitCode: 0 });
    expect(await waitForGone([...dev.appPids], 5_000)).toEqual([]);
  });
});

describe('baton dev helpers', () => {
  it('finds the project file and line of a syntax error and of a throw, not node_modules or internals', () => {
    const syntax = ['node:internal/modules/run_main:107', 'Error: Transform failed with 1 error:', '/p/src/a.ts:3:9: ERROR: Unexpected ";"', '    at x (/p/node_modules/esbuild/lib/main.js:1:1)'];
    expect(findLocation(syntax, '/p')).toEqual({ file: 'src/a.ts', line: 3, column: 9, message: 'ERROR: Unexpected ";"' });
    const thrown = ['/p/b.ts:2', "throw new Error('x');", '      ^', '', 'Error: x', '    at <anonymous> (/p/b.ts:2:7)'];
    expect(findLocation(thrown, '/p')).toEqual({ file: 'b.ts', line: 2, message: 'Error: x' });
    expect(findLocation(['Error: nothing local', '    at f (node:internal/x:1:1)'], '/p')).toBeUndefined();
  });

  it('ignores node_modules, .git and build output; filters by extension or by --watch globs', () => {
    const f = compileFilters({ root: '/p', watch: [], ignore: ['*.log', 'tmp/'], extensions: ['ts', 'json'] });
    expect(f.roots).toEqual(['/p']);
    for (const p of ['/p/node_modules', '/p/a/node_modules/x/i.js', '/p/.git/HEAD', '/p/dist/a.js', '/p/build', '/p/coverage/x', '/p/x.log', '/p/tmp/a.ts', '/p/.a.ts.swp']) {
      expect(f.ignored(p), p).toBe(true);
    }
    for (const p of ['/p/src/a.ts', '/p/distribution/a.ts']) expect(f.ignored(p), p).toBe(false);
    expect(compileFilters({ root: '/build/app', watch: [], ignore: [], extensions: ['ts'] }).ignored('/build/app/a.ts')).toBe(false);
    expect(f.wanted('/p/src/a.ts')).toBe(true);
    expect(f.wanted('/p/README.md')).toBe(false);
    const g = compileFilters({ root: '/p', watch: ['src/**/*.ts', '.env', '../shared/**'], ignore: [], extensions: [] });
    expect(g.roots).toEqual(['/p/.env', '/p/src', '/shared']);
    expect(g.wanted('/p/src/x/y.ts')).toBe(true);
    expect(g.wanted('/p/.env')).toBe(true);
    expect(g.wanted('/p/other.ts')).toBe(false);
    expect(globBase('/a/b/**/*.ts')).toBe('/a/b');
  });

  it('splits baton options from the app and its own arguments; TypeScript goes through tsx and the preload', () => {
    const entry = path.join(FIXTURE, 'server.ts');
    const parsed = parseDevArgs(['--debounce', '50', '--watch=src/**', entry, '--port', '3000']);
    expect(parsed.values).toMatchObject({ debounce: '50', watch: ['src/**'] });
    expect(parsed.command.slice(-3)).toEqual([entry, '--port', '3000']);
    expect(parsed.command.join(' ')).toMatch(/--import \S*tsx\S* --import \S*child\/register\.ts/);
    expect(parseDevArgs(['--', 'node', 'app.js']).command).toEqual(['node', '--import', expect.stringMatching(/child\/register\.ts$/), 'app.js']);
    expect(parseDevArgs(['--', 'python3', 'app.py']).command).toEqual(['python3', 'app.py']);
    expect(() => parseDevArgs([])).toThrow(/which app/);
  });
});
