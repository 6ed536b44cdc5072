// bench/plans: the memory planner's peak for the released Zamba2 configurations at T = 2048,
// batch 1, f16 KV cache, for bf16 weights and the quantize recipes (q8_0; q4_k = llama.cpp's
// Q4_K_M rule), beside issue 10's targets and the reference library's own peak. The planner's
// figure is the allocator's measured peak (test/gpu/model.test.ts checks planned = measured), so
// no device is needed here. Prints a table and one JSON line per row (`memory.plan`).
import { planMemory } from '../src/runtime/planner.ts';
import { parseConfig } from '../src/models/parse-config.ts';
import { zamba2_1p2bConfig, zamba2_2p7bConfig, zamba2_7bConfig } from './synthetic.ts';
import { jsonLine, table } from './common.ts';

const GiB = 2 ** 30;
const models = [
  { name: 'Zamba2-1.2B', config: zamba2_1p2bConfig(), targets: { q4_k: 1.2 }, reference: '1,560 MB (transformers, patched path)' },
  { name: 'Zamba2-2.7B', config: zamba2_2p7bConfig(), targets: { q8_0: 3.5, q4_k: 2.2 }, reference: '3,134 MB (transformers, patched path)' },
  { name: 'Zamba2-7B', config: zamba2_7bConfig(), targets: { q4_k: 6 }, reference: '—' },
];
const rows: (string | number)[][] = [];
for (const m of models) {
  const c = parseConfig(m.config);
  for (const quantize of ['none', 'q8_0', 'q4_k'] as const) {
    const p = planMemory(c, { maxTokens: 2048, quantize, dtype: 'bf16', kvDtype: 'f16', prefillChunk: 256 });
    const target = (m.targets as Record<string, number>)[quantize];
    rows.push([m.name, quantize === 'none' ? 'bf16' : quantize, p.weights / GiB, p.state / GiB, p.kvCache / GiB, p.scratch / GiB, p.total / GiB,
      target !== undefined ? `≤ ${target}` : '', target !== undefined ? (p.total / GiB <= target ? 'met' : 'MISSED') : '']);
    jsonLine('memory.plan', { model: m.name, format: quantize === 'none' ? 'bf16' : quantize, T: 2048, kvDtype: 'f16', ...p, totalGiB: p.total / GiB, targetGiB: target });
  }
}
table('Planned peak at T = 2048, batch 1, f16 KV (GiB)', ['model', 'weights', 'weights GiB', 'state', 'KV', 'scratch', 'total', 'target', ''], rows);
console.log('\nReference library (transformers) peaks at T = 2048 for comparison: 1.2B 1,560 MB, 2.7B 3,134 MB (issue 10).');
