// Where checkpoint files come from. The loader only ever asks for a file's size, its text (small
// JSON files), or a byte range: so a 5 GB shard never has to sit in host memory, whether it is on
// disk, behind a URL (HTTP Range requests), in a browser folder pick, or already in memory.
//
// The Node directory source lives in source-node.ts and is loaded with a dynamic import, and it
// imports node:fs itself dynamically, so browser bundles never evaluate a node: import.
import { CheckpointError, HubError, InputError, UnsupportedError } from '../errors.ts';

export interface CheckpointSource {
  /** For messages: the directory, URL base or "in-memory files". */
  readonly description: string;
  /** File names the source knows of, when it can list them (not over HTTP). */
  list?(): Promise<string[]>;
  exists(name: string): Promise<boolean>;
  /** Size in bytes; CheckpointError when the file does not exist. */
  size(name: string): Promise<number>;
  readText(name: string): Promise<string>;
  readTextIfExists(name: string): Promise<string | undefined>;
  /**
   * Bytes [start, end) of `name`. With `into` (at least end - start bytes) the bytes are written
   * there and a view of it is returned, so a caller can reuse one host buffer for a whole load.
   */
  readRange(name: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Releases open files; the source may not be used afterwards. */
  close?(): Promise<void>;
  /** The weights file the user named, when they named one (a path or URL ending in .gguf). */
  readonly primaryFile?: string;
}

/** `source` with `file` as the weights file the user named (the loader reads it as GGUF). */
export function withPrimaryFile(source: CheckpointSource, file: string): CheckpointSource {
  return {
    description: `${source.description}/${file}`,
    primaryFile: file,
    list: source.list?.bind(source),
    exists: (n) => source.exists(n),
    size: (n) => source.size(n),
    readText: (n) => source.readText(n),
    readTextIfExists: (n) => source.readTextIfExists(n),
    readRange: (n, start, end, into) => source.readRange(n, start, end, into),
    close: source.close?.bind(source),
  };
}

export function notFound(name: string, where: string): CheckpointError {
  return new CheckpointError(name, `not found in ${where}`);
}

function checkRange(name: string, start: number, end: number, size: number): void {
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && end >= start)) {
    throw new RangeError(`${name}: bad byte range [${start}, ${end})`);
  }
  if (end > size) throw new CheckpointError(name, `read of bytes [${start}, ${end}) past the end of the file (${size} bytes)`);
}

function output(len: number, into?: Uint8Array): Uint8Array {
  if (into && into.byteLength < len) throw new RangeError(`readRange: buffer of ${into.byteLength} bytes is smaller than ${len}`);
  return into ? into.subarray(0, len) : new Uint8Array(len);
}

/** Base for sources that can answer exists() only by asking for the size. */
abstract class SourceBase implements CheckpointSource {
  abstract readonly description: string;
  abstract size(name: string): Promise<number>;
  abstract readText(name: string): Promise<string>;
  abstract readRange(name: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array>;

  async exists(name: string): Promise<boolean> {
    try {
      await this.size(name);
      return true;
    } catch (e) {
      if (e instanceof CheckpointError && /not found/.test(e.message)) return false;
      throw e;
    }
  }

  async readTextIfExists(name: string): Promise<string | undefined> {
    return (await this.exists(name)) ? this.readText(name) : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// In memory

export type MemoryFiles = Map<string, Uint8Array | ArrayBuffer | string> | Record<string, Uint8Array | ArrayBuffer | string>;

export class MemorySource extends SourceBase {
  readonly description = 'in-memory files';
  private readonly files = new Map<string, Uint8Array>();

  constructor(files: MemoryFiles) {
    super();
    const entries = files instanceof Map ? [...files.entries()] : Object.entries(files);
    for (const [k, v] of entries) {
      this.files.set(k, typeof v === 'string' ? new TextEncoder().encode(v) : v instanceof Uint8Array ? v : new Uint8Array(v));
    }
  }

  private get(name: string): Uint8Array {
    const f = this.files.get(name);
    if (!f) throw notFound(name, this.description);
    return f;
  }

  async list(): Promise<string[]> { return [...this.files.keys()]; }
  async size(name: string): Promise<number> { return this.get(name).byteLength; }
  async readText(name: string): Promise<string> { return new TextDecoder().decode(this.get(name)); }

  async readRange(name: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    const f = this.get(name);
    checkRange(name, start, end, f.byteLength);
    const out = output(end - start, into);
    out.set(f.subarray(start, end));
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// URL base with HTTP Range requests

export interface UrlSourceOptions {
  /** fetch to use (tests inject one; default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Extra request headers, e.g. { Authorization: 'Bearer ...' }. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** `bytes 10-19/1234` -> {start: 10, end: 20, total: 1234}; total undefined for `*`. */
export function parseContentRange(v: string | null): { start: number; end: number; total?: number } | undefined {
  const m = v ? /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(v) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]) + 1, total: m[3] === '*' ? undefined : Number(m[3]) };
}

export class UrlSource extends SourceBase {
  readonly description: string;
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  private readonly sizes = new Map<string, Promise<number>>();

  constructor(base: string, private readonly opts: UrlSourceOptions = {}) {
    super();
    this.base = base.endsWith('/') ? base : `${base}/`;
    this.description = this.base;
    const f = opts.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    if (!f) throw new UnsupportedError('no fetch() in this environment: pass options.fetch to read checkpoints from a URL');
    // Called unbound: browsers throw "Illegal invocation" when fetch runs with another `this`.
    this.fetchFn = (input, init) => f(input, init);
  }

  url(name: string): string {
    if (name.includes('..') || name.startsWith('/')) throw new InputError(`bad checkpoint file name ${JSON.stringify(name)}`);
    return new URL(name.split('/').map(encodeURIComponent).join('/'), this.base).href;
  }

  private async request(name: string, init: RequestInit): Promise<Response> {
    const url = this.url(name);
    let res: Response;
    try {
      res = await this.fetchFn(url, { ...init, headers: { ...this.opts.headers, ...(init.headers as Record<string, string>) }, signal: this.opts.signal });
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') throw e;
      throw new HubError(url, undefined, `${name}: request failed: ${(e as Error).message}`, { cause: e });
    }
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {});
      throw notFound(name, this.description);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => {});
      throw new HubError(url, res.status, `${name}: access refused (HTTP ${res.status}): a private or gated model needs a token (Authorization header)`);
    }
    return res;
  }

