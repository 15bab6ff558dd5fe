import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import type { Res } from '../helpers.js';

/** Helpers of the chat file tests: hand-built multipart bodies, raw downloads, test images. */

/** One part of a multipart body; `headers` are written exactly as given (after Content-Disposition). */
export interface Part {
  name: string;
  data: Buffer | string;
  filename?: string;
  type?: string;
  headers?: string[];
}

export const BOUNDARY = '----chatvault-test-7MA4YWxkTrZu0gW';

/** A multipart/form-data body built byte by byte, as odd clients write them. */
export function multipartBody(parts: Part[], boundary = BOUNDARY, close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"`;
    head += '\r\n';
    if (p.type !== undefined) head += `Content-Type: ${p.type}\r\n`;
    for (const h of p.headers ?? []) head += `${h}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`), Buffer.from(p.data), Buffer.from('\r\n'));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** POSTs a multipart body to `/{org}/{app}/chatfiles`. */
export async function upload(base: string, appPath: string, body: Buffer, headers: Record<string, string> = {}): Promise<Res> {
  const r = await fetch(`${base}${appPath}/chatfiles`, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, ...headers },
    body,
  });
  const text = await r.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: r.status, headers: r.headers, body: parsed, text };
}

/** A download: status, headers and the raw bytes. */
export interface Download {
  status: number;
  headers: Headers;
  bytes: Buffer;
  /** The body when it is JSON (an error). */
  body: unknown;
}

export async function download(url: string, headers: Record<string, string> = {}): Promise<Download> {
  const r = await fetch(url, { headers });
  const bytes = Buffer.from(await r.arrayBuffer());
  const json = r.headers.get('content-type')?.startsWith('application/json') ? (JSON.parse(bytes.toString('utf8')) as unknown) : undefined;
  return { status: r.status, headers: r.headers, bytes, body: json };
}

/** A noisy PNG (noise defeats compression, so it is well over 10 KB). */
export async function noisyPng(width: number, height: number): Promise<Buffer> {
  const raw = randomBytes(width * height * 3);
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** A small flat PNG (well under 10 KB). */
export function smallPng(): Promise<Buffer> {
  return sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer();
}

const EXCEPTIONS: Record<string, string | undefined> = {
  illegal_argument: 'java.lang.IllegalArgumentException',
  unauthorized: 'org.apache.shiro.authz.UnauthorizedException',
  service_resource_not_found: 'org.apache.usergrid.services.exceptions.ServiceResourceNotFoundException',
  'Request Entity Too Large': undefined,
};

/** An Easemob error answer: status, code, description (exact or a pattern) and its exception. */
export function assertApiError(got: { status: number; body: unknown }, status: number, code: string, description: string | RegExp): void {
  const b = got.body as Record<string, unknown>;
  assert.equal(got.status, status, JSON.stringify(b));
  assert.equal(b.error, code, JSON.stringify(b));
  if (typeof description === 'string') assert.equal(b.error_description, description);
  else assert.match(String(b.error_description), description);
  assert.equal(b.exception, EXCEPTIONS[code]);
  assert.equal(typeof b.timestamp, 'number');
  assert.equal(typeof b.duration, 'number');
}
