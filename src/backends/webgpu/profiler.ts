// Per-kernel GPU time from timestamp queries. While a profiler is attached, every dispatch gets a
// compute pass of its own with begin/end timestamps (so profiling perturbs batching a little:
// use it to see where time goes, not to measure end-to-end speed). Results are summed per kernel
// name; readback happens asynchronously after each submit.
import type { BufferAllocator } from './allocator.ts';
import { BufferUsage, MapMode } from './flags.ts';

const QUERY_CAPACITY = 4096; // timestamps per submit (2 per dispatch)

export interface KernelTime {
  count: number;
  /** Total GPU nanoseconds. */
  ns: number;
}

export class KernelProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private labels: string[] = [];
  private readonly pending: Promise<void>[] = [];
  private readonly totals = new Map<string, KernelTime>();
  private destroyed = false;

  constructor(private readonly device: GPUDevice, private readonly alloc: BufferAllocator) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY });
    this.resolveBuf = alloc.create('profiler:resolve', QUERY_CAPACITY * 8, BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC);
  }

  /** True when the current batch has no room for another dispatch. */
  get full(): boolean { return 2 * (this.labels.length + 1) > QUERY_CAPACITY; }

  /** Timestamp writes for the next dispatch's pass. */
  next(label: string): GPUComputePassTimestampWrites {
    const i = this.labels.length;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Records the resolve + copy into `encoder`; call `afterSubmit` once it is submitted. */
  encodeResolve(encoder: GPUCommandEncoder): (() => void) | undefined {
    const n = this.labels.length;
    if (n === 0) return undefined;
    const labels = this.labels;
    this.labels = [];
    const read = this.alloc.create('profiler:read', n * 16, BufferUsage.MAP_READ | BufferUsage.COPY_DST);
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuf, 0);
    encoder.copyBufferToBuffer(this.resolveBuf, 0, read, 0, n * 16);
    return () => {
      this.pending.push(read.mapAsync(MapMode.READ).then(() => {
        const t = new BigUint64Array(read.getMappedRange());
        for (let i = 0; i < n; i++) {
          const ns = Number(t[2 * i + 1] - t[2 * i]);
          const e = this.totals.get(labels[i]) ?? { count: 0, ns: 0 };
          e.count++;
          // Some drivers report 0 or wrapped values for very short passes: clamp at 0.
          e.ns += Math.max(0, ns);
          this.totals.set(labels[i], e);
        }
        read.unmap();
      }).finally(() => this.alloc.destroy(read)));
    };
  }

  /** Waits for every submitted readback and returns totals per kernel name. */
  async results(): Promise<Map<string, KernelTime>> {
    await Promise.all(this.pending.splice(0));
    return new Map(this.totals);
  }

  reset(): void { this.totals.clear(); }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.querySet.destroy();
    this.alloc.destroy(this.resolveBuf);
  }
}

/** Op class of a kernel name, for "where the time goes" tables. */
export function opClass(kernel: string): string {
  if (/matmul|gemv|gemm|embedding|argmax/.test(kernel)) return 'matmul';
  if (/scan|ssd/.test(kernel)) return 'scan';
  if (/conv/.test(kernel)) return 'conv';
  if (/attention|rope/.test(kernel)) return 'attention';
  if (/norm/.test(kernel)) return 'norm';
  return 'elementwise';
}
