// gemv.wgsl: skinny matmul for decode, y[m, nBase + n] (= or +=) sum_k x[m, k] * W[n, k]
// for a few rows m (M <= ~8), one part of a weight W [N, K] (f32, f16 or bf16) at a time.
// Memory bound on W: each workgroup streams R rows of W once, in chunks of 8 elements per thread
// (one vec4<u32> of packed 16-bit values, or two vec4<f32>), and applies every chunk to MB rows of
// x held in registers. f32 accumulation; per-thread partials are summed in workgroup memory.
//
// Bindings:
//   params (uniform) M, N (rows of this part), K, nBase (first output column of this part),
//                    xOffset, xRowStride, yOffset, yRowStride (elements), accumulate (0/1)
//   1 x  f32 [M, xRowStride] at xOffset      read       (array<vec4<f32>> when XVEC)
//   2 w  W part [N, K] row-major, packed     read       (array<vec4<u32>> / array<vec4<f32>> when VEC,
//                                                         array<u32> / array<f32> otherwise)
//   3 y  f32, y[m, c] at yOffset + m * yRowStride + c  read_write
// Dispatch: x = ceil(N / R) workgroups (folded into y past the per-dimension limit: linear id
//           wid.x + wid.y * nwg.x, bound-checked), z = ceil(M / MB).
// Defines: WG threads (power of two), R rows of W per workgroup, MB rows of x per workgroup
//          (R * MB <= WG, both powers of two); W_F32 / W_F16 / W_BF16 (exactly one true);
//          F16 (read f16 natively via bitcast<vec2<f16>>, else unpack2x16float);
//          VEC (K % 8 == 0: aligned vector loads), XVEC (VEC and x offset/stride % 4 == 0).
// Tuning (launcher): GPUs WG 128, R 4; CPU emulations WG 32, R 32 (fewer workgroups, so fewer
//         barriers, which are coroutine switches there); MB = 1, 4 or 8 (M = 1, 2..4, 5..8),
//         and R is halved until R * MB <= 32 (workgroup memory WG * R * MB floats).

#if VEC
#if W_F32
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
#else
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
#endif
#else
#if W_F32
@group(0) @binding(2) var<storage, read> w: array<f32>;
#else
@group(0) @binding(2) var<storage, read> w: array<u32>;
#endif
#endif
#if XVEC
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#endif
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const V: u32 = R * MB;      // partial sums per thread
const TPV: u32 = WG / V;    // threads per value in the second reduction stage

var<workgroup> red: array<f32, WG * V>;
var<workgroup> red2: array<f32, WG>;

// unpack2 and wElem come from shaders/lib/{unpack16,w_elem}.wgsl (KernelDef.libraries).

struct Chunk { a: vec4<f32>, b: vec4<f32> }

#if !VEC
// W elements e .. e+4 (columns k .. k+4), zero past K; indices clamped into the part.
fn wPart(e: u32, k: u32) -> vec4<f32> {
  let last = params.N * params.K - 1u;
  return vec4<f32>(
    select(0.0, wElem(min(e, last)), k < params.K),
    select(0.0, wElem(min(e + 1u, last)), k + 1u < params.K),
    select(0.0, wElem(min(e + 2u, last)), k + 2u < params.K),
    select(0.0, wElem(min(e + 3u, last)), k + 3u < params.K));
}
#endif

#if !XVEC
fn xPart(e: u32, k: u32) -> vec4<f32> {
  let last = arrayLength(&x) - 1u;
  return vec4<f32>(
    select(0.0, x[min(e, last)], k < params.K),
    select(0.0, x[min(e + 1u, last)], k + 1u < params.K),
    select(0.0, x[min(e + 2u, last)], k + 2u < params.K),
    select(0.0, x[min(e + 3u, last)], k + 3u < params.K));
}
#endif

// W[row, k .. k+8) as f32; elements at or past K are zero (only possible without VEC).
fn loadW(row: u32, k: u32) -> Chunk {
  let e = row * params.K + k;
#if VEC
#if W_F32
  return Chunk(w[e / 4u], w[e / 4u + 1u]);
#else
  let q = w[e / 8u];
  let p0 = unpack2(q.x); let p1 = unpack2(q.y); let p2 = unpack2(q.z); let p3 = unpack2(q.w);
  return Chunk(vec4<f32>(p0, p1), vec4<f32>(p2, p3));
#endif
#else
  return Chunk(wPart(e, k), wPart(e + 4u, k + 4u));
#endif
}

// x[m, k .. k+8) with zeros past K or for m >= M.
fn loadX(m: u32, k: u32) -> Chunk {
  if (m >= params.M) { return Chunk(vec4<f32>(0.0), vec4<f32>(0.0)); }
  let e = params.xOffset + m * params.xRowStride + k;
#if XVEC
  return Chunk(x[e / 4u], x[e / 4u + 1u]);
#else
  return Chunk(xPart(e, k), xPart(e + 4u, k + 4u));
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let block = wid.x + wid.y * nwg.x;
  let n0 = block * R;
  let m0 = wid.z * MB;
  // Workgroups past the end still take part in the barriers below; they just store nothing.
  let live = n0 < params.N;

  var acc: array<f32, V>;
  for (var i = 0u; i < V; i++) { acc[i] = 0.0; }

  if (live) {
    let chunks = (params.K + 7u) / 8u;
    for (var c = lid; c < chunks; c += WG) {
      let k = c * 8u;
      var xs: array<Chunk, MB>;
      for (var m = 0u; m < MB; m++) { xs[m] = loadX(m0 + m, k); }
      for (var r = 0u; r < R; r++) {
        // Rows past N re-read the last row (in bounds); their sums are never stored.
        let wc = loadW(min(n0 + r, params.N - 1u), k);
        for (var m = 0u; m < MB; m++) {
          acc[r * MB + m] += dot(wc.a, xs[m].a) + dot(wc.b, xs[m].b);
        }
      }
    }
  }

  // Stage 1: all partials to workgroup memory, value-major.
  for (var v = 0u; v < V; v++) { red[v * WG + lid] = acc[v]; }
  workgroupBarrier();
  // Stage 2: TPV threads per value, each summing WG / TPV partials (strided, conflict-free).
  {
    let v = lid / TPV;
    let part = lid % TPV;
    var s = 0.0;
    for (var j = part; j < WG; j += TPV) { s += red[v * WG + j]; }
    red2[lid] = s;
  }
  workgroupBarrier();
  // Stage 3: one thread per value finishes and stores.
  if (live && lid < V) {
    var s = 0.0;
    for (var j = 0u; j < TPV; j++) { s += red2[lid * TPV + j]; }
    let r = lid / MB;
    let m = m0 + lid % MB;
    let n = n0 + r;
    if (n < params.N && m < params.M) {
      let idx = params.yOffset + m * params.yRowStride + params.nBase + n;
      if (params.accumulate != 0u) { s += y[idx]; }
      y[idx] = s;
    }
  }
}
