// `mamba-scan-lite serve`: an OpenAI-compatible HTTP server for a loaded model, on Node's own http.
// One module per job: params.ts (request bodies), routes.ts (endpoints and response shapes),
// sse.ts (streaming), errors.ts (status codes and error bodies), auth.ts (API key), stop.ts (stop
// sequences), loop.ts (the request loop over the model's continuous batching).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MambaModel } from '../api.ts';
import { InputError } from '../errors.ts';
import { RequestLoop, type LoopOptions } from './loop.ts';
import { handleRequest, type RouteContext } from './routes.ts';

export { RequestLoop } from './loop.ts';
export type { GenerationResult, Timings } from './loop.ts';
export { HttpError } from './errors.ts';

export interface ServeOptions extends LoopOptions {
  /** Interface to bind (default 127.0.0.1: only this machine can connect). */
  host?: string;
  /** Port (default 8080; 0 picks a free one). */
  port?: number;
  /** Required as `Authorization: Bearer <key>` on every route but /health. */
  apiKey?: string;
  /** The id clients pass as `model` (default 'default'). */
  modelId?: string;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
}

export interface RunningServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly loop: RequestLoop;
  readonly http: Server;
  /** Stops accepting connections, lets in-flight requests finish, closes the rest. The model stays loaded. */
  close(): Promise<void>;
  /** Cancels in-flight requests, then closes. */
  abort(): Promise<void>;
}

export async function startServer(model: MambaModel, opts: ServeOptions = {}): Promise<RunningServer> {
  if (!model.tokenizer) throw new InputError('the server needs a model with a tokenizer (tokenizer.json): clients send text');
  const loop = await RequestLoop.create(model, opts);
  const ctx: RouteContext = {
    model, loop,
    modelId: opts.modelId ?? 'default',
    apiKey: opts.apiKey === '' ? undefined : opts.apiKey,
    maxBodyBytes: opts.maxBodyBytes ?? 4 * 2 ** 20,
    created: Math.floor(Date.now() / 1000),
  };
  const http = createServer({ keepAlive: true }, (req, res) => {
    handleRequest(req, res, ctx).catch((e) => {
      loop.log(`internal error while answering ${req.method} ${req.url}: ${(e as Error)?.stack ?? e}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  // Generation can take long on slow adapters: no server-side timeout while a response streams.
  http.requestTimeout = 0;
  http.headersTimeout = 60_000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 8080, host, () => { http.off('error', reject); resolve(); });
  });
  const port = (http.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const stopped = new Promise<void>((r) => http.close(() => r()));
      http.closeIdleConnections();
      await loop.drain();
      http.closeAllConnections();
      await stopped;
    })();
    return closing;
  };
  return {
    url: `http://${shown}:${port}`, host, port, loop, http,
    close,
    abort: () => { loop.abortAll(); return close(); },
  };
}
