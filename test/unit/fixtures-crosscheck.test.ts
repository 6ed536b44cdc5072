// The library's config parser (src/models/parse-config.ts) and expected-tensor layout
// (src/models/layout.ts) against the fixture generator and the reference's own config reading,
// for every variant x spelling: two independent readings of docs/model.md must agree.
// Note on the Zyphra spelling: its kv_channels is H / heads, and Zyphra's attention uses head dim
// 2 * kv_channels (Zyphra/transformers_zamba2 attention.py: linear_qkv is [6H, 2H] viewed as
// heads x 3 x (2 * kv_channels)), so the head dim must come out as 2H / heads there too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../src/models/parse-config.ts';
import { expectedTensors } from '../../src/models/layout.ts';
import { LayerKind } from '../../src/models/config.ts';
import {
  MAMBA2_VARIANTS, ZAMBA2_SPELLINGS, ZAMBA2_VARIANTS, makeFixture, type FixtureOptions,
} from '../fixtures/index.ts';
import { parseMamba2RefConfig, parseZamba2RefConfig } from '../reference/index.ts';

const CASES: FixtureOptions[] = [
  ...ZAMBA2_VARIANTS.flatMap((variant) => ZAMBA2_SPELLINGS.map((spelling) =>
    ({ arch: 'zamba2', variant, spelling, dtype: 'bf16', seed: 1 }) as FixtureOptions)),
  ...MAMBA2_VARIANTS.map((variant) => ({ arch: 'mamba2', variant, dtype: 'f16', seed: 1 }) as FixtureOptions),
];

for (const o of CASES) {
  const fx = makeFixture(o);
  test(`parseConfig agrees with the reference reading: ${fx.name}`, () => {
    const c = parseConfig(fx.configJson);
    assert.is(c.arch, o.arch);
    const r = o.arch === 'zamba2' ? parseZamba2RefConfig(fx.config) : parseMamba2RefConfig(fx.config);
    const m = r.mixer;
    assert.equal(
      [c.vocabSize, c.hiddenSize, c.numLayers, c.dState, c.nHeads, c.headDim, c.nGroups, c.convKernel, c.dInner, c.convDim],
      [r.vocab, r.H, r.numLayers, m.N, m.NH, m.P, m.G, m.K, m.di, m.convDim]);
    assert.is(c.dtMin, m.dtMin, 'dtMin');
    assert.is(c.dtMax, m.dtMax, 'dtMax');
    assert.is(c.mixerNormEps, m.normEps, 'mixer norm eps');
    if (c.arch === 'zamba2' && 'hybridIds' in r) {
      assert.is(c.rmsNormEps, r.eps);
      assert.equal([...c.hybridLayerIds], r.hybridIds);
      assert.equal(c.layerKinds.map((k) => k === LayerKind.Hybrid), r.hybrid);
      assert.equal(
        [c.numMemBlocks, c.numAttentionHeads, c.numKeyValueHeads, c.attentionHeadDim, c.intermediateSize, c.adapterRank,
          c.useSharedAttentionAdapter, c.useMemRope, c.ropeTheta, c.tieWordEmbeddings],
        [r.numMemBlocks, r.heads, r.kvHeads, r.hd, r.F, r.adapterRank, r.attnAdapter, r.rope, r.ropeTheta, true]);
      assert.is(c.bosTokenId, 1);
      assert.equal([...c.eosTokenIds], [2]);
    } else if (c.arch === 'mamba2' && 'tied' in r) {
      assert.is(c.rmsNormEps, r.eps);
      assert.is(c.tieWordEmbeddings, r.tied);
    }
  });

  test(`expectedTensors lists exactly the fixture's tensors and shapes: ${fx.name}`, () => {
    const exp = expectedTensors(parseConfig(fx.configJson));
    assert.equal(exp.map((t) => t.name).sort(), [...fx.weights.keys()].sort());
    for (const t of exp) assert.equal([...t.shape], [...fx.weights.get(t.name)!.shape], t.name);
  });
}

test.run();
