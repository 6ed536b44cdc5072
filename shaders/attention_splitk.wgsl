// attention_splitk.wgsl: causal GQA attention for few queries (decode, T = 1) over long contexts,
// split-K: each workgroup takes one (query t, head h, split s) and a contiguous range of keys,
// runs an f32 online softmax over it and writes its partial (m, l, acc[HD]) for
// attention_combine.wgsl; with a single split it writes the normalised output directly.
// Same math as attention_flash.wgsl / test/reference/layers.ts attentionRef:
//   out[t, h, :] = sum_{j <= pos0 + t} softmax_j(scale * q[t, h] . k[j, kh]) * v[j, kh], kh = h / groupSize
//
// Bindings:
//   params (uniform)  T, pos0, nHeads, groupSize, kvStride (= nKvHeads * HD), qOffset, qRowStride:
//                     u32 (elements); nSplits: u32; splitLen: u32 keys per split (multiple of WG);
//                     direct: u32 (1 when nSplits == 1: dst is out); scale: f32
//   1 q       array<f32>  (array<vec4f> with VEC4) q(t, h, d) = q[qOffset + t * qRowStride + h * HD + d]   read
//   2 kCache  array<f32>  (vec4f with VEC4) [capacity, nKvHeads * HD]                          read
//             KV_F16: IEEE f16 packed two per u32, element 2i in the low half (shaders/kv_write.wgsl),
//             array<u32> (array<vec2<u32>> with VEC4), unpacked with unpack2x16float
//   3 vCache  array<f32>  [capacity, nKvHeads * HD] (KV_F16: array<u32> of packed halves)   read
//   4 dst     array<f32>  direct: out [T, nHeads * HD];
//                         else partials [T, nHeads, nSplits, HD + 2] = (m, l, acc[0..HD))  read_write
// Dispatch: T * nHeads * nSplits workgroups of WG threads, linear id = wid.x + wid.y * nwg.x =
//   (t * nHeads + h) * nSplits + s, folded past 65535. Split s covers keys
//   [s * splitLen, min((s + 1) * splitLen, pos0 + t + 1)), possibly empty (m = -3e38, l = 0).
// Per tile of WG keys: thread j scores key j (q from workgroup memory, its K row from global);
//   then every thread, owning head dims lid, lid + WG, ..., accumulates all WG probabilities times
//   V rows (coalesced across threads). Two barriers per tile.
// Defines: VEC4 (q and kCache read as vec4: HD, qOffset, qRowStride multiples of 4), HD head dim
//   (any), WG threads (keys per tile), DPT = ceil(HD / WG) dims per thread; KV_F16 (f16 cache,
//   f32 arithmetic throughout; no shader-f16 feature needed).
// Tuning knobs: WG (default 64); nSplits/splitLen chosen by the host (target workgroup count).

#if VEC4
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
#if KV_F16
@group(0) @binding(2) var<storage, read> kCache: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, read> kCache: array<vec4f>;
#endif
var<workgroup> qs: array<vec4f, HD / 4u>;
#else
@group(0) @binding(1) var<storage, read> q: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read> kCache: array<u32>;
#else
@group(0) @binding(2) var<storage, read> kCache: array<f32>;
#endif
var<workgroup> qs: array<f32, HD>;
#endif
#if KV_F16
@group(0) @binding(3) var<storage, read> vCache: array<u32>;
#else
@group(0) @binding(3) var<storage, read> vCache: array<f32>;
#endif

// Cache element reads as f32: k4(i) = K elements 4i .. 4i + 3 (VEC4), kAt(e) / vAt(e) element e.
#if VEC4
fn k4(i: u32) -> vec4f {
#if KV_F16
  let w = kCache[i];
  return vec4f(unpack2x16float(w.x), unpack2x16float(w.y));
#else
  return kCache[i];
#endif
}
#else
fn kAt(e: u32) -> f32 {
#if KV_F16
  let p = unpack2x16float(kCache[e >> 1u]);
  return select(p.x, p.y, (e & 1u) == 1u);
#else
  return kCache[e];
#endif
}
#endif
fn vAt(e: u32) -> f32 {
#if KV_F16
  let p = unpack2x16float(vCache[e >> 1u]);
  return select(p.x, p.y, (e & 1u) == 1u);
#else
  return vCache[e];
#endif
}
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

var<workgroup> sc: array<f32, WG>;   // scores of the tile
var<workgroup> pr: array<f32, WG>;   // exp(score - running max) of the tile

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let id = wid.x + wid.y * nwg.x;
  let nS = params.nSplits;
  if (id >= params.T * params.nHeads * nS) { return; }
  let sp = id % nS;
  let th = id / nS;               // t * nHeads + h
  let h = th % params.nHeads;
  let t = th / params.nHeads;
  let kvBase = (h / params.groupSize) * HD;
  let kBeg = sp * params.splitLen;
  let kStop = min(kBeg + params.splitLen, params.pos0 + t + 1u);

  let qb = params.qOffset + t * params.qRowStride + h * HD;
#if VEC4
  for (var d4 = lid; d4 < HD / 4u; d4 += WG) { qs[d4] = q[qb / 4u + d4] * params.scale; }
#else
  for (var d = lid; d < HD; d += WG) { qs[d] = q[qb + d] * params.scale; }
#endif
  workgroupBarrier();

  var acc: array<f32, DPT>;
  var m = -3.0e38;
  var l = 0.0;
  for (var k0 = kBeg; k0 < kStop; k0 += WG) {
    let nk = min(WG, kStop - k0);
    var sj = -3.0e38;
    if (lid < nk) {
      let kb = (k0 + lid) * params.kvStride + kvBase;
#if VEC4
      var dot4 = vec4f(0.0);
      for (var d4 = 0u; d4 < HD / 4u; d4++) { dot4 = fma(qs[d4], k4(kb / 4u + d4), dot4); }
      sj = (dot4.x + dot4.y) + (dot4.z + dot4.w);
#else
      var dot = 0.0;
      for (var d = 0u; d < HD; d++) { dot = fma(qs[d], kAt(kb + d), dot); }
      sj = dot;
#endif
    }
    sc[lid] = sj;
    workgroupBarrier();
    var mt = m;
    for (var j = 0u; j < nk; j++) { mt = max(mt, sc[j]); }
    pr[lid] = exp(sj - mt); // 0 for lid >= nk
    workgroupBarrier();     // also orders these sc reads before the next tile's sc writes
    let corr = exp(m - mt);
    l *= corr;
    for (var i = 0u; i < DPT; i++) { acc[i] *= corr; }
    for (var j = 0u; j < nk; j++) {
      let p = pr[j];
      l += p;
      let vb = (k0 + j) * params.kvStride + kvBase;
      for (var i = 0u; i < DPT; i++) {
        let d = lid + i * WG;
        if (d < HD) { acc[i] = fma(p, vAt(vb + d), acc[i]); }
      }
    }
    m = mt;
    workgroupBarrier();     // pr is fully read before the next tile overwrites it
  }

  if (params.direct == 1u) {
    let inv = 1.0 / l;
    for (var i = 0u; i < DPT; i++) {
      let d = lid + i * WG;
      if (d < HD) { dst[th * HD + d] = acc[i] * inv; }
    }
  } else {
    let pb = id * (HD + 2u);
    if (lid == 0u) { dst[pb] = m; dst[pb + 1u] = l; }
    for (var i = 0u; i < DPT; i++) {
      let d = lid + i * WG;
      if (d < HD) { dst[pb + 2u + d] = acc[i]; }
    }
  }
}
