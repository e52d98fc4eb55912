import { controlRequest } from './control-client.ts';
import { clientSocket, type ClientValues } from './client-options.ts';

/** `baton rollback` / `baton promote`: ends the open canary window one way or the other; a rollback without one relaunches the previous release. */
export async function canaryCommand(action: 'rollback' | 'promote', values: ClientValues): Promise<number> {
  const reply = await controlRequest(await clientSocket(values), 'POST', `/${action}`);
  const body = reply.body as {
    ok: boolean;
    how?: 'unparked' | 'relaunched';
    generation?: number;
    previous?: number[];
    release?: number;
    replaced?: number | null;
    error?: { message: string };
  };
  if (values.json) process.stdout.write(`${JSON.stringify(body)}\n`);
  else if (!body.ok) process.stderr.write(`baton: ${body.error?.message ?? `${action} failed (HTTP ${reply.status})`}\n`);
  else if (action === 'rollback' && body.how === 'relaunched') {
    process.stdout.write(`rolled back: generation ${body.generation} runs the release of generation ${body.release} again, generation ${body.replaced} drains\n`);
  } else if (action === 'rollback') process.stdout.write(`rolled back: generation ${body.previous?.join(', ')} serves again, generation ${body.generation} drains\n`);
  else process.stdout.write(`promoted: generation ${body.generation}; generation ${body.previous?.join(', ')} drains\n`);
  return body.ok ? 0 : 1;
}
