// The GPU runtime: one device, its allocator, the pipeline cache, and the command batching that
// every kernel launch goes through. Dispatches are recorded into one compute pass per batch; the
// batch is submitted when a readback, copy or write needs it (or when the uniform arena fills).
import { DeviceError, DeviceLostError, MambaScanError, ShaderCompileError } from '../../errors.ts';
import { KernelProfiler, type KernelTime } from './profiler.ts';
import { BufferAllocator, type MemoryStats } from './allocator.ts';
import { BufferUsage, MapMode } from './flags.ts';
import { type DefineValue, type KernelDef, paramBlockBytes, specialise, variantLabel, writeParams } from './kernel.ts';
import { getGpu } from './provider.ts';

export interface DeviceOptions {
  /** A GPU object to use instead of the platform's (navigator.gpu or Dawn). */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Disable optional features, e.g. to test the no-f16 path on an f16 adapter. */
  disableFeatures?: ('shader-f16' | 'subgroups' | 'timestamp-query')[];
  /**
   * Which kernel variants the runtime picks where GPUs and CPU emulations differ (GEMV tuning,
   * tiled vs register-blocked GEMM, unrolled scans): 'auto' by adapter class, 'gpu' the real-GPU
   * choices even on a software adapter (the test suite's GPU lane), 'software' the emulation ones.
   */
  tuning?: 'auto' | 'gpu' | 'software';
  /**
   * 'adapter' (default) requests the adapter's limits (bigger bindings and buffers); 'default'
   * keeps WebGPU's default limits, as many phones, integrated GPUs and browsers give.
   */
  limits?: 'adapter' | 'default';
}

export interface GpuFeatures {
  shaderF16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
}

export interface GpuLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minUniformBufferOffsetAlignment: number;
  minStorageBufferOffsetAlignment: number;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU emulations (lavapipe/llvmpipe, SwiftShader). */
  isSoftware: boolean;
  /** A short name for reports: `llvmpipe`, `swiftshader`, or the vendor/device. */
  name: string;
}

export interface CompiledKernel {
  readonly def: KernelDef;
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly workgroupSize: [number, number, number];
  readonly defines: Record<string, DefineValue>;
  /** Unique per compiled variant (bind group cache key). */
  readonly id: number;
  /** Bytes of the uniform params block (0 without params). */
  readonly paramBytes: number;
}

/** A buffer or a window of one, bound to a storage binding. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** One dispatch as a launcher built it for GpuContext.replay() (the objects are kept, not copied). */
export interface RecordedDispatch {
  k: CompiledKernel;
  bindings: Record<string, Binding>;
  params: Record<string, number>;
  grid: [number, number?, number?];
}

function isWindow(b: Binding): b is { buffer: GPUBuffer; offset?: number; size?: number } {
  // GPUBuffer has no `buffer` property; a binding window does.
  return (b as { buffer?: unknown }).buffer !== undefined;
}

const UNIFORM_SLOT = 256;
const UNIFORM_SLOTS = 512;
/** Bind groups kept at most (a model needs a few per layer; prefill block sizes add more). */
const MAX_BIND_GROUPS = 8192;

/** Access mode of each `@binding(n) var<storage, ...>` in specialised WGSL. */
function storageAccess(code: string): Map<number, 'read' | 'read_write'> {
  const out = new Map<number, 'read' | 'read_write'>();
  for (const m of code.matchAll(/@binding\((\d+)\)\s*var<storage\s*,\s*(read_write|read)\s*>/g)) out.set(Number(m[1]), m[2] as 'read' | 'read_write');
  return out;
}

export class GpuContext {
  readonly device: GPUDevice;
  readonly features: GpuFeatures;
  readonly limits: GpuLimits;
  readonly adapter: AdapterDescription;
  readonly alloc: BufferAllocator;
  /** True when kernels are chosen for a CPU emulation (DeviceOptions.tuning). */
  readonly softwareTuning: boolean;

