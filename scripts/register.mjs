// `node --import ./scripts/register.mjs file.ts`: TypeScript via tsx plus the .wgsl/.wasm hooks.
import { register } from 'node:module';
import 'tsx/esm';
register('./loader-hooks.mjs', import.meta.url);
