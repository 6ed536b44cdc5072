// `info`: what a checkpoint is and what running it will cost on this device.
import type { MambaModel, ModelConfig } from '../index.node.ts';
import { planMemory, type MemoryPlan } from '../runtime/planner.ts';
import { expectedTensors } from '../models/layout.ts';
import { LayerKind } from '../models/config.ts';
import type { ParsedArgs } from './args.ts';
import { formatBytes, formatCount } from './format.ts';
import { type CliIo, writeAll } from './io.ts';

type InfoArgs = Extract<ParsedArgs, { command: 'info' }>;

/** Parameters the config implies (tied embeddings counted once), the same list the loader checks. */
export function parameterCount(config: ModelConfig): number {
  let n = 0;
  for (const t of expectedTensors(config)) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** "38 layers: 32 mamba, 6 hybrid (2 shared blocks)" or "24 mamba layers". */
export function layerPlan(config: ModelConfig): string {
  if (config.arch === 'mamba2') return `${config.numLayers} mamba layers`;
  const hybrid = config.layerKinds.filter((k) => k === LayerKind.Hybrid).length;
  const b = config.numMemBlocks;
  return `${config.numLayers} layers: ${config.numLayers - hybrid} mamba, ${hybrid} hybrid (${b} shared block${b === 1 ? '' : 's'})`;
}

/** The shared blocks' low-rank adapters, or undefined for Mamba2. */
export function adapterSummary(config: ModelConfig): string | undefined {
  if (config.arch !== 'zamba2') return undefined;
  const where = config.useSharedAttentionAdapter ? 'q/k/v and MLP' : 'MLP';
  return `LoRA rank ${config.adapterRank} on ${where}, one set per hybrid layer`;
}

export interface InfoReport {
  model: string;
  arch: string;
  parameters: number;
  dtype: string;
  /** Storage formats of the matrices (several under a quantize recipe). */
  matrixDtypes: string[];
  layers: string;
  hybridLayerIds?: readonly number[];
  adapters?: string;
  hidden: number;
  vocab: number;
  mixer: { heads: number; headDim: number; dState: number; groups: number; convKernel: number; chunkSize: number };
  attention?: { heads: number; kvHeads: number; headDim: number; ropeTheta: number; rope: boolean; maxPositions: number };
  tokenizer: boolean;
  device: { backend: string; adapter: string; software: boolean; shaderF16: boolean; subgroups: boolean; maxStorageBindingBytes: number };
  memory: MemoryPlan & { maxTokens: number; kvPer1024Tokens: number; kvDtype: string };
}

export function infoReport(model: MambaModel, args: InfoArgs): InfoReport {
  const c = model.config;
  const plan = planMemory(c, { maxTokens: args.maxTokens, weightBytes: model.weightBytes, prefillChunk: model.engine.opts.prefillChunk, kvDtype: model.engine.opts.kvDtype, backend: model.be });
  const ctx = model.backend === 'webgpu' ? model.ctx : undefined;
  return {
    model: args.model,
    arch: c.arch,
    parameters: parameterCount(c),
    // The lm head (or the tied embedding) is a matrix: it carries the matrices' storage dtype.
    dtype: model.engine.runner.headWeight.dtype,
    matrixDtypes: model.matrixDtypes(),
    layers: layerPlan(c),
    ...(c.arch === 'zamba2' ? { hybridLayerIds: c.hybridLayerIds, adapters: adapterSummary(c) } : {}),
    hidden: c.hiddenSize,
    vocab: c.vocabSize,
    mixer: { heads: c.nHeads, headDim: c.headDim, dState: c.dState, groups: c.nGroups, convKernel: c.convKernel, chunkSize: c.chunkSize },
    ...(c.arch === 'zamba2'
      ? { attention: { heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.attentionHeadDim, ropeTheta: c.ropeTheta, rope: c.useMemRope, maxPositions: c.maxPositionEmbeddings } }
      : {}),
    tokenizer: model.tokenizer !== undefined,
    device: {
      backend: model.backend,
      adapter: model.deviceName,
      software: ctx?.adapter.isSoftware ?? false,
      shaderF16: ctx?.features.shaderF16 ?? false,
      subgroups: ctx?.features.subgroups ?? false,
      maxStorageBindingBytes: model.be.limits.maxBindingBytes,
    },
    memory: { ...plan, maxTokens: args.maxTokens, kvPer1024Tokens: plan.kvBytesPerToken * 1024, kvDtype: model.engine.opts.kvDtype },
  };
}

export function infoText(r: InfoReport): string {
  const m = r.memory;
  const row = (k: string, v: string) => `${k.padEnd(12)}${v}`;
  const lines = [
    row('model', r.model),
    row('arch', r.arch),
    row('parameters', `${formatCount(r.parameters)} (${r.parameters.toLocaleString('en-US')})`),
    row('dtype', `${r.dtype} head, ${r.matrixDtypes.join('/')} matrices; f32 vectors, state and activations`),
    row('layers', r.layers + (r.hybridLayerIds?.length ? `; hybrid at ${r.hybridLayerIds.join(', ')}` : '')),
    row('mixer', `hidden ${r.hidden}, ${r.mixer.heads} heads × ${r.mixer.headDim}, state ${r.mixer.dState}, ${r.mixer.groups} group${r.mixer.groups === 1 ? '' : 's'}, conv ${r.mixer.convKernel}`),
  ];
  if (r.attention) {
    const a = r.attention;
    lines.push(row('attention', `${a.heads} heads (${a.kvHeads} kv) × ${a.headDim}, ${a.rope ? `rope θ ${a.ropeTheta}` : 'no rope'}, ≤ ${a.maxPositions} positions`));
  }
  if (r.adapters) lines.push(row('adapters', r.adapters));
  lines.push(
    row('vocab', `${r.vocab}${r.tokenizer ? '' : ' (no tokenizer.json)'}`),
    row('device', r.device.backend === 'webgpu'
      ? `WebGPU on ${r.device.adapter}${r.device.software ? ' (software)' : ''}, shader-f16 ${r.device.shaderF16 ? 'yes' : 'no'}, subgroups ${r.device.subgroups ? 'yes' : 'no'}`
      : `${r.device.backend} (${r.device.adapter})`),
    row('memory', `for ${m.maxTokens} tokens, prefill blocks of ${m.prefillChunk}:`),
    row('  weights', formatBytes(m.weights)),
    row('  state', `${formatBytes(m.state)} (fixed, whatever the length)`),
    row('  KV cache', m.kvBytesPerToken > 0 ? `${formatBytes(m.kvPer1024Tokens)} per 1024 tokens in ${m.kvDtype} (${formatBytes(m.kvCache)} for ${m.maxTokens})` : 'none'),
    row('  scratch', formatBytes(m.scratch)),
    row('  total', formatBytes(m.total)),
  );
  return lines.join('\n');
}

export async function runInfo(model: MambaModel, args: InfoArgs, io: CliIo): Promise<void> {
  const r = infoReport(model, args);
  await writeAll(io.stdout, args.json ? `${JSON.stringify(r)}\n` : `${infoText(r)}\n`);
}