  /** Compiled variants per kernel definition, keyed by the defines in the order the launcher gives them. */
  private readonly kernels = new Map<KernelDef, Map<string, Promise<CompiledKernel>>>();
  /** Bind groups by kernel variant and bound buffer windows (weights and the workspace do not move). */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  /** Buffers computed once from a source buffer (weights), destroyed with it. */
  private readonly derivedBuffers = new Map<GPUBuffer, Map<string, GPUBuffer>>();
  /** Bind group keys that mention a buffer, so destroying the buffer drops them. */
  private readonly bindGroupsByBuffer = new Map<number, string[]>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private nextKernelId = 1;
  private readonly uniformView: DataView;
  private lostError: DeviceLostError | undefined;
  private uncaptured: Error | undefined;
  private destroyed = false;

  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private readonly uniformArena: GPUBuffer;
  private readonly uniformStaging = new Uint8Array(UNIFORM_SLOT * UNIFORM_SLOTS);
  private uniformUsed = 0;
  private pendingDispatches = 0;
  private profiler: KernelProfiler | undefined;
  /**
   * Benchmarks only: dispatches are validated but not recorded, so a run allocates exactly what
   * it would and skips the arithmetic (memory figures at lengths a software adapter cannot
   * compute in reasonable time). Results read back are meaningless while set.
   */
  allocationOnly = false;
  /** Number of dispatches recorded since creation (for benchmarks and tests). */
  dispatchCount = 0;
  submitCount = 0;
  /** Number of shader variants compiled since creation (none should be compiled after load). */
  compiledKernels = 0;

