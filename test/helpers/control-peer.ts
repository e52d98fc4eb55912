import { execa } from 'execa';
import http from 'node:http';
import net from 'node:net';

export const isRoot = process.getuid?.() === 0;
export const SKIP_NOT_ROOT = 'second-uid tests need root to switch to uid 65534 (nobody)';

export interface PeerIdentity {
  uid: number;
  gid: number;
  /** Supplementary groups; none by default. */
  groups?: number[];
}

export interface PeerReply {
  /** The client process: what the supervisor's refusal log names. */
  pid: number;
  status?: number;
  body?: string;
  /** The connect error's code (EACCES when the file modes keep the peer out). */
  error?: string;
}

/**
 * One control request from a client running as another identity. The client starts as root and drops
 * to `who` itself (setgroups, setgid, setuid), since spawn's uid/gid options cannot give
 * supplementary groups.
 */
export async function requestAs(who: PeerIdentity, socketPath: string, method = 'GET', path = '/status'): Promise<PeerReply> {
  const script = `
    process.setgroups(${JSON.stringify(who.groups ?? [])});
    process.setgid(${who.gid});
    process.setuid(${who.uid});
    const done = (r) => console.log(JSON.stringify({ pid: process.pid, ...r }));
    const req = require('node:http').request({ socketPath: ${JSON.stringify(socketPath)}, method: ${JSON.stringify(method)}, path: ${JSON.stringify(path)} }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => done({ status: res.statusCode, body }));
    });
    req.on('error', (err) => done({ error: err.code }));
    req.end();`;
  const result = await execa(process.execPath, ['-e', script], { reject: false, cwd: '/' });
  if (result.exitCode !== 0) throw new Error(`control client as uid ${who.uid} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as PeerReply;
}

export interface ControlCall {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { ok?: boolean; error?: { code: string; message: string }; [key: string]: unknown };
}

/** A control request with a body and headers of the test's choosing. */
export function controlCall(socketPath: string, method: string, path: string, body?: string, contentType = 'application/json'): Promise<ControlCall> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(body) };
    const req = http.request({ socketPath, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as ControlCall['body'] }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Writes `request` as is and collects everything the server sends until it closes the connection
 * (a reset after the reply is expected: the server does not read what it refused).
 */
export function rawExchange(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = net.connect(socketPath, () => socket.write(request));
    socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
    socket.on('error', () => {});
    socket.on('close', () => resolve(text));
  });
}
