// Raw blocks in Wasm linear memory for the host helpers. The TypeScript side copies data in at
// the returned pointer, calls a kernel, and reads the result through a view of memory.buffer
// (re-created after any call that may grow memory). heap.alloc blocks are 16-byte aligned.

export function alloc(bytes: usize): usize {
  return heap.alloc(bytes);
}

export function free(ptr: usize): void {
  heap.free(ptr);
}
