// The commands a deploy runs against a live instance, apart from the rest of the command line:
// scripts/build-dist.ts makes this module and what it imports one CommonJS file
// (dist/supervisor/bundle/client.cjs), which bin/baton loads for these commands instead of the
// ES module bundle. One file and no ES module loader: `baton reload` reaches the supervisor about
// 10 ms sooner (issue #19). cli.ts dispatches these commands here too, so there is one code path.
import { parse } from './args.ts';
import { canaryCommand } from './canary-commands.ts';
import { reload, status, stop, upgrade } from './client-commands.ts';
import { CLIENT_OPTIONS } from './client-options.ts';
import { commandUsage, wantsHelp } from './help.ts';
import { reportError } from './report-error.ts';
import { USAGE } from './usage.ts';

/** The commands this module runs; bin/baton keeps a copy (it must not load the bundle to ask), which test/supervisor/cli/client-cli.test.ts holds equal. */
export const CLIENT_COMMANDS = ['reload', 'status', 'stop', 'upgrade', 'rollback', 'promote'] as const;
export type ClientCommand = (typeof CLIENT_COMMANDS)[number];

/** True for a command `main` below runs. */
export function isClientCommand(command: string | undefined): command is ClientCommand {
  return (CLIENT_COMMANDS as readonly (string | undefined)[]).includes(command);
}

/** Runs one of CLIENT_COMMANDS (`argv[0]`); resolves to the exit code as cli.ts's main does. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!isClientCommand(command)) throw new TypeError(`not a client command: ${String(command)}`);
    if (wantsHelp(rest)) {
      process.stdout.write(commandUsage(USAGE, command) ?? USAGE);
      return 0;
    }
    const values = parse(rest, CLIENT_OPTIONS).values;
    switch (command) {
      case 'reload':
        return await reload(values);
      case 'status':
        return await status(values);
      case 'stop':
        return await stop(values);
      case 'upgrade':
        return await upgrade(values);
      case 'rollback':
      case 'promote':
        return await canaryCommand(command, values);
    }
  } catch (err) {
    return reportError(err);
  }
}
