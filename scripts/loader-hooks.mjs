// Node module hooks for running TypeScript sources directly (tests, benches, dev CLI):
// `.wgsl` files load as a default-exported string and `.wasm` files as a default-exported
// Uint8Array, matching what esbuild's text/binary loaders produce in the bundles.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export async function load(url, context, nextLoad) {
  if (url.endsWith('.wgsl')) {
    const text = await readFile(fileURLToPath(url), 'utf8');
    return { format: 'module', shortCircuit: true, source: `export default ${JSON.stringify(text)};` };
  }
  if (url.endsWith('.wasm')) {
    const bytes = await readFile(fileURLToPath(url));
    return {
      format: 'module',
      shortCircuit: true,
      source: `export default Uint8Array.from(atob(${JSON.stringify(bytes.toString('base64'))}), (c) => c.charCodeAt(0));`,
    };
  }
  return nextLoad(url, context);
}
