// Tokenizer API behaviour: loading both families, metadata, merge spellings, added-token options
// (checked against @huggingface/tokenizers), unsupported components, the O(n log n) merge loop,
// the streaming detokenizer, chat templates and error paths. Parity on the big corpus lives in
// tokenizer-parity-*.test.ts; random-Unicode fuzzing in tokenizer-fuzz.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tokenizer as Oracle } from '@huggingface/tokenizers';
import { InputError, UnsupportedError } from '../../src/errors.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { fromFiles } from '../../src/tokenizer/node.ts';
import { generateCorpus, longDocument, mulberry32 } from '../tokenizer-corpus/corpus.ts';
import { loadOracle, loadOurs, modelDir, readFiles } from '../tokenizer-corpus/load.ts';

const sample = generateCorpus(11, 40, 0);

test('metadata: vocab size, BOS/EOS ids, token <-> id', async () => {
  const l2 = await loadOurs('llama2');
  const l3 = await loadOurs('llama3');
  assert.is(l2.vocabSize, 32000);
  assert.is(l2.bosTokenId, 1);
  assert.equal(l2.eosTokenIds, [2]);
  assert.is(l3.vocabSize, 128256);
  assert.is(l3.bosTokenId, 128000);
  assert.equal(l3.eosTokenIds, [128001]);
  assert.is(l2.tokenToId('▁the'), loadOracle('llama2').token_to_id('▁the'));
  assert.is(l2.idToToken(13), '<0x0A>');
  assert.is(l3.idToToken(128009), '<|eot_id|>');
  assert.is(l3.tokenToId('<|eot_id|>'), 128009);
  assert.is(l3.idToToken(-1), undefined);
  assert.is(l3.idToToken(1e9), undefined);
  // BOS is prepended for the SentencePiece family only (llama3's file has a ByteLevel post-processor).
  assert.is(l2.encode('hi')[0], 1);
  assert.not.equal(l3.encode('hi')[0], 128000);
  assert.is(l2.encode('hi', { addSpecialTokens: false })[0] !== 1, true);
});

test('fromFiles (Node) loads tokenizer.json + tokenizer_config.json from a folder', async () => {
  const t = await fromFiles(modelDir('llama2'));
  assert.equal(t.encode('Hello world'), loadOracle('llama2').encode('Hello world').ids);
});

test('merges: "a b" and ["a", "b"] spellings give identical tokenizers', async () => {
  const { json, config } = readFiles('llama2');
  const obj = JSON.parse(json);
  obj.model.merges = (obj.model.merges as string[]).map((m) => m.split(' '));
  const arrayForm = await Tokenizer.fromJSON(obj, config);
  const stringForm = await loadOurs('llama2');
  for (const { text } of sample) assert.equal(arrayForm.encode(text), stringForm.encode(text), text);
});

