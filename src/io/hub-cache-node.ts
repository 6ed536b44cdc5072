// Downloads a Hugging Face Hub checkpoint into a local cache folder (Node only) and returns the
// folder, which the directory checkpoint source then loads like any local model.
//
// Layout: <cacheDir>/<org>--<name>/<revision>/<file>, e.g.
//   ~/.cache/mamba-scan-lite/hub/Zyphra--Zamba2-1.2B-instruct/main/model-00001-of-00002.safetensors
// (the '<org>--<name>' folder name is huggingface_hub's; revisions are percent-encoded so that
// 'refs/pr/1' stays one folder).
//
// Each file is streamed into '<file>.partial' and renamed once its size matches what the server
// announced, so a file under its final name is always whole. A '.partial' left by a broken
// connection (or a killed process) is resumed with `Range: bytes=<have>-`; the answer must be
// 206 with a Content-Range starting at <have>, and a server that ignores ranges (200) restarts
// the file from zero. When every file is in place a marker '.msl-complete.json' (file -> size)
// is written; a later call that finds the marker and the sizes intact returns at once, with no
// network at all (pass `force` to fetch again, e.g. after the 'main' branch moved). Files of an
// unfinished download found under their final name are kept, not fetched again.
//
// Only one download runs per model folder: concurrent calls in this process, and other processes
// through a lock file, wait for it and then find the cache complete (see withDownloadLock).

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { AbortError, CheckpointError, HubError } from '../errors.ts';
import {
  authHeaders,
  envVar,
  hubFileUrl,
  requireHubModelId,
  resolveRevision,
  shardFilesFromIndex,
  type HubUrlOptions,
} from './hub.ts';

export interface DownloadHubModelOptions extends HubUrlOptions {
  /** Default: MSL_CACHE_DIR, else $XDG_CACHE_HOME/mamba-scan-lite/hub, else ~/.cache/mamba-scan-lite/hub. */
  cacheDir?: string;
  /** Default globalThis.fetch; tests and proxies can pass their own. */
  fetch?: typeof globalThis.fetch;
  /**
   * Per-file progress: bytes of `file` on disk so far (a resumed file starts at what it had) and
   * its full size (undefined when the server did not say). Called at least once per file,
   * also for files taken from the cache.
   */
  onProgress?: (loaded: number, total: number | undefined, file: string) => void;
  signal?: AbortSignal;
  /** Default HF_TOKEN. Sent as `Authorization: Bearer ...`. */
  token?: string;
  /** Extra attempts per file after a network error, a cut-off body or a 5xx/429. Default 3. */
  retries?: number;
  /** Wait before the first retry, doubling after each. Default 500 ms. */
  retryDelayMs?: number;
  /** Ignore the completion marker and files already in place; fetch everything again. */
  force?: boolean;
  /**
   * Use the cache only and fail with HubError when the model is not complete there.
   * Default: true when MSL_OFFLINE or HF_HUB_OFFLINE is '1'.
   */
  offline?: boolean;
  /**
   * Files fetched when present (a 404 is fine). Default tokenizer.json, tokenizer_config.json,
   * generation_config.json, special_tokens_map.json, chat_template.jinja, chat_template.json.
   */
  optionalFiles?: string[];
}

export const COMPLETE_MARKER = '.msl-complete.json';
// Newer transformers versions save the chat template in its own file rather than in
// tokenizer_config.json, so both places are fetched.
const DEFAULT_OPTIONAL = [
  'tokenizer.json',
  'tokenizer_config.json',
  'generation_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
];

interface Marker {
  repo: string;
  revision: string;
  files: Record<string, number>;
}

/** MSL_CACHE_DIR, else $XDG_CACHE_HOME/mamba-scan-lite/hub, else ~/.cache/mamba-scan-lite/hub. */
export function defaultHubCacheDir(): string {
  const explicit = envVar('MSL_CACHE_DIR');
  if (explicit) return path.resolve(explicit);
  const base = envVar('XDG_CACHE_HOME') ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'mamba-scan-lite', 'hub');
}

