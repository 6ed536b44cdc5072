// matmul.wgsl: tiled GEMM for prefill, y[m, nBase + n] (= or +=) sum_k x[m, k] * W[n, k]
// (y = x · Wᵀ, both operands K-contiguous) for one part of a weight W [N, K] in f32, f16, bf16 or
// a block-quantized format (docs/weight-formats.md; tiles dequantized 4 values at a time by wLoad4
// of lib/dequant_q.wgsl / dequant_k.wgsl into the f32 workgroup tile, exactly as the reference
// dequantizer, so only the f32 accumulation differs from an f64 product on the dequantized weights).
// A workgroup computes a BM x BN tile of y with 256 threads, each owning a 4 x 4 register block
// (rows and columns strided by 16); K is walked in slices of BK staged through workgroup memory
// as vec4 along k, so per 4 k a thread reads 4 + 4 vec4 and does 16 dot4s. 16-bit and quantized
// weights are converted to f32 when staged. The next slice is fetched into registers while the current one is
// multiplied (one barrier pair per slice). f32 accumulation; all edges (M, N, K) are bound-checked.
//
// Bindings:
//   params (uniform) M, N (rows of this part), K, nBase (first output column of this part),
//                    xOffset, xRowStride, yOffset, yRowStride (elements), accumulate (0/1),
//                    qhWord, dWord (quantized sections' word offsets; unused otherwise)
//   1 x  f32 [M, xRowStride] at xOffset      read        (array<vec4<f32>> when XVEC)
//   2 w  W part [N, K] row-major, packed     read        (vec2<u32> / vec4<f32> units when VEC;
//                                                         `wu: array<u32>` in the device layout of
//                                                         docs/weight-formats.md when W_QUANT)
//   3 y  f32, y[m, c] at yOffset + m * yRowStride + c   read_write
// Dispatch: x = ceil(N / BN) (folded into y past the limit; linear id wid.x + wid.y * nwg.x),
//           z = ceil(M / BM); workgroup 256 = 16 x 16 threads.
// Defines: W_F32 / W_F16 / W_BF16, or W_QUANT with one of W_Q8_0 / W_Q4_0 / W_Q5_0 / W_Q4_K /
//          W_Q6_K (one format true); F16 (native f16 reads); VEC (K % 8 == 0);
//          XVEC (VEC and x offset/stride % 4 == 0).
// Workgroup memory: (BM + BN) * (BK / 4 + 1) vec4 = 10 KiB (within the 16 KiB default limit).
// Tuning knobs (constants below): BM = BN = 64, BK = 16 (register block 4 x 4 is fixed).

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

#if W_QUANT
@group(0) @binding(2) var<storage, read> wu: array<u32>;
#else
#if VEC
#if W_F32
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
#else
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
#endif
#else
#if W_F32
@group(0) @binding(2) var<storage, read> w: array<f32>;
#else
@group(0) @binding(2) var<storage, read> w: array<u32>;
#endif
#endif
#endif
#if XVEC
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#endif
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// Tiles are row-major with k innermost, one vec4 per 4 k: xs[m * XS + q] = x[m0 + m, k0 + 4q .. +4],
// ws[n * XS + q] = W[n0 + n, k0 + 4q .. +4]. Rows are padded by one vec4 so that the 8 threads of a
// 128-bit access phase, which read 8 consecutive rows, hit distinct banks.
const XS: u32 = BK / 4u + 1u;
var<workgroup> xs: array<vec4<f32>, BM * XS>;
var<workgroup> ws: array<vec4<f32>, BN * XS>;

// unpack2, wElem, loadW4, loadX4 come from shaders/lib/{unpack16,w_elem,load4}.wgsl (KernelDef.libraries).

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let nTile = wid.x + wid.y * nwg.x;
  let n0 = nTile * BN;
  let m0 = wid.z * BM;
  // Tiles past the end (from grid folding) still reach every barrier; they store nothing.
  let live = n0 < params.N;
  // Thread (tx, ty) owns rows m0 + ty + 16i and columns n0 + tx + 16j, i, j in 0..4: strided so that
  // neighbouring threads read neighbouring tile rows (no bank conflicts) and store adjacent y.
  let tx = lid % 16u;
  let ty = lid / 16u;

  // Staging assignment: each thread loads one vec4 (4 consecutive k) of one row of x and of W.
  let lr = lid / 4u;          // row within the tile, 0..63
  let lq = lid % 4u;          // vec4 within the slice
  let lk = lq * 4u;
  // Out-of-range rows read a clamped (valid) row; those tile rows/cols are never stored.
  let xm = min(m0 + lr, params.M - 1u);
  let wn = min(n0 + lr, params.N - 1u);

  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }

  var xv = loadX4(xm, lk);
  var wv = loadW4(wn, lk);
  for (var k0 = 0u; k0 < params.K; k0 += BK) {
    xs[lr * XS + lq] = xv;
    ws[lr * XS + lq] = wv;
    workgroupBarrier();
    // Prefetch the next slice while this one is multiplied.
    xv = loadX4(xm, k0 + BK + lk);
    wv = loadW4(wn, k0 + BK + lk);
    for (var q = 0u; q < BK / 4u; q++) {
      let b0 = ws[tx * XS + q];
      let b1 = ws[(tx + 16u) * XS + q];
      let b2 = ws[(tx + 32u) * XS + q];
      let b3 = ws[(tx + 48u) * XS + q];
      for (var i = 0u; i < 4u; i++) {
        let a = xs[(ty + 16u * i) * XS + q];
        acc[i] += vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
      }
    }
    workgroupBarrier();
  }

  if (!live) { return; }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + 16u * i;
    if (m >= params.M) { break; }
    let row = params.yOffset + m * params.yRowStride + params.nBase;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx + 16u * j;
      if (n < params.N) {
        var s = acc[i][j];
        if (params.accumulate != 0u) { s += y[row + n]; }
        y[row + n] = s;
      }
    }
  }
}
