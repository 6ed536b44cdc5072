// WGSL shaders are bundled as text (esbuild --loader:.wgsl=text; the test loader hook does the same).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
// Wasm modules are bundled as bytes (esbuild --loader:.wasm=binary; the test loader hook does the same).
declare module '*.wasm' {
  const bytes: Uint8Array;
  export default bytes;
}
