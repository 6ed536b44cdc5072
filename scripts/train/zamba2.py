"""Zamba2 in PyTorch, written from docs/model.md (sections "Zamba2" and "Mixer").

Functional: `forward(cfg, W, ids)` takes a dict of tensors keyed by the Hugging Face names
(model.embed_tokens.weight, model.layers.{l}.mamba.in_proj.weight, ...), so the same code runs on
trainable parameters, on a loaded checkpoint and on bf16-rounded export weights. Everything is
computed in the dtype of the weights given (f32 for training and for the exactness figures).

The scan is the chunked SSD form (docs/model.md "Chunked SSD"): within a chunk of Q tokens a masked
[Q, Q] decay matrix, between chunks the state carried by the plain recurrence (the corrected
inter-chunk carry, not transformers' buggy axis). `ssd_scan_sequential` is the token-by-token
recurrence, used by the tests to check the chunked form.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class Zamba2Config:
    vocab: int
    H: int
    num_layers: int
    hybrid_ids: list
    num_mem_blocks: int = 1
    heads: int = 8
    kv_heads: int = 8
    F: int = 0  # MLP intermediate; 0 -> 4H
    adapter_rank: int = 8
    attn_adapter: bool = True
    rope: bool = True
    rope_theta: float = 10000.0
    eps: float = 1e-5
    expand: int = 2
    NH: int = 8
    N: int = 16
    G: int = 1
    K: int = 4
    time_step_min: float = 0.001
    time_step_max: float = 0.1
    time_step_floor: float = 1e-4
    chunk_size: int = 256
    max_position_embeddings: int = 4096
    initializer_range: float = 0.02
    extra: dict = field(default_factory=dict)

    @property
    def di(self):
        return self.expand * self.H

    @property
    def P(self):
        return self.di // self.NH

    @property
    def conv_dim(self):
        return self.di + 2 * self.G * self.N

    @property
    def hd(self):
        return 2 * self.H // self.heads

    @property
    def ffn(self):
        return self.F or 4 * self.H

    def to_hf(self, torch_dtype='bfloat16'):
        """config.json object in transformers' Zamba2Config spelling."""
        kinds = ['hybrid' if l in self.hybrid_ids else 'mamba' for l in range(self.num_layers)]
        return {
            'architectures': ['Zamba2ForCausalLM'], 'model_type': 'zamba2',
            'vocab_size': self.vocab, 'max_position_embeddings': self.max_position_embeddings,
            'hidden_size': self.H, 'num_hidden_layers': self.num_layers,
            'mamba_d_state': self.N, 'mamba_d_conv': self.K, 'mamba_expand': self.expand,
            'mamba_ngroups': self.G, 'n_mamba_heads': self.NH, 'mamba_headdim': self.P,
            'time_step_min': self.time_step_min, 'time_step_max': self.time_step_max,
            'time_step_floor': self.time_step_floor, 'time_step_limit': [0.0, float('inf')],
            'use_conv_bias': True, 'chunk_size': self.chunk_size, 'add_bias_linear': False,
            'intermediate_size': self.ffn, 'hidden_act': 'gelu',
            'num_attention_heads': self.heads, 'num_key_value_heads': self.kv_heads,
            'attention_head_dim': self.hd, 'kv_channels': self.H // self.heads, 'attention_dropout': 0.0,
            'num_mem_blocks': self.num_mem_blocks, 'use_shared_attention_adapter': self.attn_adapter,
            'adapter_rank': self.adapter_rank, 'use_mem_rope': self.rope, 'rope_theta': self.rope_theta,
            'initializer_range': self.initializer_range, 'rms_norm_eps': self.eps,
            'use_cache': True, 'num_logits_to_keep': 1, 'pad_token_id': 0, 'bos_token_id': 1,
            'eos_token_id': 2, 'use_long_context': False, 'tie_word_embeddings': True,
            'layers_block_type': kinds, 'hybrid_layer_ids': list(self.hybrid_ids),
            'torch_dtype': torch_dtype, 'transformers_version': '4.48.0',
        }


def _num(cfg, keys, default=None):
    for k in keys:
        v = cfg.get(k)
        if v is None:
            continue
        if isinstance(v, dict) and '__float__' in v:
            return float(v['__float__'])
        return v
    if default is None:
        raise ValueError(f'config lacks {" / ".join(keys)}')
    return default