  size(name: string): Promise<number> {
    let p = this.sizes.get(name);
    if (!p) {
      p = this.fetchSize(name);
      this.sizes.set(name, p);
      p.catch(() => this.sizes.delete(name));
    }
    return p;
  }

  private async fetchSize(name: string): Promise<number> {
    // HEAD first; servers that refuse HEAD or omit Content-Length get a one-byte Range GET, whose
    // Content-Range carries the total.
    const head = await this.request(name, { method: 'HEAD' });
    const len = head.headers.get('content-length');
    // Content-Length of a HEAD on a compressed response is the compressed size: only trust it
    // when no content-encoding is applied.
    if (head.ok && len !== null && /^\d+$/.test(len) && !head.headers.get('content-encoding')) return Number(len);
    const res = await this.request(name, { method: 'GET', headers: { Range: 'bytes=0-0' } });
    const cr = parseContentRange(res.headers.get('content-range'));
    await res.body?.cancel().catch(() => {});
    if (res.status === 206 && cr?.total !== undefined) return cr.total;
    const len2 = res.headers.get('content-length');
    if (res.status === 200 && len2 !== null && /^\d+$/.test(len2)) return Number(len2);
    if (res.status === 416) return 0; // Range not satisfiable on an empty file
    throw new HubError(this.url(name), res.status, `${name}: cannot determine the file size (HTTP ${res.status}, no Content-Length or Content-Range)`);
  }

  async readText(name: string): Promise<string> {
    const res = await this.request(name, { method: 'GET' });
    if (!res.ok) throw new HubError(this.url(name), res.status, `${name}: HTTP ${res.status} ${res.statusText}`);
    return res.text();
  }

