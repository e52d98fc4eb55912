// A child's output, line by line, as SpawnSpec.onLine takes it (`baton dev` prefixes each line).

/** Hands each complete line of `stream` to `onLine` (and what is left at its end). */
export function forwardLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  let partial = '';
  stream?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  stream?.on('close', () => {
    if (partial.length > 0) onLine(partial);
    partial = '';
  });
}
