// mamba-scan-lite command line: generate | chat | info. Bundled to dist/cli.js (package.json bin);
// the logic lives in run.ts so tests can import it without running anything.
import { main } from './run.ts';

const code = await main(process.argv.slice(2));
// Dawn can keep the event loop alive after the device is destroyed; output is flushed by now.
process.exit(code);
