// attention_flash.wgsl: causal GQA attention over a KV cache for a block of queries (prefill and
// continuation), flash style: keys are visited in tiles of BK, each query keeps an f32 online
// softmax (running max m, sum l, unnormalised output acc), so no T x T score matrix exists, only a
// BQ x BK tile of it in workgroup memory. Matches docs/model.md §Zamba2 attention (softmax in f32, GQA)
// and test/reference/layers.ts attentionRef:
//   out[t, h, :] = sum_{j <= pos0 + t} softmax_j(scale * q[t, h] . k[j, kh]) * v[j, kh],
//   kh = h / groupSize (groupSize = nHeads / nKvHeads)
//
// Bindings:
//   params (uniform)  T: u32 queries; pos0: u32 absolute position of query 0; nHeads: u32;
//                     groupSize: u32 (query heads per kv head); kvStride: u32 (= nKvHeads * HD,
//                     elements per cache row); qOffset: u32, qRowStride: u32 (elements); scale: f32
//   1 q       array<f32>  (array<vec4f> with VEC4) q(t, h, d) = q[qOffset + t * qRowStride + h * HD + d]   read
//   2 kCache  array<f32>  (array<vec4f> with VEC4) [capacity, nKvHeads * HD], rows 0 .. pos0 + T - 1 valid  read
//             KV_F16: IEEE f16 packed two per u32, element 2i in the low half (shaders/kv_write.wgsl),
//             array<u32> (array<vec2<u32>> with VEC4: 4 halves), unpacked with unpack2x16float
//   3 vCache  array<f32>  same layout as kCache (KV_F16: array<u32> of packed halves)      read
//   4 out     array<f32>  [T, nHeads * HD]                                        read_write
// Dispatch: ceil(T / BQ) * nHeads workgroups of WG threads, linear id = wid.x + wid.y * nwg.x =
//   qTile * nHeads + h (folded past 65535). The workgroup owns queries qTile * BQ .. + BQ - 1 of
//   head h and walks keys 0 .. pos0 + (its last query) in tiles of BK; later rows are never read.
// Per key tile, three phases separated by barriers:
//   1. scores S[j, qi] = scale * q_qi . k_j for the BK x BQ tile, spread over all threads (q and K
//      rows straight from global memory; masked keys get -3e38);
//   2. thread qi < BQ updates its query's running max, turns its column into probabilities in
//      place and publishes the rescale factor exp(m_old - m_new);
//   3. thread lid owns head dims lid, lid + WG, ... for all BQ queries (DPT * BQ / 4 vec4
//      accumulators) and adds P[j, qi] * V[j, d]: each V element is read once per workgroup,
//      coalesced across threads, and multiplies 4 queries at a time.
// Workgroup memory is only the BK x BQ score tile (2 KiB): staging q or K/V tiles there as well
//   made SwiftShader take 15+ s to compile each head-dim variant (2-3 s now).
// Defines: VEC4 (q and kCache read as vec4: HD, qOffset, qRowStride multiples of 4; the scores
//   dominate the kernel's time on CPU adapters and vec4 loads cut them ~3x), HD head dim (any), WG threads, BQ queries per workgroup (multiple of 4), BK keys per
//   tile, DPT = ceil(HD / WG); KV_F16 (the cache holds f16; every product and sum stays f32, and
//   unpack2x16float needs no shader-f16 feature).
// Tuning knobs: BQ (16), BK (32), WG (host: HD rounded up to 32, within 64..256).

#if VEC4
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
#if KV_F16
@group(0) @binding(2) var<storage, read> kCache: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, read> kCache: array<vec4f>;
#endif
#else
@group(0) @binding(1) var<storage, read> q: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read> kCache: array<u32>;
#else
@group(0) @binding(2) var<storage, read> kCache: array<f32>;
#endif
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
@group(0) @binding(4) var<storage, read_write> outBuf: array<f32>;

const NEG: f32 = -3.0e38;
const BQ4: u32 = BQ / 4u;