/** The folder a model's files are (or will be) cached in. Creates nothing. */
export function hubModelDir(modelId: string, opts: { cacheDir?: string; revision?: string } = {}): string {
  const ref = requireHubModelId(modelId);
  const revision = resolveRevision(ref, opts.revision);
  return path.join(opts.cacheDir ?? defaultHubCacheDir(), `${ref.org}--${ref.name}`, encodeURIComponent(revision));
}

/**
 * The local folder holding `modelId` (config.json, safetensors weights, tokenizer files),
 * downloading whatever is not cached yet. Throws HubError for HTTP and network failures (with
 * the URL and what to do), AbortError when `signal` fires.
 */
export async function downloadHubModel(modelId: string, opts: DownloadHubModelOptions = {}): Promise<string> {
  const ref = requireHubModelId(modelId);
  const revision = resolveRevision(ref, opts.revision);
  const dir = hubModelDir(modelId, { cacheDir: opts.cacheDir, revision });
  const d = new Downloader(modelId, revision, dir, opts);
  d.checkAbort();

  if (!opts.force && (await cacheHit(dir, opts))) return dir;
  if (opts.offline ?? (envVar('MSL_OFFLINE') === '1' || envVar('HF_HUB_OFFLINE') === '1')) {
    throw new HubError(
      d.url('config.json'),
      undefined,
      `${modelId}@${revision} is not (completely) in the cache ${dir} and offline mode is on ` +
        `(MSL_OFFLINE / HF_HUB_OFFLINE): run once with network access to download it`,
    );
  }
  await fs.mkdir(dir, { recursive: true });
  return withDownloadLock(dir, opts.signal, async (waited) => {
    // A download of the same folder (this process or another) may have finished meanwhile.
    if ((!opts.force || waited) && (await cacheHit(dir, opts, true))) return dir;
    await fs.rm(path.join(dir, COMPLETE_MARKER), { force: true });

    const sizes: Record<string, number> = {};
    const get = async (file: string, required: boolean): Promise<boolean> => {
      const size = await d.file(file, required);
      if (size === undefined) return false;
      sizes[file] = size;
      return true;
    };

    await get('config.json', true);
    if (await get('model.safetensors.index.json', false)) {
      const indexPath = path.join(dir, 'model.safetensors.index.json');
      let shards: string[];
      try {
        shards = shardFilesFromIndex(JSON.parse(await fs.readFile(indexPath, 'utf8')) as unknown, d.url('model.safetensors.index.json'));
      } catch (e) {
        // Drop it so that the next call fetches it again instead of failing on the cached copy.
        await fs.rm(indexPath, { force: true });
        if (e instanceof SyntaxError) throw new CheckpointError(d.url('model.safetensors.index.json'), `not valid JSON: ${e.message}`);
        throw e;
      }
      for (const shard of shards) await get(shard, true);
    } else {
      await get('model.safetensors', true);
    }
    for (const f of opts.optionalFiles ?? DEFAULT_OPTIONAL) await get(f, false);

    const marker: Marker = { repo: ref.repo, revision, files: sizes };
    const tmp = path.join(dir, `${COMPLETE_MARKER}.partial`);
    await fs.writeFile(tmp, JSON.stringify(marker, null, 1));
    await fs.rename(tmp, path.join(dir, COMPLETE_MARKER));
    return dir;
  });
}

/**
 * Only some files of a Hub model (e.g. the tokenizer's), into the same cache folder, without the
 * weights and without the completion marker (a later downloadHubModel keeps them and fetches the
 * rest). Missing files (404) are skipped; returns the folder and the files that are there.
 */