  private constructor(device: GPUDevice, adapter: AdapterDescription, features: GpuFeatures, limits: GpuLimits, gpuRef: GPU, softwareTuning: boolean) {
    this.device = device;
    this.softwareTuning = softwareTuning;
    this.adapter = adapter;
    this.features = features;
    this.limits = limits;
    // Holding the GPU object here keeps Dawn's instance alive as long as this context.
    (this as unknown as { gpuRef: GPU }).gpuRef = gpuRef;
    this.alloc = new BufferAllocator(device);
    this.alloc.beforeDestroy = (buffer) => {
      if (buffer) {
        this.forgetBindGroups(buffer);
        this.destroyDerived(buffer);
      }
      if (!this.encoder || this.destroyed || this.lostError) return;
      try { this.flush(); } catch { /* the error stays recorded and surfaces at the next call */ }
    };
    this.uniformView = new DataView(this.uniformStaging.buffer);
    this.uniformArena = this.alloc.create('runtime:uniforms', UNIFORM_SLOT * UNIFORM_SLOTS,
      BufferUsage.UNIFORM | BufferUsage.COPY_DST);
    device.lost.then((info) => {
      if (!this.destroyed) this.lostError = new DeviceLostError(String(info.reason), info.message || 'no message');
    });
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      if (!this.uncaptured) this.uncaptured = new MambaScanError(`WebGPU error: ${err.message}`);
    });
  }

  /** Acquires an adapter and device with the limits and optional features the runtime uses. */
  static async create(opts: DeviceOptions = {}): Promise<GpuContext> {
    const gpu = opts.gpu ?? (await getGpu());
    const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
    if (!adapter) {
      throw new DeviceError('no WebGPU adapter found. Without a GPU install a software Vulkan driver ' +
        '(Debian/Ubuntu: Mesa lavapipe >= 24, `apt-get -t bookworm-backports install mesa-vulkan-drivers`), ' +
        'see README "Troubleshooting".');
    }
    const off = new Set(opts.disableFeatures ?? []);
    const want: GPUFeatureName[] = [];
    for (const f of ['shader-f16', 'subgroups', 'timestamp-query'] as const) {
      if (adapter.features.has(f) && !off.has(f)) want.push(f as GPUFeatureName);
    }
    const al = adapter.limits;
    const requiredLimits: Record<string, number> = opts.limits === 'default' ? {} : {
      maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
      maxBufferSize: al.maxBufferSize,
      maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: al.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: al.maxComputeWorkgroupSizeY,
      maxStorageBuffersPerShaderStage: al.maxStorageBuffersPerShaderStage,
    };
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredFeatures: want, requiredLimits });
    } catch (e) {
      throw new DeviceError(`requestDevice failed: ${(e as Error).message}`, { cause: e });
    }
    const info = adapter.info ?? ({} as GPUAdapterInfo);
    const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
    const isSoftware = /llvmpipe|lavapipe|swiftshader|software/.test(text);
    const name = /swiftshader/.test(text) ? 'swiftshader' : /llvmpipe|lavapipe/.test(text) ? 'llvmpipe'
      : [info.vendor, info.device || info.architecture || info.description].filter(Boolean).join(' ') || 'unknown';
    const dl = device.limits;
    const limits: GpuLimits = {
      maxStorageBufferBindingSize: dl.maxStorageBufferBindingSize,
      maxBufferSize: dl.maxBufferSize,
      maxComputeWorkgroupStorageSize: dl.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: dl.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: dl.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: dl.maxStorageBuffersPerShaderStage,
      minUniformBufferOffsetAlignment: dl.minUniformBufferOffsetAlignment,
      minStorageBufferOffsetAlignment: dl.minStorageBufferOffsetAlignment,
    };
    const features: GpuFeatures = {
      shaderF16: device.features.has('shader-f16'),
      subgroups: device.features.has('subgroups'),
      timestampQuery: device.features.has('timestamp-query'),
    };
    const adapterDesc: AdapterDescription = {
      vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '',
      description: info.description ?? '', isSoftware, name,
    };
    const tuning = opts.tuning ?? 'auto';
    if (tuning !== 'auto' && tuning !== 'gpu' && tuning !== 'software') throw new DeviceError(`DeviceOptions.tuning must be 'auto', 'gpu' or 'software', got ${String(tuning)}`);
    const softwareTuning = tuning === 'auto' ? isSoftware : tuning === 'software';
    return new GpuContext(device, adapterDesc, features, limits, gpu, softwareTuning);
  }

  /**
   * Starts per-kernel GPU timing (needs the timestamp-query feature); returns undefined when the
   * adapter has none. Stop with stopProfiling(), which returns the totals per kernel name.
   */
  startProfiling(): KernelProfiler | undefined {
    if (!this.features.timestampQuery) return undefined;
    this.flush();
    this.profiler ??= new KernelProfiler(this.device, this.alloc);
    this.profiler.reset();
    return this.profiler;
  }

  async stopProfiling(): Promise<Map<string, KernelTime>> {
    const p = this.profiler;
    if (!p) return new Map();
    this.flush();
    this.profiler = undefined;
    const r = await p.results();
    p.destroy();
    return r;
  }

  /** Throws the device-lost or uncaptured WebGPU error, if any happened. */
  check(): void {
    if (this.destroyed) throw new MambaScanError('GPU context was destroyed');
    if (this.lostError) throw this.lostError;
    if (this.uncaptured) {
      const e = this.uncaptured;
      this.uncaptured = undefined;
      throw e;
    }
  }

  get isLost(): boolean { return this.lostError !== undefined; }

  memoryStats(): MemoryStats { return this.alloc.memoryStats(); }

  /** Compiles (once) a kernel variant. Compilation errors become ShaderCompileError with the WGSL line. */
  kernel(def: KernelDef, defines: Record<string, DefineValue> = {}): Promise<CompiledKernel> {
    // Every define is in the key (the label drops false booleans), in the launcher's order: a
    // launcher that listed the same defines in another order would only compile a duplicate.
    let key = '';
    for (const k in defines) key += `${k}=${defines[k]};`;
    let byDef = this.kernels.get(def);
    if (!byDef) this.kernels.set(def, (byDef = new Map()));
    let p = byDef.get(key);
    if (!p) {
      const variants = byDef;
      p = this.compile(def, defines, variantLabel(def.name, defines));
      variants.set(key, p);
      p.catch(() => variants.delete(key));
    }
    return p;
  }

  private async compile(def: KernelDef, defines: Record<string, DefineValue>, label: string): Promise<CompiledKernel> {
    this.check();
    this.compiledKernels++;
    const { code, preludeLines } = specialise(def, defines);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label, code });
    const info = await module.getCompilationInfo();
    const scopeErr = await this.device.popErrorScope();
    const firstErr = info.messages.find((m) => m.type === 'error');
    if (firstErr || scopeErr) {
      const srcLines = code.split('\n');
      const lineNum = firstErr ? firstErr.lineNum : undefined;
      const userLine = lineNum !== undefined ? lineNum - preludeLines : undefined;
      throw new ShaderCompileError(label, firstErr?.message ?? scopeErr!.message,
        userLine, lineNum !== undefined ? srcLines[lineNum - 1] : undefined);
    }
    // An explicit layout: the params block is a dynamic-offset uniform binding, so one bind group
    // serves every dispatch of a variant over the same buffers, whatever slot its params took.
    const entries: GPUBindGroupLayoutEntry[] = [];
    const paramBytes = paramBlockBytes(def);
    if (paramBytes > 0) entries.push({ binding: 0, visibility: 0x4 /* COMPUTE */, buffer: { type: 'uniform', hasDynamicOffset: true } });
    const access = storageAccess(code);
    def.bindings.forEach((name, i) => {
      entries.push({ binding: i + 1, visibility: 0x4, buffer: { type: access.get(i + 1) === 'read_write' ? 'storage' : 'read-only-storage' } });
    });
    let pipeline: GPUComputePipeline;
    let layout: GPUBindGroupLayout;
    try {
      this.device.pushErrorScope('validation');
      layout = this.device.createBindGroupLayout({ label, entries });
      const pipelineLayout = this.device.createPipelineLayout({ label, bindGroupLayouts: [layout] });
      const layoutErr = await this.device.popErrorScope();
      if (layoutErr) throw new Error(layoutErr.message);
      pipeline = await this.device.createComputePipelineAsync({ label, layout: pipelineLayout, compute: { module, entryPoint: 'main' } });
    } catch (e) {
      throw new ShaderCompileError(label, (e as Error).message);
    }
    const wg = def.workgroupSize ? def.workgroupSize(defines) : [0, 0, 0] as [number, number, number];
    return { def, label, pipeline, layout, workgroupSize: wg, defines, id: this.nextKernelId++, paramBytes };
  }

  /**
   * Records one dispatch. `bindings` are by name (def.bindings); `params` by name (def.params).
   * `grid` is in workgroups; x beyond the per-dimension limit is folded into y, so kernels that
   * can see large grids compute their linear workgroup id as `wid.x + wid.y * nwg.x` and bound-check.
   */
  dispatch(k: CompiledKernel, bindings: Record<string, Binding>, params: Record<string, number>, grid: [number, number?, number?]): void {
    this.check();
    let uniformOffset = -1;
    if (k.paramBytes > 0) {
      if (this.uniformUsed >= UNIFORM_SLOTS) this.flush();
      uniformOffset = this.uniformUsed * UNIFORM_SLOT;
      writeParams(k.def, params, this.uniformView, uniformOffset);
      this.uniformUsed++;
    }
    const bindGroup = this.bindGroupFor(k, bindings);
    let [x, y = 1, z = 1] = grid;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim) {
      if (y !== 1) throw new Error(`kernel ${k.label}: grid x ${x} over the limit with y ${y}`);
      y = Math.ceil(x / maxDim);
      x = Math.ceil(x / y);
    }
    if (x === 0 || y === 0 || z === 0 || this.allocationOnly) return;
    const offsets = uniformOffset >= 0 ? [uniformOffset] : [];
    if (this.profiler) {
      if (this.profiler.full) this.flush();
      // One pass per dispatch, with its own begin/end timestamps.
      const enc = this.endPass();
      const p = enc.beginComputePass({ timestampWrites: this.profiler.next(k.def.name) });
      p.setPipeline(k.pipeline);
      p.setBindGroup(0, bindGroup, offsets);
      p.dispatchWorkgroups(x, y, z);
      p.end();
      this.pendingDispatches++;
      this.dispatchCount++;
      return;
    }
    const pass = this.beginPass();
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, bindGroup, offsets);
    pass.dispatchWorkgroups(x, y, z);
    this.pendingDispatches++;
    this.dispatchCount++;
  }

  /** A small number naming `buffer` for as long as it lives (cache keys over buffers). */
  bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) this.bufferIds.set(buffer, (id = this.nextBufferId++));
    return id;
  }

  /** The (cached) bind group of `k` over these buffer windows; the params slot is a dynamic offset. */
  private bindGroupFor(k: CompiledKernel, bindings: Record<string, Binding>): GPUBindGroup {
    const names = k.def.bindings;
    let key = `${k.id}`;
    const ids: number[] = [];
    for (let i = 0; i < names.length; i++) {
      const b = bindings[names[i]];
      if (!b) throw new Error(`kernel ${k.label}: binding ${names[i]} not given`);
      const id = this.bufferId(isWindow(b) ? b.buffer : b);
      ids.push(id);
      key += isWindow(b) ? `|${id}:${b.offset ?? 0}:${b.size ?? -1}` : `|${id}`;
    }
    let count = 0;
    for (const _ in bindings) count++;
    if (count !== names.length) {
      for (const name of Object.keys(bindings)) if (!names.includes(name)) throw new Error(`kernel ${k.label}: unknown binding ${name}`);
    }
    const cached = this.bindGroups.get(key);
    if (cached) return cached;
    const entries: GPUBindGroupEntry[] = [];
    if (k.paramBytes > 0) entries.push({ binding: 0, resource: { buffer: this.uniformArena, offset: 0, size: k.paramBytes } });
    names.forEach((name, i) => {
      const b = bindings[name];
      entries.push({ binding: i + 1, resource: isWindow(b) ? b : { buffer: b } });
    });
    const bindGroup = this.device.createBindGroup({ layout: k.layout, entries });
    if (this.bindGroups.size >= MAX_BIND_GROUPS) this.clearBindGroups();
    this.bindGroups.set(key, bindGroup);
    for (const id of ids) {
      let list = this.bindGroupsByBuffer.get(id);
      if (!list) this.bindGroupsByBuffer.set(id, (list = []));
      list.push(key);
    }
    return bindGroup;
  }

  /**
   * A buffer derived from `source` (e.g. per-head scan constants from a layer's weights), created
   * by `make` on first use and destroyed when `source` is. `source` must not change afterwards.
   */
  derived(source: GPUBuffer, name: string, make: () => GPUBuffer): GPUBuffer {
    let m = this.derivedBuffers.get(source);
    if (!m) this.derivedBuffers.set(source, (m = new Map()));
    let b = m.get(name);
    if (!b) m.set(name, (b = make()));
    return b;
  }

  private destroyDerived(source: GPUBuffer): void {
    const m = this.derivedBuffers.get(source);
    if (!m) return;
    this.derivedBuffers.delete(source);
    for (const b of m.values()) this.alloc.destroy(b);
  }

  private forgetBindGroups(buffer: GPUBuffer): void {
    const id = this.bufferIds.get(buffer);
    if (id === undefined) return;
    const keys = this.bindGroupsByBuffer.get(id);
    if (keys) for (const key of keys) this.bindGroups.delete(key);
    this.bindGroupsByBuffer.delete(id);
  }

  private clearBindGroups(): void {
    this.bindGroups.clear();
    this.bindGroupsByBuffer.clear();
  }

  private beginPass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'batch' });
    if (!this.pass) {
      this.pass = this.encoder.beginComputePass();
    }
    return this.pass;
  }

  private endPass(): GPUCommandEncoder {
    if (this.pass) { this.pass.end(); this.pass = undefined; }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'batch' });
    return this.encoder;
  }

  /**
   * Records dispatches a launcher built without recording them (its `sink`), in order: a launcher
   * that awaits (kernel compiles) can then never interleave with another op's dispatches, and its
   * caller may keep the list and replay it for the next identical call.
   */
  replay(list: readonly RecordedDispatch[]): void {
    for (const d of list) this.dispatch(d.k, d.bindings, d.params, d.grid);
  }

  /** Records a buffer-to-buffer copy in stream order with the dispatches. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.check();
    if (size === 0) return;
    this.endPass().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    this.pendingDispatches++;
  }

  /** Records a zero fill in stream order. */
  clear(buf: GPUBuffer, offset = 0, size?: number): void {
    this.check();
    this.endPass().clearBuffer(buf, offset, size);
    this.pendingDispatches++;
  }

  /** Submits everything recorded so far. */
  flush(): void {
    this.check();
    if (!this.encoder && this.uniformUsed === 0) return;
    const enc = this.endPass();
    if (this.uniformUsed > 0) {
      // Ordered before this submit and after the previous one, so the arena can be reused per batch.
      this.device.queue.writeBuffer(this.uniformArena, 0, this.uniformStaging, 0, this.uniformUsed * UNIFORM_SLOT);
    }
    const afterSubmit = this.profiler?.encodeResolve(enc);
    this.device.queue.submit([enc.finish()]);
    afterSubmit?.();
    this.encoder = undefined;
    this.uniformUsed = 0;
    this.pendingDispatches = 0;
    this.submitCount++;
  }

  /** Writes host data into a buffer, after everything recorded so far. */
  write(buf: GPUBuffer, offset: number, data: ArrayBufferView | ArrayBuffer): void {
    if (this.encoder) this.flush();
    this.check();
    const view = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (view.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buf, offset, view);
    } else {
      const padded = new Uint8Array(Math.ceil(view.byteLength / 4) * 4);
      padded.set(view);
      this.device.queue.writeBuffer(buf, offset, padded);
    }
  }

  /** Creates a storage buffer (through the allocator) holding `data`. */
  upload(label: string, data: ArrayBufferView, usage = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST): GPUBuffer {
    const buf = this.alloc.create(label, data.byteLength, usage);
    try {
      this.write(buf, 0, data);
    } catch (e) {
      this.alloc.destroy(buf);
      throw e;
    }
    return buf;
  }

  /**
   * Keeps one staging buffer of at least `bytes` for reads (grown on request, never shrunk until
   * trimStaging): readbacks that fit it allocate nothing, so memory use is the same every call.
   */
  reserveStaging(bytes: number): void {
    const want = Math.max(4, Math.ceil(bytes / 4) * 4);
    if (this.staging && this.staging.size >= want) return;
    if (this.staging) this.alloc.destroy(this.staging);
    this.staging = this.alloc.create('runtime:staging', want, BufferUsage.MAP_READ | BufferUsage.COPY_DST);
  }

  /** Frees the reserved staging buffer. */
  trimStaging(): void {
    if (this.staging) this.alloc.destroy(this.staging);
    this.staging = undefined;
  }

  private staging: GPUBuffer | undefined;
  private stagingBusy = false;

  /** Reads `size` bytes back after all recorded work completes. */
  async read(buf: GPUBuffer, offset = 0, size?: number): Promise<ArrayBuffer> {
    this.check();
    const n = size ?? buf.size - offset;
    const padded = Math.ceil(n / 4) * 4;
    const reserved = this.staging && !this.stagingBusy && this.staging.size >= padded ? this.staging : undefined;
    if (reserved) this.stagingBusy = true;
    const staging = reserved ?? this.alloc.scratch('runtime:staging', padded, BufferUsage.MAP_READ | BufferUsage.COPY_DST);
    try {
      this.endPass().copyBufferToBuffer(buf, offset, staging, 0, padded);
      this.flush();
      try {
        await staging.mapAsync(MapMode.READ, 0, padded);
      } catch (e) {
        // A lost device rejects pending maps before `lost` resolves: give it a moment so the
        // caller gets the typed DeviceLostError rather than a generic failure.
        await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, 100))]);
        this.check();
        throw new MambaScanError(`readback of ${buf.label} failed: ${(e as Error).message}`, { cause: e });
      }
      const out = staging.getMappedRange(0, padded).slice(0, n);
      staging.unmap();
      this.check();
      return out;
    } finally {
      if (reserved) this.stagingBusy = false;
      else if (this.alloc.isLive(staging)) this.alloc.release(staging);
    }
  }

  async readF32(buf: GPUBuffer, offsetElems = 0, count?: number): Promise<Float32Array> {
    const bytes = await this.read(buf, offsetElems * 4, count !== undefined ? count * 4 : undefined);
    return new Float32Array(bytes);
  }

  async readU32(buf: GPUBuffer, offsetElems = 0, count?: number): Promise<Uint32Array> {
    const bytes = await this.read(buf, offsetElems * 4, count !== undefined ? count * 4 : undefined);
    return new Uint32Array(bytes);
  }

  /** Waits for all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  /** Destroys every buffer and the device. Returns buffers that were never released (leaks). */
  async destroy(): Promise<{ label: string; size: number }[]> {
    if (this.destroyed) return [];
    try {
      if (!this.lostError) {
        this.flush();
        await this.device.queue.onSubmittedWorkDone();
      }
    } catch { /* the device is going away either way */ }
    this.destroyed = true;
    const leaks = this.alloc.dispose().filter((l) => l.label !== 'runtime:uniforms');
    this.device.destroy();
    return leaks;
  }
}
