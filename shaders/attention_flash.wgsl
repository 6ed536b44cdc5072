// attention_flash.wgsl: causal GQA attention over a KV cache for a block of queries (prefill and
// continuation), flash style: keys stream through workgroup memory in tiles, each query keeps an
// online softmax (running max m, sum l, unnormalised output acc) in f32, so no T x T score matrix
// exists anywhere. Matches SPEC.md §Zamba2 attention (softmax in f32, GQA) and
// test/reference/layers.ts attentionRef:
//   out[t, h, :] = sum_{j <= pos0 + t} softmax_j(scale * q[t, h] . k[j, kh]) * v[j, kh],
//   kh = h / groupSize (groupSize = nHeads / nKvHeads)
//
// Bindings:
//   params (uniform)  T: u32 queries; pos0: u32 absolute position of query 0; nHeads: u32;
//                     groupSize: u32 (query heads per kv head); kvStride: u32 (= nKvHeads * HD,
//                     elements per cache row); qOffset: u32, qRowStride: u32 (elements); scale: f32
//   1 q       array<f32>  q(t, h, d) = q[qOffset + t * qRowStride + h * HD + d]   read
//   2 kCache  array<f32>  [capacity, nKvHeads * HD], rows 0 .. pos0 + T - 1 valid  read
//   3 vCache  array<f32>  same layout as kCache                                   read
//   4 out     array<f32>  [T, nHeads * HD]                                        read_write
// Dispatch: ceil(T / BQ) * nHeads workgroups of BQ threads (linear id = wid.x + wid.y * nwg.x =
//   qTile * nHeads + h, folded past 65535); thread i owns query qTile * BQ + i. The workgroup walks
//   keys 0 .. pos0 + (last query of its tile) in tiles of BK; rows past that are never read.
// Defines: HD head dim (any; held as HD4 = ceil(HD / 4) vec4s, zero padded), BQ queries (threads)
//   per workgroup, BK keys per tile (host picks it so K and V tiles fit 16 KiB of workgroup memory).
// Tuning knobs: BQ (default 32), BK (<= 32, from the memory budget). Each thread holds q and acc
//   (2 * HD floats) privately: fine on CPU adapters; on GPUs with HD >= 128 that is register heavy,
//   splitting HD over several threads per query is the next step if prefill attention matters.

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kCache: array<f32>;
@group(0) @binding(3) var<storage, read> vCache: array<f32>;
@group(0) @binding(4) var<storage, read_write> outBuf: array<f32>;

const HD4: u32 = (HD + 3u) / 4u;

var<workgroup> kTile: array<vec4f, BK * HD4>;
var<workgroup> vTile: array<vec4f, BK * HD4>;

@compute @workgroup_size(BQ)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let id = wid.x + wid.y * nwg.x;
  let nQTiles = (params.T + BQ - 1u) / BQ;
  if (id >= nQTiles * params.nHeads) { return; }
  let h = id % params.nHeads;
  let qTile = id / params.nHeads;
  let kvBase = (h / params.groupSize) * HD;
  let t = qTile * BQ + lid;
  let valid = t < params.T;
  let limit = params.pos0 + t + 1u;                              // this query sees keys [0, limit)
  let kEnd = params.pos0 + min(params.T, (qTile + 1u) * BQ);     // the tile's last query's limit

  var qv: array<vec4f, HD4>;
  var acc: array<vec4f, HD4>;
  if (valid) {
    let qb = params.qOffset + t * params.qRowStride + h * HD;
    for (var d4 = 0u; d4 < HD4; d4++) {
      var v = vec4f(0.0);
      for (var c = 0u; c < 4u; c++) {
        let d = d4 * 4u + c;
        if (d < HD) { v[c] = q[qb + d] * params.scale; }
      }
      qv[d4] = v;
    }
  }
  var m = -3.0e38;   // running max; only read after the first tile, which always has key 0
  var l = 0.0;
  var s: array<f32, BK>;

  for (var k0 = 0u; k0 < kEnd; k0 += BK) {
    workgroupBarrier(); // the previous tile is no longer being read
    for (var e = lid; e < BK * HD; e += BQ) {
      let j = e / HD;
      let d = e - j * HD;
      var kv = 0.0;
      var vv = 0.0;
      if (k0 + j < kEnd) {
        let g = (k0 + j) * params.kvStride + kvBase + d;
        kv = kCache[g];
        vv = vCache[g];
      }
      kTile[j * HD4 + d / 4u][d % 4u] = kv;
      vTile[j * HD4 + d / 4u][d % 4u] = vv;
    }
    workgroupBarrier();
    if (valid && k0 < limit) {
      let nk = min(BK, limit - k0); // causal: keys k0 .. k0 + nk - 1 are visible to this query
      var mt = m;
      for (var j = 0u; j < nk; j++) {
        var dot4 = vec4f(0.0);
        for (var d4 = 0u; d4 < HD4; d4++) { dot4 = fma(qv[d4], kTile[j * HD4 + d4], dot4); }
        let sj = (dot4.x + dot4.y) + (dot4.z + dot4.w);
        s[j] = sj;
        mt = max(mt, sj);
      }
      let corr = exp(m - mt); // 0 on the first tile (acc and l are 0 then anyway)
      l *= corr;
      for (var d4 = 0u; d4 < HD4; d4++) { acc[d4] *= corr; }
      for (var j = 0u; j < nk; j++) {
        let p = exp(s[j] - mt);
        l += p;
        for (var d4 = 0u; d4 < HD4; d4++) { acc[d4] = fma(vec4f(p), vTile[j * HD4 + d4], acc[d4]); }
      }
      m = mt;
    }
  }

  if (valid) {
    let inv = 1.0 / l;
    let ob = (t * params.nHeads + h) * HD;
    for (var d = 0u; d < HD; d++) { outBuf[ob + d] = acc[d / 4u][d % 4u] * inv; }
  }
}
