// Hugging Face Hub model ids and file URLs, shared by Node and browsers (no `node:` imports here).
//
// A model id is `org/name` with an optional `@revision` (branch, tag or commit), e.g.
// `Zyphra/Zamba2-1.2B-instruct@main`. Its files live at
//   remoteHost + pathTemplate(model, revision) + file
// which is how transformers.js builds them (`env.remoteHost` = 'https://huggingface.co/',
// `env.remotePathTemplate` = '{model}/resolve/{revision}/'), so a mirror or a local test server
// that copies the Hub's layout works by changing the host, and one with another layout by
// changing the template.
//
// Environment (Node; ignored in browsers, which have no process.env):
//   MSL_REMOTE_HOST  replaces the default remote host
//   MSL_CACHE_DIR    the Node download cache (see hub-cache-node.ts)
//   HF_TOKEN         sent as `Authorization: Bearer <token>` for private and gated models
//   MSL_OFFLINE=1 or HF_HUB_OFFLINE=1   Node downloads use the cache only

import { CheckpointError, InputError } from '../errors.ts';

export const DEFAULT_REMOTE_HOST = 'https://huggingface.co/';
export const DEFAULT_PATH_TEMPLATE = '{model}/resolve/{revision}/';
export const DEFAULT_REVISION = 'main';

export interface HubModelRef {
  org: string;
  name: string;
  /** `org/name`, without the revision. */
  repo: string;
  /** The `@revision` part when the id had one. */
  revision?: string;
}

export interface HubUrlOptions {
  /** Default `MSL_REMOTE_HOST` or 'https://huggingface.co/'. */
  remoteHost?: string;
  /** `{model}` and `{revision}` are substituted. Default '{model}/resolve/{revision}/'. */
  pathTemplate?: string;
  /** Default: the id's `@revision`, else 'main'. */
  revision?: string;
}

// Repo name parts follow huggingface_hub's validate_repo_id: letters, digits, '-', '_', '.',
// not starting or ending with '-' or '.', no '--' or '..' (the Hub reserves '--' as the
// separator in cache folder names, which we reuse), at most 96 characters in all.
const PART = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
// A revision is a branch, tag or commit hash; branches may contain '/' (refs/pr/1).
const REVISION = /^[A-Za-z0-9_.\-/]+$/;

function validPart(p: string): boolean {
  return PART.test(p) && !p.includes('--') && !p.includes('..');
}

/** Reads an environment variable in Node; undefined in browsers. */
export function envVar(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = proc?.env?.[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Splits `org/name[@revision]` into its parts, or returns null when `s` is not shaped like a
 * model id (URLs, absolute or relative paths with `./`, `~`, backslashes, one or three parts).
 * Purely syntactic: see isHubModelId for the check against local paths.
 */
export function parseHubModelId(s: string): HubModelRef | null {
  if (typeof s !== 'string' || s.length === 0 || s.length > 200) return null;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(s)) return null; // any URL scheme, also `C:` drive letters
  let id = s;
  let revision: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    id = s.slice(0, at);
    revision = s.slice(at + 1);
    if (!REVISION.test(revision) || revision.includes('..') || revision.startsWith('/') || revision.endsWith('/')) return null;
  }
  if (id.length > 96) return null;
  const parts = id.split('/');
  if (parts.length !== 2) return null;
  const [org, name] = parts as [string, string];
  if (!validPart(org) || !validPart(name)) return null;
  return { org, name, repo: `${org}/${name}`, ...(revision !== undefined ? { revision } : {}) };
}

type PathExists = (p: string) => boolean;

// In Node the default is fs.existsSync, reached through process.getBuiltinModule (Node >= 20.16)
// so this module stays free of `node:` imports for browser bundles. Browsers have no local paths.
function defaultPathExists(): PathExists | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.('node:fs') as { existsSync(p: string): boolean } | undefined;
  return fs ? (p) => fs.existsSync(p) : undefined;
}

/**
 * True when `s` names a Hub model: `org/name` with an optional `@revision`, not a URL, and not
 * a path that exists locally (a folder `models/tiny` wins over a Hub model of that name).
 * `pathExists` defaults to fs.existsSync in Node and to "nothing exists" in browsers.
 */
export function isHubModelId(s: string, pathExists: PathExists | undefined = defaultPathExists()): boolean {
  if (parseHubModelId(s) === null) return false;
  return !(pathExists?.(s) ?? false);
}

