/** The command line's usage text, which `--help` of each command is cut from (help.ts). */
export const USAGE = `Usage:
  baton run --config FILE [options]        run the supervisor in the foreground
  baton run [options] -- CMD [ARGS...]     ... for a command given on the command line
  baton dev [options] APP [ARGS...]        develop: run APP, hot-restart it on every save (baton dev --help)
  baton check --config FILE                validate the file, command, listeners and the child's own config; exit 0 or 2
  baton reload [--name N] [--cold]         start a new generation; waits for the outcome
                                           (--cold: stats restart in a new segment, for a layout change;
                                           --wait-canary: also for its canary window, 1 if rolled back)
  baton rollback | promote [--name N]      end the open canary window: the parked generation serves
                                           again, or the new one is promoted now
  baton status [--name N] [--json]         list generations
  baton events [--name N] [--no-follow] [--after N]
                                           the supervisor's events as NDJSON, those kept and then each new
                                           one, across upgrades (--no-follow: the kept ones only)
  baton stop [--name N]                    drain every generation and exit
  baton upgrade [--name N]                 replace the supervisor itself with the Baton installed now,
                                           keeping sockets, stats and service (also: SIGUSR2)
  baton stats [--name N] [--json|--prometheus] [--filter RE]
                                           read the shared stats (works when the supervisor is wedged)
  baton memory [GEN] [--json] [--segment]  per generation: now/min/max and growth slope of RSS, PSS, heap, malloc
                                           (--json: the full series; --segment: the current figures from the
                                           shared segment and /proc, without the supervisor)
  baton heap-snapshot [GEN] [--retire|--in-place] [--compare]
                                           write a .heapsnapshot of GEN (default: the active one); prints its path.
                                           The active one is retired by default: reloaded first, snapshotted once
                                           drained, so no client waits; --in-place pauses it instead; --compare
                                           also snapshots its replacement (second path)
  baton heap-profile [GEN] [--seconds N]   record a sampling .heapprofile for N seconds [10], collected objects
                                           included; prints its path
  baton cpu-profile [GEN] [--seconds N]    record a .cpuprofile for N seconds [10]; prints its path
  baton top [--every MS]                   live view of generations: CPU, RSS, heap, event-loop delay, req/s; q quits
  baton version [--hot-restart]            version; or the stats hot-restart compatibility string

Options of run (each is also a config key):
  -c, --config FILE          YAML config, re-read on every reload
  --name NAME                instance name (control socket) [baton]
  --listen ADDR              listener to hold: HOST:PORT, [V6]:PORT, PORT (loopback), unix:/path; repeatable
  --ready-timeout DUR        how long a new generation may take to become ready [10s]
  --drain-timeout DUR        how long an old generation may drain before it is asked to exit [30s]
  --shutdown-timeout DUR     how long after that before it is killed [5s]
  --accept-grace DUR         how long the active generation may stop accepting before it is replaced [5s]
  --readiness MODE           auto | sdk | accepting | notify (READY=1) | tcp (accepts a connect) | http:/PATH (accepting + GET 2xx) [auto]
  --drain-signal SIG         sent to drain a program that does not use the SDK [SIGTERM]
  --control-socket PATH      control socket [$XDG_RUNTIME_DIR/baton/NAME.sock or /tmp/baton-UID/NAME.sock]
  --control-group GROUP      also admit this group (name or gid) to the control socket [owner and root only]
  --runtime-listeners P      loopback | any | none: binds a generation may ask for [loopback]
  --log-level LEVEL          trace | debug | info | warn | error [info]
  --workers N|auto           worker processes per generation; auto: the CPUs this process may use [1]
  --balance B                reuseport (a socket per worker) | shared (one socket) [reuseport]
  --rollout R                all-at-once | rolling (slot by slot, see --max-surge) [all-at-once]
  --max-surge N              rolling: processes beyond --workers alive at once [1]
  --cpu-scheduling P         the workers' scheduling policy: other | batch | idle [inherited]
  --standby                  boot each worker's next Node process ahead: a reload only imports the app [off]
`;

/** Every command, for the nearest one to a mistyped name. */
export const COMMANDS = ['run', 'check', 'dev', 'reload', 'rollback', 'promote', 'status', 'events', 'stop', 'upgrade', 'stats', 'memory', 'heap-snapshot', 'heap-profile', 'cpu-profile', 'top', 'version', 'help'] as const;
