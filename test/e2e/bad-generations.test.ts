import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

// Only the release that never becomes ready runs under a short ready-timeout: that deadline is
// what it tests. The others must fail for their own reason, however slowly a loaded machine starts Node.
const cases = [
  { fixture: 'exits-at-start.ts', readyTimeout: '30s', says: ['exited with code 3', 'fixture: cannot start'] },
  { fixture: 'never-ready.ts', readyTimeout: '1.5s', says: ['did not become ready within 1.5s', 'warming up forever'] },
  { fixture: 'throws-at-import.ts', readyTimeout: '30s', says: ['exited with code 1', 'broken release, thrown at import'] },
];

describe('a bad new generation', () => {
  for (const bad of cases) {
    it(`${bad.fixture}: the reload fails with the cause and the old generation keeps serving`, async () => {
      const good = httpConfig(fixture('http-app.ts'), { 'ready-timeout': '30s' });
      const baton = new BatonProcess(good);
      await baton.active(1);
      const port = await baton.port();
      const load = startLoad({ port }, { keepAlive: 2, newConnection: 2 });
      await load.progress(5);

      baton.writeConfig({ ...good, command: fixture(bad.fixture), 'ready-timeout': bad.readyTimeout });
      const reply = await baton.reload();
      expect(reply.status).toBe(409);
      expect(reply.body.ok).toBe(false);
      expect(reply.body.error?.code).toBe('ERR_RELOAD_FAILED');
      for (const text of bad.says) expect(reply.body.error?.message).toContain(text);
      expect(reply.body.error?.message).toContain('generation 1 keeps serving');

      const cli = await baton.cli('reload');
      expect(cli.exitCode).toBe(1);
      expect(cli.stderr).toContain(bad.says[0]);

      await load.progress(5);
      const status = await baton.status();
      expect(status.active).toBe(1);
      expect(status.generations.find((g) => g.generation === 1)?.state).toBe('active');

      baton.writeConfig(good);
      const fixed = await baton.reload();
      expect(fixed.body).toMatchObject({ ok: true, generation: 4 });
      await load.progress(5);
      const counts = await load.stop();
      expect(counts.refused + counts.reset + counts.other + counts.non200, describeCounts(counts)).toBe(0);
    });
  }
});