test('added tokens: lstrip / rstrip / normalized / non-special match the oracle', async () => {
  const { json, config } = readFiles('llama2');
  const obj = JSON.parse(json);
  obj.added_tokens.push(
    { id: 32000, content: '<mask>', single_word: false, lstrip: true, rstrip: false, normalized: false, special: true },
    { id: 32001, content: '<sep>', single_word: false, lstrip: false, rstrip: true, normalized: false, special: true },
    { id: 32002, content: 'hello world', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
  );
  const ours = await Tokenizer.fromJSON(obj, config);
  const oracle = new Oracle(obj, JSON.parse(config));
  const texts = ['a <mask> b', 'a   <mask>   b', 'x<sep>   y', '<sep>\n\nz', 'say hello world twice: hello world!', 'hello worldhello world', ' <mask><sep> hello world '];
  for (const s of texts) {
    assert.equal(ours.encode(s), oracle.encode(s).ids, s);
    assert.is(ours.decode(ours.encode(s)), oracle.decode(oracle.encode(s).ids), s);
    assert.is(ours.decode(ours.encode(s), { skipSpecialTokens: true }), oracle.decode(oracle.encode(s).ids, { skip_special_tokens: true }), s);
  }
  assert.ok(ours.encode('a <mask> b').includes(32000));
  assert.ok(ours.isSpecial(32000) && !ours.isSpecial(32002));
});

test('Metaspace-style SentencePiece file (newer Mistral/Llama exports) matches the oracle', async () => {
  // Same vocab as llama2, but the '▁' handling moved from the normalizer to a Metaspace
  // pre-tokenizer (prepend_scheme "first": only the first section gets the '▁' prefix) and a
  // Metaspace decoder.
  const { json, config } = readFiles('llama2');
  const obj = JSON.parse(json);
  obj.normalizer = null;
  obj.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  obj.decoder = { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }, { type: 'ByteFallback' }] };
  const ours = await Tokenizer.fromJSON(obj, config);
  const oracle = new Oracle(obj, JSON.parse(config));
  for (const { text } of sample) {
    const want = oracle.encode(text).ids;
    assert.equal(ours.encode(text), want, text);
    if (want.length > 0 && !text.includes('\ufeff')) assert.is(ours.decode(want), oracle.decode(want), text);
  }
  // Random ids, often starting with a byte token such as <0x20> (whose space the Metaspace
  // decoder must keep: it only drops a leading '▁' of the first token) or a special token.
  for (const ids of [[3 + 0x20, 1000], [ours.tokenToId('▁the')!, 3 + 0x20], [1, ours.tokenToId('▁the')!]]) {
    assert.is(ours.decode(ids), oracle.decode(ids), JSON.stringify(ids));
  }
  assert.is(ours.decode([3 + 0x20, ours.tokenToId('▁the')!]), '  the');
  const r = mulberry32(17);
  for (let i = 0; i < 300; i++) {
    const ids: number[] = [];
    const n = 1 + Math.floor(r() * 8);
    for (let k = 0; k < n; k++) ids.push(r() < 0.5 ? 3 + Math.floor(r() * 256) : Math.floor(r() * 32000));
    if (ids.some((id, k) => id === 3 + 0xef && ids[k + 1] === 3 + 0xbb)) continue; // HF JS BOM quirk
    for (const skip of [false, true]) {
      const want = oracle.decode(ids, { skip_special_tokens: skip });
      assert.is(ours.decode(ids, { skipSpecialTokens: skip }), want, JSON.stringify(ids));
      const d = ours.createStreamDecoder({ skipSpecialTokens: skip });
      assert.is(ids.map((id) => d.push(id)).join('') + d.flush(), want, `stream ${JSON.stringify(ids)}`);
    }
  }
});

test('unsupported components fail at load with an error naming them', async () => {
  const { json } = readFiles('llama2');
  const cases: [string, (o: any) => void][] = [
    ['Precompiled', (o) => { o.normalizer = { type: 'Precompiled', precompiled_charsmap: '' }; }],
    ['BertPreTokenizer', (o) => { o.pre_tokenizer = { type: 'BertPreTokenizer' }; }],
    ['Unigram', (o) => { o.model.type = 'Unigram'; }],
    ['RobertaProcessing', (o) => { o.post_processor = { type: 'RobertaProcessing' }; }],
    ['WordPiece', (o) => { o.decoder = { type: 'WordPiece' }; }],
    ['MergedWithPrevious', (o) => { o.pre_tokenizer = { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false }; }],
    ['atomic group', (o) => { o.pre_tokenizer = { type: 'Split', pattern: { Regex: '(?>a|b)' }, behavior: 'Isolated', invert: false }; }],
  ];
  for (const [name, edit] of cases) {
    const o = JSON.parse(json);
    edit(o);
    try {
      await Tokenizer.fromJSON(o);
      assert.unreachable(`${name} should throw`);
    } catch (e) {
      assert.instance(e, UnsupportedError, name);
      assert.ok((e as Error).message.includes(name), (e as Error).message);
    }
  }
});

