/**
 * Keys of `baton dev`: on a terminal, single keys in raw mode (`r`, `q`, and Ctrl-C, which raw mode
 * delivers as a byte instead of SIGINT); otherwise one command per line (`r` or nodemon's `rs`, `q`).
 */
export type Key = 'r' | 'q' | 'ctrl-c';

export interface Keys {
  /** Leaves raw mode and stops reading. */
  release(): void;
}

export function listenForKeys(onKey: (key: Key) => void, stdin: NodeJS.ReadStream = process.stdin): Keys {
  if (stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.on('data', (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === 'r' || ch === 'R') onKey('r');
        else if (ch === 'q' || ch === 'Q') onKey('q');
        else if (ch === '\u0003') onKey('ctrl-c');
      }
    });
  } else {
    let partial = '';
    stdin.on('data', (buf: Buffer) => {
      const lines = (partial + buf.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines.map((s) => s.trim())) {
        if (line === 'r' || line === 'rs') onKey('r');
        else if (line === 'q') onKey('q');
      }
    });
  }
  // A closed or broken stdin (no terminal, CI) just means no keys.
  stdin.on('error', () => {});
  stdin.resume();
  return {
    release() {
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    },
  };
}
