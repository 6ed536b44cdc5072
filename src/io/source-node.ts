// A checkpoint directory on the local file system (Node). node: modules are imported dynamically
// inside the functions so that a browser bundle that contains this file never evaluates them.
import { CheckpointError, InputError } from '../errors.ts';
import { type CheckpointSource, notFound, withPrimaryFile } from './sources.ts';

type Fs = typeof import('node:fs/promises');
type FileHandle = Awaited<ReturnType<Fs['open']>>;

export async function directorySource(dir: string): Promise<CheckpointSource> {
  const fs: Fs = await import('node:fs/promises');
  const path = await import('node:path');
  const root = path.resolve(dir);
  let st;
  try {
    st = await fs.stat(root);
  } catch {
    throw new CheckpointError(dir, 'checkpoint directory does not exist');
  }
  if (st.isFile() && /\.gguf$/i.test(root)) return withPrimaryFile(await directorySource(path.dirname(root)), path.basename(root));
  if (!st.isDirectory()) throw new CheckpointError(dir, 'is not a directory (pass the folder that holds config.json, or a .gguf file)');

  const handles = new Map<string, Promise<FileHandle>>();
  const resolveName = (name: string): string => {
    const full = path.resolve(root, name);
    if (full !== root && !full.startsWith(root + path.sep)) throw new InputError(`checkpoint file ${JSON.stringify(name)} escapes ${root}`);
    return full;
  };
  const errno = (e: unknown) => (e as { code?: string }).code;
  const open = (name: string): Promise<FileHandle> => {
    let h = handles.get(name);
    if (!h) {
      h = fs.open(resolveName(name), 'r').catch((e) => {
        handles.delete(name);
        if (errno(e) === 'ENOENT') throw notFound(name, root);
        throw new CheckpointError(name, `cannot open: ${(e as Error).message}`, undefined, { cause: e });
      });
      handles.set(name, h);
    }
    return h;
  };
  const size = async (name: string): Promise<number> => {
    try {
      const s = await fs.stat(resolveName(name));
      if (!s.isFile()) throw new CheckpointError(name, 'is not a regular file');
      return s.size;
    } catch (e) {
      if (errno(e) === 'ENOENT') throw notFound(name, root);
      throw e;
    }
  };
  const source: CheckpointSource = {
    description: root,
    async list() { return (await fs.readdir(root, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name); },
    size,
    async exists(name) {
      try { await size(name); return true; } catch (e) { if (e instanceof CheckpointError && /not found/.test(e.message)) return false; throw e; }
    },
    async readText(name) {
      try {
        return await fs.readFile(resolveName(name), 'utf8');
      } catch (e) {
        if (errno(e) === 'ENOENT') throw notFound(name, root);
        throw new CheckpointError(name, `cannot read: ${(e as Error).message}`, undefined, { cause: e });
      }
    },
    async readTextIfExists(name) {
      return (await source.exists(name)) ? source.readText(name) : undefined;
    },
    async readRange(name, start, end, into) {
      const len = end - start;
      if (!(Number.isSafeInteger(start) && start >= 0 && len >= 0)) throw new RangeError(`${name}: bad byte range [${start}, ${end})`);
      if (into && into.byteLength < len) throw new RangeError(`readRange: buffer of ${into.byteLength} bytes is smaller than ${len}`);
      const out = into ? into.subarray(0, len) : new Uint8Array(len);
      const fh = await open(name);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(out, got, len - got, start + got);
        if (bytesRead === 0) throw new CheckpointError(name, `file ended after ${start + got} bytes, expected at least ${end} (truncated or changed while loading?)`);
        got += bytesRead;
      }
      return out;
    },
    async close() {
      const hs = [...handles.values()];
      handles.clear();
      await Promise.all(hs.map((h) => h.then((x) => x.close(), () => {})));
    },
  };
  return source;
}
