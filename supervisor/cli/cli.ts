// The command line's dispatch. Each command's module is imported only when that command runs:
// `baton reload` on a deploy's path must not load the config schema, the logger or the supervisor
// (about 300 modules, a few hundred ms of a loaded machine), only the control client.
import { BatonError } from '../../shared/errors.ts';
import { commandUsage, nearestCommand, wantsHelp } from './help.ts';
import { parse } from './args.ts';
import { CLIENT_OPTIONS } from './client-options.ts';
import { reportError } from './report-error.ts';
import { COMMANDS, USAGE } from './usage.ts';

/** Runs the CLI; resolves to the exit code (0 ok, 1 failed, 2 bad usage or configuration). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    // `baton dev --help` has options of its own, which dev prints.
    const help = command !== 'dev' && wantsHelp(rest) ? commandUsage(USAGE, command ?? '') : undefined;
    if (help !== undefined) {
      process.stdout.write(help);
      return 0;
    }
    switch (command) {
      case 'run':
        return await (await import('./run-command.ts')).run(rest);
      case 'check':
        return await (await import('./check.ts')).check(rest);
      case 'dev':
        // Generation 1's process boots while the runner's modules load; the watcher and the
        // pretty-printer stay out of `baton run`.
        await (await import('../dev/early-start.ts')).bootFirstGeneration(rest);
        return await (await import('../dev/runner.ts')).dev(rest);
      case 'reload':
      case 'rollback':
      case 'promote':
      case 'status':
      case 'stop':
      case 'upgrade':
        // client-cli.ts's list: bin/baton of an installed package runs those from its own bundle.
        return await (await import('./client-cli.ts')).main(argv);
      case 'events':
        return await (await import('./events-command.ts')).events(rest);
      case 'stats':
        return (await import('./stats-command.ts')).stats(parse(rest, CLIENT_OPTIONS).values);
      case 'memory':
        return await (await import('./memory-commands.ts')).memory(rest);
      case 'top':
        return await (await import('./top.ts')).top(rest);
      case 'heap-snapshot':
      case 'heap-profile':
      case 'cpu-profile':
        return await (await import('./memory-commands.ts')).profile(command, rest);
      case 'version':
      case '--version':
        return (await import('./version-command.ts')).version(parse(rest, { 'hot-restart': { type: 'boolean' } }).values['hot-restart'] === true);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default: {
        const near = nearestCommand(command, COMMANDS);
        throw new BatonError('ERR_USAGE', `unknown command '${command}'${near ? `; did you mean 'baton ${near}'?` : ''}`);
      }
    }
  } catch (err) {
    return reportError(err);
  }
}