test('BPE merge loop is O(n log n): one 400 KB SentencePiece word costs < 24x a 50 KB one', async () => {
  // With no pre-tokenizer the whole text is one BPE word; spaces are removed so that even the
  // exact cut before each '▁' cannot shorten it: one word of 400 KB. A rescanning merge loop
  // would be quadratic (64x for 8x the input). The bound leaves 3x slack over linear for log n
  // growth and timing noise on a shared machine (ratios of 6-14x seen under load); min-of-5
  // timings damp the noise.
  const t = await loadOurs('llama2');
  const doc = longDocument(mulberry32(3), 400 * 1024).replace(/\s+/g, '');
  const small = doc.slice(0, doc.length >> 3);
  const time = (s: string): number => {
    let best = Infinity;
    for (let k = 0; k < 5; k++) { const t0 = performance.now(); t.encode(s); best = Math.min(best, performance.now() - t0); }
    return best;
  };
  time(small);
  const a = time(small), b = time(doc);
  assert.ok(b < 24 * a, `50 KB: ${a.toFixed(1)} ms, 400 KB: ${b.toFixed(1)} ms`);
});

test('long single BPE words (heap merge path) match the oracle, both families', async () => {
  // Pieces of thousands of symbols: text without spaces (one SentencePiece word even after the
  // cut before '▁'), and for byte-level, runs of letters / punctuation that the split keeps whole.
  const r = mulberry32(41);
  const words: string[] = [];
  for (let i = 0; i < 6; i++) words.push(longDocument(r, 2500).replace(/\s+/g, '').slice(0, 3000));
  let letters = '', punct = '';
  for (let i = 0; i < 3000; i++) {
    letters += String.fromCharCode(97 + Math.floor(r() * 26));
    punct += '!?.,;:-_=+*&^%$#@'[Math.floor(r() * 17)];
  }
  words.push(letters, punct, 'ab'.repeat(1500), 'a'.repeat(3001));
  for (const fam of ['llama2', 'llama3'] as const) {
    const t = await loadOurs(fam), o = loadOracle(fam);
    for (const w of words) assert.equal(t.encode(w), o.encode(w).ids, `${fam} ${w.slice(0, 60)}`);
  }
});

test('encodeBatch equals encode per text', async () => {
  const t = await loadOurs('llama3');
  const texts = sample.slice(0, 50).map((c) => c.text);
  assert.equal(t.encodeBatch(texts), texts.map((s) => t.encode(s)));
  assert.equal(t.encodeBatch(texts, { addSpecialTokens: false }), texts.map((s) => t.encode(s, { addSpecialTokens: false })));
});

function streamAll(t: Tokenizer, ids: number[], skipSpecialTokens = false): string[] {
  const d = t.createStreamDecoder({ skipSpecialTokens });
  const parts = ids.map((id) => d.push(id));
  parts.push(d.flush());
  return parts;
}

test('stream decoder: pieces concatenate to decode(), both families, with/without specials', async () => {
  for (const fam of ['llama2', 'llama3'] as const) {
    const t = await loadOurs(fam);
    for (const { text } of sample) {
      const ids = t.encode(text);
      for (const skip of [false, true]) {
        const parts = streamAll(t, ids, skip);
        assert.is(parts.join(''), t.decode(ids, { skipSpecialTokens: skip }), `${fam} ${JSON.stringify(text)}`);
        // No U+FFFD unless the text itself decodes to one (lone surrogates do).
        if (!t.decode(ids).includes('\ufffd')) assert.ok(!parts.some((p) => p.includes('\ufffd')), text);
      }
    }
  }
});