export async function downloadHubFiles(modelId: string, files: readonly string[], opts: DownloadHubModelOptions = {}): Promise<{ dir: string; present: string[] }> {
  const ref = requireHubModelId(modelId);
  const revision = resolveRevision(ref, opts.revision);
  const dir = hubModelDir(modelId, { cacheDir: opts.cacheDir, revision });
  const d = new Downloader(modelId, revision, dir, opts);
  d.checkAbort();
  const offline = opts.offline ?? (envVar('MSL_OFFLINE') === '1' || envVar('HF_HUB_OFFLINE') === '1');
  const present: string[] = [];
  if (offline) {
    for (const f of files) if ((await fs.stat(path.join(dir, f)).catch(() => undefined))?.isFile()) present.push(f);
    return { dir, present };
  }
  await fs.mkdir(dir, { recursive: true });
  return withDownloadLock(dir, opts.signal, async () => {
    for (const f of files) if ((await d.file(f, false)) !== undefined) present.push(f);
    return { dir, present };
  });
}

async function cacheHit(dir: string, opts: DownloadHubModelOptions, repair = false): Promise<boolean> {
  const cached = await readCompleteMarker(dir, repair);
  if (!cached) return false;
  for (const [file, size] of Object.entries(cached.files)) opts.onProgress?.(size, size, file);
  return true;
}

/**
 * The marker when present and every file it lists is on disk with the recorded size. With
 * `repair` (only while holding the download lock) files whose size differs from the marker's
 * are deleted, so that the download that follows does not take them for complete.
 */
async function readCompleteMarker(dir: string, repair: boolean): Promise<Marker | undefined> {
  let marker: Marker;
  try {
    marker = JSON.parse(await fs.readFile(path.join(dir, COMPLETE_MARKER), 'utf8')) as Marker;
  } catch {
    return undefined; // no marker (or a torn one): download, which rewrites it
  }
  if (!marker || typeof marker.files !== 'object' || marker.files === null) return undefined;
  let intact = true;
  for (const [file, size] of Object.entries(marker.files)) {
    const full = path.join(dir, file);
    const st = await fs.stat(full).catch(() => undefined);
    if (st?.size === size) continue;
    intact = false;
    if (st && repair) await fs.rm(full, { force: true });
  }
  return intact ? marker : undefined;
}

// ---- one download per model folder ----
//
// Two downloads into one folder would append to the same '.partial' files. Within a process the
// second call waits for the first (a map of running downloads); across processes (two CLI runs)
// a lock file '<dir>/.msl-download.lock' created with O_EXCL holds {pid, host}, and its mtime is
// refreshed while the download runs. A waiter takes over a lock whose process is gone (same
// host) or that has not been refreshed for LOCK_STALE_MS (a crash on another host sharing the
// cache). Best effort: two waiters judging the same lock stale at the same instant can both
// proceed; the size checks then catch a mixed file on the next call.

export const DOWNLOAD_LOCK = '.msl-download.lock';
const LOCK_STALE_MS = 30_000;
const LOCK_HEARTBEAT_MS = 5_000;
const LOCK_POLL_MS = 200;
const running = new Map<string, Promise<void>>();

async function withDownloadLock<T>(dir: string, signal: AbortSignal | undefined, fn: (waited: boolean) => Promise<T>): Promise<T> {
  let waited = false;
  for (let other = running.get(dir); other; other = running.get(dir)) {
    waited = true;
    await abortable(other.catch(() => undefined), signal);
  }
  let release!: () => void;
  running.set(dir, new Promise<void>((r) => (release = r)));
  try {
    const lockPath = path.join(dir, DOWNLOAD_LOCK);
    if (await acquireFileLock(lockPath, signal)) waited = true;
    const beat = setInterval(() => {
      const now = new Date();
      fs.utimes(lockPath, now, now).catch(() => undefined);
    }, LOCK_HEARTBEAT_MS);
    beat.unref();
    try {
      return await fn(waited);
    } finally {
      clearInterval(beat);
      await fs.rm(lockPath, { force: true });
    }
  } finally {
    running.delete(dir);
    release();
  }
}

