// Parity suite (issue 5 acceptance), run once per tokenizer family from its own test file so each
// file stays well under a minute: for >= 10,000 deterministic strings in every category, our ids
// equal @huggingface/tokenizers' ids exactly, and decode(encode(s)) == s wherever the tokenizer is
// lossless. Exact equality, no tolerance: ids are integers and decoding is deterministic.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generateCorpus } from './corpus.ts';
import { type Family, loadOracle, loadOurs } from './load.ts';

const hasLone = (s: string): boolean => /\p{Cs}/u.test(s);

export function runParitySuite(fam: Family): void {
  const test = suite(`tokenizer parity ${fam}`);
  const corpus = generateCorpus();
  const oracleIds: number[][] = [];

  test('corpus has >= 10,000 strings, every category, and >= 100 KB long inputs', () => {
    assert.ok(corpus.length >= 10000, `corpus has ${corpus.length}`);
    const cats = new Set(corpus.map((c) => c.category));
    for (const c of ['prose', 'code', 'numbers', 'whitespace', 'lead-trail', 'cjk', 'emoji', 'combining', 'specials', 'lone-surrogates', 'mixture', 'long']) assert.ok(cats.has(c), c);
    const long = corpus.filter((c) => c.category === 'long');
    assert.ok(long.length >= 2 && long.every((c) => new TextEncoder().encode(c.text).length >= 100 * 1024));
    assert.ok(corpus.some((c) => hasLone(c.text)));
  });

  test(`${fam}: ids identical to @huggingface/tokenizers on the whole corpus`, async () => {
    const t = await loadOurs(fam);
    const o = loadOracle(fam);
    const bad: string[] = [];
    for (const { category, text } of corpus) {
      const a = t.encode(text);
      const b = o.encode(text).ids;
      oracleIds.push(b);
      if (a.length !== b.length || a.some((v, i) => v !== b[i])) {
        if (bad.length < 5) bad.push(`${category} ${JSON.stringify(text.slice(0, 200))}\n  ours   ${JSON.stringify(a.slice(0, 40))}\n  oracle ${JSON.stringify(b.slice(0, 40))}`);
        else bad.push(category);
      }
    }
    assert.is(bad.length, 0, `${bad.length} mismatches:\n${bad.slice(0, 5).join('\n')}`);
  });

  test(`${fam}: addSpecialTokens=false matches the oracle`, async () => {
    const t = await loadOurs(fam);
    const o = loadOracle(fam);
    for (const { text } of corpus.filter((_, i) => i % 10 === 0)) {
      assert.equal(t.encode(text, { addSpecialTokens: false }), o.encode(text, { add_special_tokens: false }).ids, text);
    }
  });

  test(`${fam}: decode(encode(s)) == s where lossless`, async () => {
    const t = await loadOurs(fam);
    let checked = 0;
    for (const { text } of corpus) {
      // Lone surrogates become U+FFFD (not representable in UTF-8). For the SentencePiece family,
      // every section between added tokens gets its own '▁' prefix, so text with special-token
      // strings does not round-trip (HF behaves the same).
      if (hasLone(text)) continue;
      if (fam === 'llama2' && /<s>|<\/s>|<unk>/.test(text)) continue;
      const ids = t.encode(text, { addSpecialTokens: false });
      const back = t.decode(ids, { cleanUpTokenizationSpaces: false });
      if (back !== text) assert.ok(false, `round trip failed for ${JSON.stringify(text.slice(0, 200))}: ${JSON.stringify(back.slice(0, 200))}`);
      checked++;
    }
    assert.ok(checked > 8000, `only ${checked} lossless strings checked`);
  });

  test(`${fam}: decode matches the oracle (with and without special tokens)`, async () => {
    const t = await loadOurs(fam);
    const o = loadOracle(fam);
    assert.is(oracleIds.length, corpus.length);
    for (let i = 0; i < corpus.length; i += 2) {
      const text = corpus[i]!.text, ids = oracleIds[i]!;
      if (ids.length === 0) continue; // the oracle rejects an empty id list
      // Known, intended difference: HF JS's ByteFallback decoder uses a BOM-stripping TextDecoder,
      // so a U+FEFF at the start of a byte run vanishes; ours keeps it (decode is lossless).
      if (fam === 'llama2' && text.includes('\ufeff')) continue;
      assert.is(t.decode(ids), o.decode(ids), text);
      assert.is(t.decode(ids, { skipSpecialTokens: true }), o.decode(ids, { skip_special_tokens: true }), text);
    }
  });

  test.run();
}