test('stream decoder holds back split byte-fallback / byte-level sequences', async () => {
  const l2 = await loadOurs('llama2');
  // Characters outside the SentencePiece vocab are spelled as <0xXX> byte tokens, one per byte.
  const ids = l2.encode('x 🦄 y', { addSpecialTokens: false });
  const byteIds = ids.filter((id) => /^<0x[0-9A-F]{2}>$/.test(l2.idToToken(id)!));
  assert.is(byteIds.length, 4, 'the unicorn is four byte-fallback tokens');
  const parts = streamAll(l2, ids);
  assert.equal(parts.filter((p) => p.length > 0), ['x', ' ', '🦄', ' y']);
  // Byte-level: a 4-byte emoji may be split across tokens; nothing is emitted until complete.
  const l3 = await loadOurs('llama3');
  for (const s of ['🫠🫠', '𠀀𠀁 中', 'e\u0301\u0302']) {
    const p = streamAll(l3, l3.encode(s));
    assert.is(p.join(''), s);
    assert.ok(!p.some((x) => x.includes('\ufffd')));
  }
});

test('stream decoder: a dangling incomplete sequence becomes U+FFFD at flush, like decode()', async () => {
  const l2 = await loadOurs('llama2');
  const ids = [l2.tokenToId('▁a')!, l2.tokenToId('<0xF0>')!, l2.tokenToId('<0x9F>')!];
  const parts = streamAll(l2, ids);
  assert.equal(parts, ['a', '', '', '\ufffd']);
  assert.is(parts.join(''), l2.decode(ids));
  assert.is(l2.decode(ids), loadOracle('llama2').decode(ids));
});

test('stream decoder with clean_up_tokenization_spaces (llama3 config) equals decode()', async () => {
  const t = await loadOurs('llama3');
  for (const s of ["Hello , world . Is n't it ? I 'm here 's x", 'a .b', 'x , , y', "they 're  ' s"]) {
    const ids = t.encode(s);
    assert.is(streamAll(t, ids).join(''), t.decode(ids), s);
    assert.is(t.decode(ids), loadOracle('llama3').decode(ids), s);
  }
});

test('chat template (llama3 tokenizer_config) renders and tokenizes', async () => {
  const t = await loadOurs('llama3');
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '  Hi there  ' }];
  const text = t.applyChatTemplate(messages, { addGenerationPrompt: true });
  const expected = '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';
  assert.is(text, expected);
  const ids = t.applyChatTemplate(messages, { addGenerationPrompt: true, tokenize: true });
  assert.equal(ids, loadOracle('llama3').encode(expected, { add_special_tokens: false }).ids);
  assert.is(ids[0], 128000);
});

test('chat template: Mistral-style [INST] template with bos/eos from tokenizer_config', async () => {
  const { json, config } = readFiles('llama2');
  const cfg = JSON.parse(config);
  cfg.chat_template = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
  const t = await Tokenizer.fromJSON(json, cfg);
  const msgs = [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'Bye' }];
  const s = t.applyChatTemplate(msgs);
  assert.is(s, '<s>[INST] Hi [/INST]Hello!</s>[INST] Bye [/INST]');
  const ids = t.applyChatTemplate(msgs, { tokenize: true });
  assert.equal(ids, loadOracle('llama2').encode(s, { add_special_tokens: false }).ids);
  assert.equal(ids.filter((i) => i === 1 || i === 2), [1, 2]);
  // No template: a clear error.
  const plain = await loadOurs('llama2');
  assert.throws(() => plain.applyChatTemplate(msgs), (e: unknown) => e instanceof UnsupportedError);
});

test('errors: bad ids, non-string input, disposed tokenizer', async () => {
  const { json, config } = readFiles('llama2');
  const t = await Tokenizer.fromJSON(json, config);
  assert.throws(() => t.decode([5, 32000]), (e: unknown) => e instanceof InputError && /32000/.test((e as Error).message));
  assert.throws(() => t.decode([-1]), (e: unknown) => e instanceof InputError);
  assert.throws(() => t.decode([1.5]), (e: unknown) => e instanceof InputError);
  assert.throws(() => t.encode(42 as unknown as string), (e: unknown) => e instanceof InputError);
  assert.is(t.decode([]), '');
  t.dispose();
  assert.throws(() => t.encode('x'), (e: unknown) => e instanceof InputError);
});

test.run();
