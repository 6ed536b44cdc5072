// API key check: with a key set, every route but /health needs `Authorization: Bearer <key>`
// (what the OpenAI clients send). Compared in constant time so the answer time says nothing
// about how much of a guess was right.
import type { IncomingMessage } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from './errors.ts';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** undefined when the request may proceed, else the 401 to send. */
export function checkApiKey(req: IncomingMessage, apiKey: string | undefined): HttpError | undefined {
  if (apiKey === undefined) return undefined;
  const header = req.headers.authorization;
  if (header === undefined || header === '') {
    return new HttpError(401, 'missing API key: send the header "Authorization: Bearer <key>" with the key the server was started with (--api-key)', 'authentication_error', null, 'missing_api_key');
  }
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  // Hashing first gives equal lengths, which timingSafeEqual needs.
  if (!m || !timingSafeEqual(digest(m[1]), digest(apiKey))) {
    return new HttpError(401, 'incorrect API key provided', 'authentication_error', null, 'invalid_api_key');
  }
  return undefined;
}