var<workgroup> sp: array<vec4f, BK * BQ4>;  // scores, then probabilities, [BK, BQ] (4 queries a vec4)
var<workgroup> corr: array<vec4f, BQ4>;     // exp(m_old - m_new) per query for this key tile
var<workgroup> lsum: array<f32, BQ>;        // running softmax denominators

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let id = wid.x + wid.y * nwg.x;
  let nQTiles = (params.T + BQ - 1u) / BQ;
  if (id >= nQTiles * params.nHeads) { return; }
  let h = id % params.nHeads;
  let t0 = (id / params.nHeads) * BQ;
  let nq = min(BQ, params.T - t0);            // queries of this tile
  let kvBase = (h / params.groupSize) * HD;
  let kEnd = params.pos0 + t0 + nq;           // keys any query of the tile sees: [0, kEnd)

  var m = NEG;                                // running max of query lid (phase 2 threads only)
  if (lid < BQ) { lsum[lid] = 0.0; }
  var acc: array<vec4f, DPT * BQ4>;           // acc[i * BQ4 + b][c]: dim lid + i * WG of query 4b + c
  workgroupBarrier();

  for (var k0 = 0u; k0 < kEnd; k0 += BK) {
    let nk = min(BK, kEnd - k0);
    // 1. scores
    for (var e = lid; e < BQ * BK; e += WG) {
      let j = e / BQ;
      let qi = e - j * BQ;
      var s = NEG;
      if (j < nk && k0 + j <= params.pos0 + t0 + qi) {   // causal; also false for qi >= nq past kEnd
        let kb = (k0 + j) * params.kvStride + kvBase;
        let qb = params.qOffset + (t0 + qi) * params.qRowStride + h * HD;
#if VEC4
        var dot4 = vec4f(0.0);
        for (var d4 = 0u; d4 < HD / 4u; d4++) { dot4 = fma(q[qb / 4u + d4], k4(kb / 4u + d4), dot4); }
        s = ((dot4.x + dot4.y) + (dot4.z + dot4.w)) * params.scale;
#else
        var dot = 0.0;
        for (var d = 0u; d < HD; d++) { dot = fma(q[qb + d], kAt(kb + d), dot); }
        s = dot * params.scale;
#endif
      }
      sp[e / 4u][e % 4u] = s;
    }
    workgroupBarrier();
    // 2. online softmax per query. Key 0 lies in the first tile and is visible to every query,
    // so m is a real score after it and masked entries become exp(-3e38 - m) = 0.
    if (lid < BQ) {
      let b = lid / 4u;
      let c = lid % 4u;
      var mt = m;
      for (var j = 0u; j < nk; j++) { mt = max(mt, sp[j * BQ4 + b][c]); }
      var ps = 0.0;
      for (var j = 0u; j < nk; j++) {
        let p = exp(sp[j * BQ4 + b][c] - mt);
        sp[j * BQ4 + b][c] = p;
        ps += p;
      }
      let cf = exp(m - mt);
      corr[b][c] = cf;
      lsum[lid] = lsum[lid] * cf + ps;
      m = mt;
    }
    workgroupBarrier();
    // 3. acc = acc * corr + P . V
    for (var i = 0u; i < DPT; i++) {
      let d = lid + i * WG;
      if (d < HD) {
        for (var b = 0u; b < BQ4; b++) { acc[i * BQ4 + b] *= corr[b]; }
        for (var j = 0u; j < nk; j++) {
          let v = vec4f(vAt((k0 + j) * params.kvStride + kvBase + d));
          for (var b = 0u; b < BQ4; b++) { acc[i * BQ4 + b] = fma(sp[j * BQ4 + b], v, acc[i * BQ4 + b]); }
        }
      }
    }
    workgroupBarrier(); // sp and corr are read before the next tile overwrites them
  }

  for (var i = 0u; i < DPT; i++) {
    let d = lid + i * WG;
    if (d < HD) {
      for (var qi = 0u; qi < nq; qi++) {
        outBuf[((t0 + qi) * params.nHeads + h) * HD + d] = acc[i * BQ4 + qi / 4u][qi % 4u] / lsum[qi];
      }
    }
  }
}