  async readRange(name: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    const len = end - start;
    const out = output(Math.max(0, len), into);
    if (len <= 0) { checkRange(name, start, end, Infinity); return out; }
    const res = await this.request(name, { method: 'GET', headers: { Range: `bytes=${start}-${end - 1}` } });
    const url = this.url(name);
    if (res.status === 416) {
      await res.body?.cancel().catch(() => {});
      throw new CheckpointError(name, `bytes [${start}, ${end}) are past the end of the file (HTTP 416)`);
    }
    let skip: number;
    if (res.status === 206) {
      const cr = parseContentRange(res.headers.get('content-range'));
      if (!cr || cr.start !== start || cr.end < end) {
        await res.body?.cancel().catch(() => {});
        throw new HubError(url, 206, `${name}: asked for bytes ${start}-${end - 1}, server answered Content-Range ${res.headers.get('content-range')}`);
      }
      skip = 0;
    } else if (res.status === 200) {
      // The server ignored Range and sends the whole file: stream it, keep only our window and
      // stop reading once past it (bounded memory, wasted transfer; such servers are rare).
      skip = start;
    } else {
      await res.body?.cancel().catch(() => {});
      throw new HubError(url, res.status, `${name}: HTTP ${res.status} ${res.statusText} for a range request`);
    }
    let got = 0;
    if (!res.body) {
      const all = new Uint8Array(await res.arrayBuffer());
      const part = all.subarray(skip, skip + len);
      out.set(part);
      got = part.byteLength;
    } else {
      const reader = res.body.getReader();
      try {
        while (got < len) {
          const { done, value } = await reader.read();
          if (done) break;
          let chunk = value;
          if (skip > 0) {
            if (chunk.byteLength <= skip) { skip -= chunk.byteLength; continue; }
            chunk = chunk.subarray(skip);
            skip = 0;
          }
          const take = Math.min(chunk.byteLength, len - got);
          out.set(chunk.subarray(0, take), got);
          got += take;
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    }
    if (got !== len) throw new HubError(url, res.status, `${name}: transfer ended after ${got} of ${len} bytes (bytes ${start}-${end - 1})`);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Browser File / Blob list (an <input type=file webkitdirectory> pick or drag-and-drop)

/** A Blob with a name: File, or anything shaped like one. */
export interface NamedBlob extends Blob {
  readonly name: string;
  readonly webkitRelativePath?: string;
}

export class BlobSource extends SourceBase {
  readonly description = 'the picked files';
  private readonly files = new Map<string, NamedBlob>();

  constructor(files: Iterable<NamedBlob> | ArrayLike<NamedBlob>) {
    super();
    const list = Array.from(files as ArrayLike<NamedBlob>);
    // A folder pick gives paths like "Zamba2-1.2B/config.json": match by base name, preferring the
    // shallowest path when two files share a base name.
    const depth = (f: NamedBlob) => (f.webkitRelativePath || f.name).split('/').length;
    for (const f of [...list].sort((a, b) => depth(a) - depth(b))) {
      const base = (f.webkitRelativePath || f.name).split('/').pop() || f.name;
      if (!this.files.has(base)) this.files.set(base, f);
      if (f.name && !this.files.has(f.name)) this.files.set(f.name, f);
    }
  }

  private get(name: string): NamedBlob {
    const f = this.files.get(name) ?? this.files.get(name.split('/').pop() ?? name);
    if (!f) throw notFound(name, this.description);
    return f;
  }

  async list(): Promise<string[]> { return [...this.files.keys()]; }
  async size(name: string): Promise<number> { return this.get(name).size; }
  async readText(name: string): Promise<string> { return this.get(name).text(); }

  async readRange(name: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    const f = this.get(name);
    checkRange(name, start, end, f.size);
    const bytes = new Uint8Array(await f.slice(start, end).arrayBuffer());
    if (bytes.byteLength !== end - start) throw new CheckpointError(name, `short read: ${bytes.byteLength} of ${end - start} bytes`);
    if (!into) return bytes;
    const out = output(bytes.byteLength, into);
    out.set(bytes);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------

/** What resolveSource accepts. */
export type SourceInput =
  | CheckpointSource
  | string // directory path (Node), file:// URL, or http(s):// URL base
  | URL
  | MemoryFiles
  | ArrayLike<NamedBlob>
  | Iterable<NamedBlob>;

export function isCheckpointSource(x: unknown): x is CheckpointSource {
  return x !== null && typeof x === 'object' && typeof (x as CheckpointSource).readRange === 'function' &&
    typeof (x as CheckpointSource).size === 'function';
}

function isBlobLike(x: unknown): x is NamedBlob {
  return x !== null && typeof x === 'object' && typeof (x as Blob).slice === 'function' &&
    typeof (x as Blob).size === 'number' && typeof (x as NamedBlob).name === 'string';
}

/** A CheckpointSource for any supported input. Node directory support is loaded on demand. */
export async function resolveSource(input: SourceInput, opts: UrlSourceOptions = {}): Promise<CheckpointSource> {
  if (isCheckpointSource(input)) return input;
  if (typeof input === 'string' || input instanceof URL) {
    const s = typeof input === 'string' ? input : input.href;
    if (/^https?:\/\//i.test(s)) {
      // A URL of one .gguf file: its folder is the source, the file its weights.
      const m = /^(.*\/)([^/?#]+\.gguf)([?#].*)?$/i.exec(s);
      if (m) return withPrimaryFile(new UrlSource(m[1], opts), decodeURIComponent(m[2]));
      return new UrlSource(s, opts);
    }
    let dir = s;
    if (/^file:\/\//i.test(s)) dir = decodeURIComponent(new URL(s).pathname);
    const { directorySource } = await import('./source-node.ts');
    return directorySource(dir);
  }
  if (input instanceof Map) return new MemorySource(input);
  if (typeof (input as ArrayLike<unknown>).length === 'number' || Symbol.iterator in (input as object)) {
    const list = Array.from(input as ArrayLike<unknown>);
    if (list.every(isBlobLike)) return new BlobSource(list);
    throw new InputError('checkpoint source: a list must contain File/Blob objects with names');
  }
  if (input !== null && typeof input === 'object') {
    const values = Object.values(input as Record<string, unknown>);
    if (values.every((v) => typeof v === 'string' || v instanceof Uint8Array || v instanceof ArrayBuffer)) {
      return new MemorySource(input as Record<string, Uint8Array | ArrayBuffer | string>);
    }
  }
  throw new InputError('checkpoint source must be a directory path, a URL, a File/Blob list, a Map of file names to bytes, or a CheckpointSource');
}
