// HTTP errors in OpenAI's shape: status code plus {error: {message, type, param, code}}, and the
// mapping from the library's typed errors (what the request did wrong, or what the server cannot
// do right now) to those.
import type { ServerResponse } from 'node:http';
import { AbortError, DeviceLostError, InputError, MambaScanError, QueueFullError, UnsupportedError } from '../errors.ts';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'service_unavailable';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A bad value in the request body: 400 naming the parameter. */
export function badParam(param: string, message: string, code: string | null = 'invalid_value'): HttpError {
  return new HttpError(400, message, 'invalid_request_error', param, code);
}

/** The status and body for anything thrown while serving a request. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof QueueFullError) return new HttpError(429, e.message, 'rate_limit_error', null, 'queue_full');
  if (e instanceof DeviceLostError) {
    return new HttpError(503, `${e.message}; the server cannot run the model any more and must be restarted`, 'service_unavailable', null, 'device_lost');
  }
  if (e instanceof AbortError) return new HttpError(499, e.message, 'invalid_request_error', null, 'cancelled');
  if (e instanceof InputError) {
    const tooLong = /exceeds the context|KV cache buffer|at most \d+ tokens fit/.test(e.message);
    return new HttpError(400, e.message, 'invalid_request_error', null, tooLong ? 'context_length_exceeded' : 'invalid_value');
  }
  if (e instanceof UnsupportedError) return new HttpError(400, e.message, 'invalid_request_error', null, 'unsupported');
  if (e instanceof MambaScanError) return new HttpError(500, e.message, 'server_error', null, 'internal_error');
  return new HttpError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'server_error', null, 'internal_error');
}

/** Writes the error as JSON (unless the response has already started). */
export function sendError(res: ServerResponse, err: HttpError, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify(err.body());
  res.writeHead(err.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