def config_from_hf(cfg):
    """Zamba2Config from a config.json object (transformers, Zyphra or layer_types spelling)."""
    kinds = cfg.get('layers_block_type') or cfg.get('layer_types')
    if not kinds:
        raise ValueError('config has neither layers_block_type nor layer_types')
    hyb = []
    for l, k in enumerate(kinds):
        if k in ('g', 'hybrid'):
            hyb.append(l)
        elif k not in ('m', 'mamba', 'linear_attention'):
            raise ValueError(f'unknown layer kind {k!r}')
    H = int(_num(cfg, ['hidden_size']))
    expand = int(_num(cfg, ['mamba_expand', 'expansion_factor'], 2))
    di = expand * H
    P = _num(cfg, ['mamba_headdim'], 0)
    NH = int(_num(cfg, ['n_mamba_heads'], di // P if P else 0))
    heads = int(_num(cfg, ['num_attention_heads']))
    rp = cfg.get('rope_parameters') or {}
    c = Zamba2Config(
        vocab=int(_num(cfg, ['vocab_size'])), H=H, num_layers=len(kinds), hybrid_ids=hyb,
        num_mem_blocks=int(_num(cfg, ['num_mem_blocks'], 1)), heads=heads,
        kv_heads=int(_num(cfg, ['num_key_value_heads'], heads)),
        F=int(_num(cfg, ['intermediate_size', 'ffn_hidden_size'], 4 * H)),
        adapter_rank=int(_num(cfg, ['adapter_rank', 'lora_rank'], 128)),
        attn_adapter=bool(cfg.get('use_shared_attention_adapter', cfg.get('use_shared_attention_lora', False))),
        rope=bool(cfg.get('use_mem_rope', False)),
        rope_theta=float(rp.get('rope_theta', _num(cfg, ['rope_theta'], 10000.0))),
        eps=float(_num(cfg, ['rms_norm_eps'], 1e-5)), expand=expand, NH=NH,
        N=int(_num(cfg, ['mamba_d_state', 'state_size'])), G=int(_num(cfg, ['mamba_ngroups'], 1)),
        K=int(_num(cfg, ['mamba_d_conv', 'conv_dimension'], 4)),
        time_step_min=float(_num(cfg, ['time_step_min'], 0.001)),
        chunk_size=int(_num(cfg, ['chunk_size'], 256)),
        max_position_embeddings=int(_num(cfg, ['max_position_embeddings'], 4096)),
    )
    hd = int(_num(cfg, ['head_dim', 'attention_head_dim'], 2 * H // heads))
    if hd != c.hd:
        raise ValueError(f'attention head dim {hd} != 2H/heads = {c.hd}')
    if c.NH * c.P != c.di:
        raise ValueError(f'heads {c.NH} x head dim {c.P} != expand*H {c.di}')
    return c


# ---- parameter names and shapes ----

def block_site_ids(cfg, b):
    """Call sites j (indices into hybrid_ids) that use shared block b."""
    return [j for j in range(len(cfg.hybrid_ids)) if j % cfg.num_mem_blocks == b]


def param_shapes(cfg):
    """Ordered HF name -> shape, in checkpoint module order."""
    H, H2 = cfg.H, 2 * cfg.H
    hd = cfg.hd
    s = {'model.embed_tokens.weight': [cfg.vocab, H]}

    def mixer(p):
        s[f'{p}.in_proj.weight'] = [cfg.di + cfg.conv_dim + cfg.NH, H]
        s[f'{p}.conv1d.weight'] = [cfg.conv_dim, 1, cfg.K]
        s[f'{p}.conv1d.bias'] = [cfg.conv_dim]
        s[f'{p}.dt_bias'] = [cfg.NH]
        s[f'{p}.A_log'] = [cfg.NH]
        s[f'{p}.D'] = [cfg.NH]
        s[f'{p}.norm.weight'] = [cfg.di]
        s[f'{p}.out_proj.weight'] = [H, cfg.di]

    for l in range(cfg.num_layers):
        p = f'model.layers.{l}'
        if l not in cfg.hybrid_ids:
            s[f'{p}.input_layernorm.weight'] = [H]
            mixer(f'{p}.mamba')
            continue
        j = cfg.hybrid_ids.index(l)
        if j < cfg.num_mem_blocks:
            st = f'{p}.shared_transformer'
            sites = block_site_ids(cfg, j)
            s[f'{st}.input_layernorm.weight'] = [H2]
            s[f'{st}.pre_ff_layernorm.weight'] = [H]
            s[f'{st}.self_attn.q_proj.weight'] = [cfg.heads * hd, H2]
            s[f'{st}.self_attn.k_proj.weight'] = [cfg.kv_heads * hd, H2]
            s[f'{st}.self_attn.v_proj.weight'] = [cfg.kv_heads * hd, H2]
            s[f'{st}.self_attn.o_proj.weight'] = [H, cfg.heads * hd]
            if cfg.attn_adapter:
                outs = {'q': cfg.heads * hd, 'k': cfg.kv_heads * hd, 'v': cfg.kv_heads * hd}
                for proj in ('q', 'k', 'v'):
                    for jj in sites:
                        s[f'{st}.self_attn.linear_{proj}_adapter_list.{jj}.0.weight'] = [cfg.adapter_rank, H2]
                        s[f'{st}.self_attn.linear_{proj}_adapter_list.{jj}.1.weight'] = [outs[proj], cfg.adapter_rank]
            s[f'{st}.feed_forward.gate_up_proj.weight'] = [2 * cfg.ffn, H]
            s[f'{st}.feed_forward.down_proj.weight'] = [H, cfg.ffn]
            for jj in sites:
                s[f'{st}.feed_forward.gate_up_proj_adapter_list.{jj}.0.weight'] = [cfg.adapter_rank, H]
                s[f'{st}.feed_forward.gate_up_proj_adapter_list.{jj}.1.weight'] = [2 * cfg.ffn, cfg.adapter_rank]
        s[f'{p}.linear.weight'] = [H, H]
        s[f'{p}.mamba_decoder.input_layernorm.weight'] = [H]
        mixer(f'{p}.mamba_decoder.mamba')
    s['model.final_layernorm.weight'] = [H]
    return s


def check_weights(cfg, W):
    want = param_shapes(cfg)
    missing = [n for n in want if n not in W]
    extra = [n for n in W if n not in want]
    if missing or extra:
        raise ValueError(f'checkpoint tensors do not match the config: missing {missing[:5]}, unexpected {extra[:5]}')
    for n, shp in want.items():
        if list(W[n].shape) != shp:
            raise ValueError(f'{n} has shape {list(W[n].shape)}, expected {shp}')


def init_weights(cfg, generator):
    """Training init (mamba_ssm / transformers conventions), f32, ordered like the checkpoint."""
    out = {}
    std = cfg.initializer_range
    resid_scale = 1.0 / math.sqrt(2 * cfg.num_layers)
    for name, shp in param_shapes(cfg).items():
        leaf = name.rsplit('.', 2)[-2] if name.endswith('.weight') else name.rsplit('.', 1)[-1]
        if name.endswith('layernorm.weight') or name.endswith('norm.weight'):
            t = torch.ones(shp)
        elif name.endswith('.dt_bias'):
            # dt log-uniform in [time_step_min, time_step_max], floored; dt_bias = softplus^-1(dt).
            u = torch.rand(shp, generator=generator)
            dt = torch.exp(u * (math.log(cfg.time_step_max) - math.log(cfg.time_step_min)) + math.log(cfg.time_step_min))
            dt = dt.clamp(min=cfg.time_step_floor)
            t = dt + torch.log(-torch.expm1(-dt))
        elif name.endswith('.A_log'):
            t = torch.log(torch.empty(shp).uniform_(1, 16, generator=generator))
        elif name.endswith('.D'):
            t = torch.ones(shp)
        elif name.endswith('conv1d.weight') or name.endswith('conv1d.bias'):
            bound = 1.0 / math.sqrt(cfg.K)  # nn.Conv1d default for a depthwise kernel
            t = torch.empty(shp).uniform_(-bound, bound, generator=generator)
        elif '_adapter_list.' in name and name.endswith('.1.weight'):
            t = torch.zeros(shp)  # LoRA: the adapter starts as a no-op
        else:
            t = torch.randn(shp, generator=generator) * std
            if leaf in ('out_proj', 'o_proj', 'down_proj', 'linear'):
                t = t * resid_scale
        out[name] = t.float()
    return out


# ---- math ----

def _up(t):
    """At least f32 (f64 stays f64, for the checks against the f64 reference)."""
    return t if t.dtype == torch.float64 else t.float()


def rms_norm(x, w, eps):
    xf = _up(x)
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


def _segsum(a):
    """a [..., Q] -> [..., Q, Q] with out[t, s] = sum_{s < r <= t} a[r] (t >= s), -inf above the diagonal."""
    Q = a.shape[-1]
    x = a.unsqueeze(-1).expand(*a.shape, Q)  # x[..., r, s] = a[r]
    strict = torch.tril(torch.ones(Q, Q, dtype=torch.bool, device=a.device), diagonal=-1)
    x = x.masked_fill(~strict, 0)
    seg = torch.cumsum(x, dim=-2)
    keep = torch.tril(torch.ones(Q, Q, dtype=torch.bool, device=a.device), diagonal=0)
    return seg.masked_fill(~keep, float('-inf'))


def ssd_scan_chunked(x, dt, A, B, C, chunk, state=None):
    """Chunked SSD. x [b,T,NH,P], dt [b,T,NH] (after softplus+clamp), A [NH], B/C [b,T,G,N].

    Returns y [b,T,NH,P] (without the D skip) and the final state [b,NH,P,N].
    """
    b, T, NH, P = x.shape
    G, N = B.shape[2], B.shape[3]
    hpg = NH // G
    Q = min(chunk, T)
    pad = (-T) % Q
    if pad:
        # Zero dt in padded positions: no decay, no input, so the final state is unchanged.
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    Tp = T + pad
    c = Tp // Q
    x = x.reshape(b, c, Q, G, hpg, P)
    dt = dt.reshape(b, c, Q, G, hpg)
    B = B.reshape(b, c, Q, G, N)
    C = C.reshape(b, c, Q, G, N)
    a = (dt * A.reshape(G, hpg)).permute(0, 1, 3, 4, 2)  # [b,c,G,hpg,Q]
    a_cum = torch.cumsum(a, dim=-1)
    L = torch.exp(_segsum(a))  # [b,c,G,hpg,Q(t),Q(s)]
    xdt = x * dt.unsqueeze(-1)  # [b,c,Q,G,hpg,P]
    # Intra-chunk: Y_t = sum_{s<=t} (C_t . B_s) exp(a_t - a_s) dt_s x_s
    CB = torch.einsum('bctgn,bcsgn->bcgts', C, B)  # [b,c,G,Q,Q]
    M = CB.unsqueeze(3) * L  # [b,c,G,hpg,Q,Q]
    y = torch.einsum('bcghts,bcsghp->bctghp', M, xdt)
    # Per-chunk state contribution: sum_s exp(a_last - a_s) dt_s x_s (x) B_s
    decay_to_end = torch.exp(a_cum[..., -1:] - a_cum)  # [b,c,G,hpg,Q]
    chunk_states = torch.einsum('bcsgn,bcghs,bcsghp->bcghpn', B, decay_to_end, xdt)
    chunk_decay = torch.exp(a_cum[..., -1])  # [b,c,G,hpg]
    S = state.reshape(b, G, hpg, P, N) if state is not None else x.new_zeros(b, G, hpg, P, N)
    states_in = []
    for k in range(c):
        states_in.append(S)
        S = chunk_decay[:, k, :, :, None, None] * S + chunk_states[:, k]
    S_in = torch.stack(states_in, dim=1)  # [b,c,G,hpg,P,N]: state entering each chunk
    # Inter-chunk: exp(a_t) * (S_in . C_t)
    y_off = torch.einsum('bctgn,bcghpn,bcght->bctghp', C, S_in, torch.exp(a_cum))
    y = (y + y_off).reshape(b, Tp, NH, P)[:, :T]
    return y, S.reshape(b, NH, P, N)


def ssd_scan_sequential(x, dt, A, B, C, state=None):
    """The plain recurrence (docs/model.md §Mixer step 5), token by token; same signature as ssd_scan_chunked."""
    b, T, NH, P = x.shape
    G, N = B.shape[2], B.shape[3]
    hpg = NH // G
    Bh = B.repeat_interleave(hpg, dim=2)  # [b,T,NH,N]
    Ch = C.repeat_interleave(hpg, dim=2)
    S = state.clone() if state is not None else x.new_zeros(b, NH, P, N)
    ys = []
    for t in range(T):
        dA = torch.exp(dt[:, t] * A)  # [b,NH]
        S = dA[:, :, None, None] * S + (dt[:, t, :, None, None] * x[:, t, :, :, None]) * Bh[:, t, :, None, :]
        ys.append(torch.einsum('bhpn,bhn->bhp', S, Ch[:, t]))
    return torch.stack(ys, dim=1), S


def mixer(cfg, W, p, u, scan='chunked', chunk=None):
    """Mamba2 mixer (docs/model.md §Mixer steps 1-7) on u [b,T,H] from a fresh state."""
    b, T, _ = u.shape
    di, cd, NH, P, G, N, K = cfg.di, cfg.conv_dim, cfg.NH, cfg.P, cfg.G, cfg.N, cfg.K
    zxbcdt = u @ W[f'{p}.in_proj.weight'].t()
    z, xBC, dt = zxbcdt.split([di, cd, NH], dim=-1)
    xBC = F.conv1d(xBC.transpose(1, 2), W[f'{p}.conv1d.weight'], W[f'{p}.conv1d.bias'], padding=K - 1, groups=cd)
    xBC = F.silu(xBC[..., :T].transpose(1, 2))
    x, Bm, Cm = xBC.split([di, G * N, G * N], dim=-1)
    x = x.reshape(b, T, NH, P)
    Bm = Bm.reshape(b, T, G, N)
    Cm = Cm.reshape(b, T, G, N)
    A = -torch.exp(_up(W[f'{p}.A_log']))
    dt = F.softplus(_up(dt) + W[f'{p}.dt_bias'], beta=1.0, threshold=20.0)
    dt = torch.clamp(dt, min=cfg.time_step_min)
    # The scan always runs in at least f32 (decays and state), also under bf16 autocast in training.
    x, dt, Bm, Cm = _up(x), _up(dt), _up(Bm), _up(Cm)
    with torch.autocast('cpu', enabled=False):
        if scan == 'sequential':
            y, _ = ssd_scan_sequential(x, dt, A, Bm, Cm)
        else:
            y, _ = ssd_scan_chunked(x, dt, A, Bm, Cm, chunk or cfg.chunk_size)
    y = y + W[f'{p}.D'][:, None] * x
    y = y.reshape(b, T, di)
    # Gate before the norm, then RMSNorm per group of di/G channels, eps 1e-5 (Zamba2 ignores rms_norm_eps here).
    y = _up(y) * F.silu(_up(z))
    yg = y.reshape(b, T, G, di // G)
    yg = yg * torch.rsqrt(yg.pow(2).mean(-1, keepdim=True) + 1e-5)
    y = W[f'{p}.norm.weight'] * yg.reshape(b, T, di).to(u.dtype)
    return y @ W[f'{p}.out_proj.weight'].t()


def _rope(x, theta):
    """NeoX rotate-half over the full head dim. x [b, heads, T, hd], absolute positions 0..T-1."""
    T, hd = x.shape[-2], x.shape[-1]
    # Angles in the compute dtype (f32 like transformers; f64 when checking against the f64 reference).
    inv = theta ** (-torch.arange(0, hd, 2, dtype=x.dtype) / hd)
    ang = torch.arange(T, dtype=x.dtype)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    rot = torch.cat([-x2, x1], dim=-1)
    return x * cos + rot * sin


def shared_block(cfg, W, j, x, orig):
    """Hybrid call site j: the shared block's output t [b,T,H] (before `linear`)."""
    bi = j % cfg.num_mem_blocks
    st = f'model.layers.{cfg.hybrid_ids[bi]}.shared_transformer'
    b, T, H = x.shape
    hd, nh, nkv = cfg.hd, cfg.heads, cfg.kv_heads
    s = rms_norm(torch.cat([x, orig], dim=-1), W[f'{st}.input_layernorm.weight'], cfg.eps)
    at = f'{st}.self_attn'
    q = s @ W[f'{at}.q_proj.weight'].t()
    k = s @ W[f'{at}.k_proj.weight'].t()
    v = s @ W[f'{at}.v_proj.weight'].t()
    if cfg.attn_adapter:
        q = q + (s @ W[f'{at}.linear_q_adapter_list.{j}.0.weight'].t()) @ W[f'{at}.linear_q_adapter_list.{j}.1.weight'].t()
        k = k + (s @ W[f'{at}.linear_k_adapter_list.{j}.0.weight'].t()) @ W[f'{at}.linear_k_adapter_list.{j}.1.weight'].t()
        v = v + (s @ W[f'{at}.linear_v_adapter_list.{j}.0.weight'].t()) @ W[f'{at}.linear_v_adapter_list.{j}.1.weight'].t()
    q = q.reshape(b, T, nh, hd).transpose(1, 2)
    k = k.reshape(b, T, nkv, hd).transpose(1, 2)
    v = v.reshape(b, T, nkv, hd).transpose(1, 2)
    if cfg.rope:
        q = _rope(q, cfg.rope_theta)
        k = _rope(k, cfg.rope_theta)
    if nkv != nh:
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
    scores = (q @ k.transpose(-1, -2)) * (hd / 2) ** -0.5
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    scores = _up(scores).masked_fill(mask, float('-inf'))
    attn = torch.softmax(scores, dim=-1).to(q.dtype) @ v  # [b,nh,T,hd]
    attn = attn.transpose(1, 2).reshape(b, T, nh * hd) @ W[f'{at}.o_proj.weight'].t()
    a = rms_norm(attn, W[f'{st}.pre_ff_layernorm.weight'], cfg.eps)
    ff = f'{st}.feed_forward'
    gu = a @ W[f'{ff}.gate_up_proj.weight'].t()
    gu = gu + (a @ W[f'{ff}.gate_up_proj_adapter_list.{j}.0.weight'].t()) @ W[f'{ff}.gate_up_proj_adapter_list.{j}.1.weight'].t()
    g, u = gu.chunk(2, dim=-1)
    return (F.gelu(g) * u) @ W[f'{ff}.down_proj.weight'].t()


def hidden_states(cfg, W, ids, scan='chunked', chunk=None, checkpoint=False):
    """Final hidden states [b,T,H] after the final norm."""
    x = F.embedding(ids, W['model.embed_tokens.weight'])
    orig = x
    for l in range(cfg.num_layers):
        if l in cfg.hybrid_ids:
            j = cfg.hybrid_ids.index(l)
            t = shared_block(cfg, W, j, x, orig)
            mix_in = x + t @ W[f'model.layers.{l}.linear.weight'].t()  # the residual stays x
            p = f'model.layers.{l}.mamba_decoder'
        else:
            mix_in = x
            p = f'model.layers.{l}'
        h = rms_norm(mix_in, W[f'{p}.input_layernorm.weight'], cfg.eps)
        if checkpoint and torch.is_grad_enabled():
            m = torch.utils.checkpoint.checkpoint(lambda hh, pp=p: mixer(cfg, W, f'{pp}.mamba', hh, scan, chunk), h, use_reentrant=False)
        else:
            m = mixer(cfg, W, f'{p}.mamba', h, scan, chunk)
        x = x + m
    return rms_norm(x, W['model.final_layernorm.weight'], cfg.eps)


def forward(cfg, W, ids, scan='chunked', chunk=None):
    """logits [b,T,V] for ids [b,T] (tied head: logits = h . E^T)."""
    return hidden_states(cfg, W, ids, scan, chunk) @ W['model.embed_tokens.weight'].t()


def load_checkpoint(path, dtype=torch.float32):
    """(cfg, W) from a Hugging Face checkpoint folder (config.json + model.safetensors)."""
    import json
    import os
    from safetensors_io import read_safetensors
    with open(os.path.join(path, 'config.json')) as f:
        cfg = config_from_hf(json.load(f))
    W, _ = read_safetensors(os.path.join(path, 'model.safetensors'))
    check_weights(cfg, W)
    return cfg, {k: v.to(dtype) for k, v in W.items()}