/** Creates the lock file, waiting while another live process holds it; true when it waited. */
async function acquireFileLock(lockPath: string, signal: AbortSignal | undefined): Promise<boolean> {
  let waited = false;
  for (;;) {
    try {
      const fh = await fs.open(lockPath, 'wx');
      try {
        await fh.writeFile(JSON.stringify({ pid: process.pid, host: os.hostname() }));
      } finally {
        await fh.close();
      }
      return waited;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (await lockIsStale(lockPath)) {
      await fs.rm(lockPath, { force: true });
      continue;
    }
    waited = true;
    await sleep(LOCK_POLL_MS, signal);
  }
}

async function lockIsStale(lockPath: string): Promise<boolean> {
  const st = await fs.stat(lockPath).catch(() => undefined);
  if (!st) return false; // just released: the next open may succeed
  if (Date.now() - st.mtimeMs > LOCK_STALE_MS) return true;
  let owner: { pid?: unknown; host?: unknown };
  try {
    owner = JSON.parse(await fs.readFile(lockPath, 'utf8')) as typeof owner;
  } catch {
    return false; // being written right now
  }
  if (owner.host !== os.hostname() || typeof owner.pid !== 'number') return false;
  // Our own pid: no download of this folder is running here (the map says so), so a leftover.
  if (owner.pid === process.pid) return true;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(new AbortError('download aborted'));
    const onAbort = () => reject(new AbortError('download aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** A failure worth another attempt (the connection, a cut body, a busy server). */
class Retryable extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
    /** The partial file was dropped: start again at once, without using up an attempt. */
    readonly restart = false,
  ) {
    super(message, options);
  }
}

class Downloader {
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly headers: Record<string, string>;

  constructor(
    private readonly modelId: string,
    private readonly revision: string,
    private readonly dir: string,
    private readonly opts: DownloadHubModelOptions,
  ) {
    this.fetchFn = opts.fetch ?? globalThis.fetch;
    // identity: the size checks compare against Content-Length, which is the encoded size.
    this.headers = { 'Accept-Encoding': 'identity', ...authHeaders(opts.token) };
  }

  url(file: string): string {
    return hubFileUrl(this.modelId, file, { ...this.opts, revision: this.revision });
  }

  checkAbort(): void {
    if (this.opts.signal?.aborted) throw new AbortError(`download of ${this.modelId} aborted`);
  }

  /**
   * Makes `file` present under its final name; returns its size, or undefined when an optional
   * file does not exist (404).
   */
  async file(file: string, required: boolean): Promise<number | undefined> {
    const final = path.join(this.dir, file);
    const partial = `${final}.partial`;
    await fs.mkdir(path.dirname(final), { recursive: true });
    if (this.opts.force) {
      await fs.rm(partial, { force: true });
    } else {
      // Renamed only after a size check, so a file under its final name is complete.
      const st = await fs.stat(final).catch(() => undefined);
      if (st?.isFile()) {
        this.opts.onProgress?.(st.size, st.size, file);
        return st.size;
      }
    }

    const url = this.url(file);
    const retries = this.opts.retries ?? 3;
    let delay = this.opts.retryDelayMs ?? 500;
    let last: Retryable | undefined;
    let restarts = 0;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        await sleep(delay, this.opts.signal);
        delay *= 2;
      }
      this.checkAbort();
      try {
        const size = await this.attempt(file, url, partial, required);
        if (size !== undefined) await fs.rename(partial, final);
        return size;
      } catch (e) {
        if (!(e instanceof Retryable)) throw e;
        last = e;
        // A restart follows a dropped partial, so the next request has no Range and cannot
        // ask for one again; the cap only guards against a server that misbehaves anyway.
        if (e.restart && restarts++ < 2) attempt--;
      }
    }
    throw new HubError(
      url,
      last?.status,
      `${this.modelId}: could not download ${file} from ${url} after ${retries + 1} attempts: ${last?.message}. ` +
        `Check the network connection (and MSL_REMOTE_HOST if set); rerunning resumes where this stopped.`,
      { cause: last },
    );
  }

  /** One request; resumes from `partial` when it has bytes. */
  private async attempt(file: string, url: string, partial: string, required: boolean): Promise<number | undefined> {
    const have = (await fs.stat(partial).catch(() => undefined))?.size ?? 0;
    const headers: Record<string, string> = { ...this.headers };
    if (have > 0) headers.Range = `bytes=${have}-`;

    let res: Response;
    try {
      res = await this.fetchFn(url, { headers, signal: this.opts.signal, redirect: 'follow' });
    } catch (e) {
      this.checkAbort();
      throw new Retryable(`network error (${describe(e)})`, undefined, { cause: e });
    }

    const status = res.status;
    if (status === 404) {
      await res.body?.cancel();
      if (!required) return undefined;
      throw new HubError(
        url,
        404,
        `${this.modelId}: ${file} not found at ${url} (HTTP 404): check the model id "${this.modelId}" ` +
          `and revision "${this.revision}" (and MSL_REMOTE_HOST if set)`,
      );
    }
    if (status === 401 || status === 403) {
      await res.body?.cancel();
      const hasToken = Object.keys(this.headers).includes('Authorization');
      throw new HubError(
        url,
        status,
        `${this.modelId}: access to ${url} refused (HTTP ${status}). The model may be private or gated, ` +
          (hasToken
            ? 'and the HF_TOKEN given does not grant access: accept the model terms on the Hub with that account, or check the token'
            : 'or the id may be wrong (the Hub answers 401 for unknown models): set HF_TOKEN to a Hugging Face access token with read access'),
      );
    }
    if (status === 416 && have > 0) {
      // The server cannot serve from `have` on: the partial file is not a prefix of this file
      // (it changed, or the partial is corrupt). Start it again.
      await res.body?.cancel();
      await fs.rm(partial, { force: true });
      throw new Retryable(`HTTP 416 when resuming at byte ${have}`, 416, undefined, true);
    }
    if (status >= 500 || status === 429) {
      await res.body?.cancel();
      throw new Retryable(`HTTP ${status} ${res.statusText}`, status);
    }
    if (status !== 200 && status !== 206) {
      await res.body?.cancel();
      throw new HubError(url, status, `${this.modelId}: unexpected HTTP ${status} ${res.statusText} for ${url}`);
    }

    let offset: number;
    let total: number | undefined;
    if (status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (have === 0 || !m || Number(m[1]) !== have) {
        // A range we did not ask for: keep nothing of it and start over without Range.
        await res.body?.cancel();
        await fs.rm(partial, { force: true });
        throw new Retryable(`HTTP 206 with Content-Range "${res.headers.get('content-range')}" when asking for bytes ${have}-`, 206, undefined, true);
      }
      offset = have;
      total = m[3] === '*' ? undefined : Number(m[3]);
    } else {
      offset = 0; // 200: a server without range support sends the whole file, so restart it
      const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
      const len = res.headers.get('content-length');
      total = !encoded && len !== null ? Number(len) : undefined;
    }

    const fh = await fs.open(partial, offset > 0 ? 'a' : 'w');
    let loaded = offset;
    try {
      this.opts.onProgress?.(loaded, total, file);
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (e) {
            this.checkAbort();
            throw new Retryable(`connection lost after ${loaded} of ${total ?? '?'} bytes (${describe(e)})`, undefined, { cause: e });
          }
          if (chunk.done) break;
          await fh.write(chunk.value);
          loaded += chunk.value.byteLength;
          this.opts.onProgress?.(loaded, total, file);
          if (total !== undefined && loaded > total) {
            await reader.cancel();
            break;
          }
        }
      }
    } finally {
      await fh.close();
    }
    this.checkAbort();
    if (total !== undefined && loaded !== total) {
      if (loaded > total) {
        await fs.rm(partial, { force: true });
        throw new Retryable(`received ${loaded} bytes, more than the announced ${total}`, status, undefined, true);
      }
      throw new Retryable(`body ended after ${loaded} of ${total} bytes`);
    }
    return loaded;
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError('download aborted'));
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortError('download aborted'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
