// `serve`: the OpenAI-compatible server (src/server/) for the model named on the command line.
// Runs until SIGINT or SIGTERM: the first drains (no new requests; in-flight ones finish), a
// second cancels what is still running. Exits 0 after a drain.
import type { MambaModel } from '../index.node.ts';
import { startServer } from '../server/index.ts';
import type { ParsedArgs } from './args.ts';
import { type CliIo, writeAll } from './io.ts';

type ServeArgs = Extract<ParsedArgs, { command: 'serve' }>;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function runServe(model: MambaModel, args: ServeArgs, io: CliIo, signals: NodeJS.EventEmitter = process): Promise<void> {
  const log = (line: string) => { io.stderr.write(`${line}\n`); };
  const srv = await startServer(model, {
    host: args.host, port: args.port, apiKey: args.apiKey, modelId: args.modelName,
    maxBatch: args.maxBatch, maxQueue: args.maxQueue, maxTokensLimit: args.maxTokensLimit,
    prefixCacheBytes: Math.round(args.prefixCacheMiB * 2 ** 20), log, logRequests: !args.quiet,
  });
  await writeAll(io.stderr, `serving ${args.modelName} at ${srv.url}/v1 on ${model.backend} (${model.deviceName}), ` +
    `up to ${args.maxBatch} sequences at once${args.apiKey ? ', API key required' : ''}; Ctrl-C drains and exits\n`);
  if (!LOOPBACK.has(args.host) && !args.apiKey) {
    await writeAll(io.stderr, `warning: listening on ${args.host} without --api-key: anyone who can reach this port can use the model\n`);
  }
  await new Promise<void>((resolve) => {
    let stops = 0;
    const onSignal = (name: string) => {
      if (++stops === 1) {
        const { inFlight } = srv.loop.stats();
        log(`${name}: draining ${inFlight} in-flight request${inFlight === 1 ? '' : 's'} (again to cancel them)`);
        srv.close().then(() => { log('drained; exiting'); finish(); });
      } else {
        log(`${name}: cancelling in-flight requests`);
        srv.abort().then(finish);
      }
    };
    const onInt = () => onSignal('SIGINT');
    const onTerm = () => onSignal('SIGTERM');
    const finish = () => {
      signals.off('SIGINT', onInt);
      signals.off('SIGTERM', onTerm);
      resolve();
    };
    signals.on('SIGINT', onInt);
    signals.on('SIGTERM', onTerm);
  });
}