/** Like parseHubModelId but throws InputError with the accepted form when `s` is not an id. */
export function requireHubModelId(s: string): HubModelRef {
  const ref = parseHubModelId(s);
  if (!ref) {
    throw new InputError(
      `"${s}" is not a Hugging Face model id: expected "org/name" or "org/name@revision" ` +
        `(letters, digits, '-', '_', '.'), e.g. "Zyphra/Zamba2-1.2B-instruct"`,
    );
  }
  return ref;
}

/** The revision to use: an explicit option and an `@revision` in the id must agree. */
export function resolveRevision(ref: HubModelRef, revision?: string): string {
  if (revision !== undefined && ref.revision !== undefined && revision !== ref.revision) {
    throw new InputError(`model id ${ref.repo}@${ref.revision} conflicts with revision option "${revision}": give one of them`);
  }
  const r = revision ?? ref.revision ?? DEFAULT_REVISION;
  if (!REVISION.test(r) || r.includes('..')) throw new InputError(`invalid revision "${r}"`);
  return r;
}

/** The remote host with exactly one trailing slash: option, else MSL_REMOTE_HOST, else the Hub. */
export function remoteHost(host?: string): string {
  const h = host ?? envVar('MSL_REMOTE_HOST') ?? DEFAULT_REMOTE_HOST;
  return h.endsWith('/') ? h : `${h}/`;
}

/** `HF_TOKEN` (or an explicit token) as request headers; empty when there is none. */
export function authHeaders(token?: string): Record<string, string> {
  const t = token ?? envVar('HF_TOKEN');
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/**
 * The URL of the model's folder, ending in '/': the base for a URL checkpoint source, which
 * appends file names to it. The revision is percent-encoded as one path segment (as
 * transformers.js does), so `refs/pr/1` becomes `refs%2Fpr%2F1`, which the Hub accepts.
 */
export function hubModelBaseUrl(modelId: string, opts: HubUrlOptions = {}): string {
  const ref = requireHubModelId(modelId);
  const revision = resolveRevision(ref, opts.revision);
  const template = opts.pathTemplate ?? DEFAULT_PATH_TEMPLATE;
  const path = template.replaceAll('{model}', ref.repo).replaceAll('{revision}', encodeURIComponent(revision)).replace(/^\/+/, '');
  const base = remoteHost(opts.remoteHost) + path;
  return base.endsWith('/') ? base : `${base}/`;
}

/**
 * The URL of `file` (relative, '/'-separated, e.g. 'model-00001-of-00002.safetensors') in a Hub
 * model: hubModelBaseUrl plus the file name, each path segment percent-encoded.
 */
export function hubFileUrl(modelId: string, file: string, opts: HubUrlOptions = {}): string {
  const base = hubModelBaseUrl(modelId, opts);
  checkRelativeFile(file);
  return base + file.split('/').map(encodeURIComponent).join('/');
}

/**
 * Rejects file names that could leave the model folder once written to disk (shard names come
 * from model.safetensors.index.json, which is remote input).
 */
export function checkRelativeFile(file: string): void {
  const bad =
    file.length === 0 ||
    file.startsWith('/') ||
    file.includes('\\') ||
    file.includes('\0') ||
    /^[A-Za-z]:/.test(file) ||
    file.split('/').some((seg) => seg === '' || seg === '.' || seg === '..');
  if (bad) throw new InputError(`refusing Hub file name "${file}": it must be a relative path inside the model folder`);
}

/**
 * The file names of the shards listed in a model.safetensors.index.json, in first-seen order.
 * `source` names the index (its URL) in errors.
 */
export function shardFilesFromIndex(index: unknown, source: string): string[] {
  const fail = (reason: string) => new CheckpointError(source, reason);
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object') throw fail('model.safetensors.index.json has no "weight_map" object');
  const files: string[] = [];
  for (const v of Object.values(map as Record<string, unknown>)) {
    if (typeof v !== 'string') throw fail(`weight_map values must be file names, got ${JSON.stringify(v)}`);
    if (!files.includes(v)) files.push(v);
  }
  if (files.length === 0) throw fail('weight_map is empty');
  for (const f of files) {
    try {
      checkRelativeFile(f);
    } catch {
      throw fail(`shard "${f}" is not a plain relative file name`);
    }
  }
  return files;
}
