// gemv_q.wgsl: skinny matmul for decode over block-quantized weights,
//   y[m, nBase + n] (= or +=) sum_k x[m, k] * W[n, k]   for M <= 8 rows m,
// one part of W [N, K] at a time. W is read a unit at a time (lib/dequant_q.wgsl: a 32-value
// block of q8_0/q4_0/q5_0; lib/dequant_k.wgsl: 64 values of a q4_k/q6_k super-block;
// lib/unit_float.wgsl: 32 values of f32/f16/bf16), dequantized in registers exactly as the
// reference does, and applied to MB rows of x; f32 accumulation (4 partial sums per unit).
// Two traversals:
//   GPU (default): workgroup of WG threads owns R rows of W; thread t takes units t, t + WG, ...
//     of each row (neighbouring threads read neighbouring units: coalesced 16-byte loads); the
//     WG partials per value are summed in workgroup memory (as shaders/gemv.wgsl).
//   LANES (software adapters): each of the WG threads owns R whole rows (n0 + lid + WG r) and
//     walks them unit by unit (a k-quant super-block's scales decoded once for its 4 units; with
//     one x row each 16-byte word is decoded and consumed at once, wDotH): no reduction, no
//     barrier, no workgroup memory. CPU emulations run a workgroup as SIMD lanes
//     and pay per lane for every storage load, so x, identical for all rows, is loaded once per
//     subgroup: with SUBGROUPS (the launcher's choice when the device's subgroups are exactly WG
//     = 4 or 8 threads) each lane loads UV / WG vec4 of the unit and subgroupBroadcast hands
//     them to all; otherwise every thread loads the whole unit of x itself.
//
// Bindings:
//   params (uniform) M, N (rows of this part), K, nBase (first output column of this part),
//                    xOffset, xRowStride, yOffset, yRowStride (elements), accumulate (0/1),
//                    qhWord, dWord (u32 word offsets of the qh and d sections in the part)
//   1 x  f32 [M, xRowStride] at xOffset      read   (array<vec4<f32>> when XVEC)
//   2 wq W part as 16-byte words             read   array<vec4<u32>>
//   3 y  f32, y[m, c] at yOffset + m * yRowStride + c   read_write
//   4 wu W part as words (same buffer as wq) read   array<u32>; only with W_QUANT (scales, qh)
// Dispatch: x = ceil(N / R) workgroups (GPU) or ceil(N / (WG * R)) (LANES), folded into y past the
//           per-dimension limit (linear id wid.x + wid.y * nwg.x, bound-checked); z = ceil(M / MB).
// Defines: one of W_Q8_0 / W_Q4_0 / W_Q5_0 / W_Q4_K / W_Q6_K (W_QUANT true) or W_F32 / W_F16 /
//          W_BF16 (with F16 for native f16 unpacking); LANES (traversal); WG threads, R rows per
//          workgroup (GPU) or per thread (LANES), MB rows of x per workgroup (1, 4 or 8);
//          XVEC (x offset and row stride % 4 == 0); SUBGROUPS (LANES: broadcast x; subgroups of
//          exactly WG threads), SG8 (WG == 8, else 4); W_UNITS (true: the libraries' unit decoders).
// Tuning (launcher): GPU WG 64, R 4 (R * MB <= 32 values, WG * R * MB floats of workgroup memory,
//          within 16 KiB); LANES WG 8, R 2 (R 4 spills registers on lavapipe: slower).
// Needs K % UNIT == 0 (32, or 256 for the k-quants: whole blocks per row).
//
// Input prologues (GPU traversal, one x row: decode), so the normalisation before a projection
// needs no dispatch of its own. Each workgroup first reduces its x row, then every x value the
// GEMV loads is x̂[k], computed in the op order of the standalone kernels:
//   XNORM  x̂[k] = (x[k] * rstd) * nw[k]                rstd = 1/sqrt(mean(x²) + eps)   (rmsnorm.wgsl)
//          with XADD x + xa in place of x (a hybrid layer's RMSNorm(x + t); the sum is never stored)
//   XGATE  x̂[k] = (g[k] * rstd[k / nGroup]) * nw[k]     g = x * silu(z), rstd per group (gated_rmsnorm.wgsl)
//   XGELU  x̂[k] = gelu(x[k]) * x[K + k]                 (gelu_gate.wgsl; x is [gate | up], 2K wide)
// with nw at binding NW_BINDING and z (XGATE: z[zOff + k]) or xa (XADD: xa[k]) at Z_BINDING; extra
// params nEps (f32), nGroup, zOff (elements, z of the one row), zStride (unused for one row).

#if XVEC
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#endif
@group(0) @binding(2) var<storage, read> wq: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#if W_QUANT
@group(0) @binding(4) var<storage, read> wu: array<u32>;
#endif

const V: u32 = R * MB;   // values (row, x row) per workgroup (GPU) or per thread (LANES)

// x[m, k .. k + 4) as stored (m clamped into range: rows past M read row M - 1 and are never stored).
fn xStored4(m: u32, k: u32) -> vec4<f32> {
  let e = params.xOffset + min(m, params.M - 1u) * params.xRowStride + k;
#if XVEC
  return x[e / 4u];
#else
  return vec4<f32>(x[e], x[e + 1u], x[e + 2u], x[e + 3u]);
#endif
}

#if XPRO
@group(0) @binding({{NW_BINDING}}) var<storage, read> nw: array<vec4<f32>>;
#if XGATE
@group(0) @binding({{Z_BINDING}}) var<storage, read> xz: array<f32>;
#endif
#if XADD
@group(0) @binding({{Z_BINDING}}) var<storage, read> xa: array<vec4<f32>>;
#endif
// 1 / sqrt(mean + eps) of each group of the row (one group without XGATE; at most 8).
var<workgroup> xRstd: array<f32, 8>;

// The prologue's input row before normalisation: x, or the gated y * silu(z) (one x row).
fn xRaw4(k: u32) -> vec4<f32> {
#if XGATE
  let zb = params.zOff + k;
  let zv = vec4<f32>(xz[zb], xz[zb + 1u], xz[zb + 2u], xz[zb + 3u]);
  return xStored4(0u, k) * vec4<f32>(silu(zv.x), silu(zv.y), silu(zv.z), silu(zv.w));
#else
#if XADD
  return xStored4(0u, k) + xa[k / 4u];
#else
  return xStored4(0u, k);
#endif
#endif
}
#endif

// The x values the GEMV multiplies: x[m, k .. k + 4), through the input prologue when there is one.
fn xLoad4(m: u32, k: u32) -> vec4<f32> {
#if XGELU
  let gu0 = xStored4(0u, k);
  let up = xStored4(0u, k + params.K);
  return vec4<f32>(gelu(gu0.x), gelu(gu0.y), gelu(gu0.z), gelu(gu0.w)) * up;
#else
#if XPRO
  return (xRaw4(k) * xRstd[k / params.nGroup]) * nw[k / 4u];
#else
  return xStored4(m, k);
#endif
#endif
}

// The x values of unit u, in the unit's column order.
fn xUnit(m: u32, u: u32) -> Unit {
  var out: Unit;
  for (var i = 0u; i < UV; i++) { out[i] = xLoad4(m, unitK(u, i)); }
  return out;
}

// acc + sum_i dot(w[i], xv[i]) with four independent partial sums.
fn unitDot(w: Unit, xv: Unit, acc: f32) -> f32 {
  var s = w[0] * xv[0];
  for (var i = 1u; i < UV; i++) { s = fma(w[i], xv[i], s); }
  return acc + ((s.x + s.y) + (s.z + s.w));
}

fn store(n: u32, m: u32, v: f32) {
  let idx = params.yOffset + m * params.yRowStride + params.nBase + n;
  var s = v;
  if (params.accumulate != 0u) { s += y[idx]; }
  y[idx] = s;
}

#if LANES
#if SUBGROUPS
// x shared through the subgroup (the workgroup is one subgroup of SG = WG threads): lane l loads
// Unit entries l, l + SG, ... and subgroupBroadcast hands each to all lanes.
fn bcast4(v: vec4<f32>) -> array<vec4<f32>, 4> {
  return array<vec4<f32>, 4>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
}
#if SG8
fn bcast8(v: vec4<f32>) -> array<vec4<f32>, 8> {
  let a = bcast4(v);
  return array<vec4<f32>, 8>(a[0], a[1], a[2], a[3],
    subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}
#endif

fn xUnitShared(m: u32, u: u32, lane: u32) -> Unit {
  var out: Unit;
#if SG8
  for (var c = 0u; c < UV / 8u; c++) {
    let b = bcast8(xLoad4(m, unitK(u, c * 8u + lane)));
    for (var l = 0u; l < 8u; l++) { out[c * 8u + l] = b[l]; }
  }
#else
  for (var c = 0u; c < UV / 4u; c++) {
    let b = bcast4(xLoad4(m, unitK(u, c * 4u + lane)));
    for (var l = 0u; l < 4u; l++) { out[c * 4u + l] = b[l]; }
  }
#endif
  return out;
}
#endif

// The x values of unit u for x row m: shared through the subgroup or loaded by every thread.
fn xUnitOf(m: u32, u: u32, lane: u32) -> Unit {
#if SUBGROUPS
  return xUnitShared(m, u, lane);
#else
  return xUnit(m, u);
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
#if SUBGROUPS
        @builtin(subgroup_invocation_id) sgLane: u32,
#endif
        @builtin(local_invocation_index) lid: u32) {
#if W_QUANT
  _ = wu[0]; // keeps the binding in the interface for formats whose units do not read it
#endif
  let n0 = (wid.x + wid.y * nwg.x) * (WG * R);
  let m0 = wid.z * MB;
  if (n0 >= params.N) { return; } // whole workgroup: subgroup operations below stay uniform
  var rows: array<u32, R>;
  for (var r = 0u; r < R; r++) { rows[r] = min(n0 + r * WG + lid, params.N - 1u); }
  var acc: array<f32, V>;
  for (var v = 0u; v < V; v++) { acc[v] = 0.0; }
  // Code size matters: CPU emulations expand every storage load into a per-lane loop, and an
  // unrolled body takes them seconds to minutes to compile. So the loops over the x rows (MB > 1)
  // and over the units of a group run with runtime bounds (compiled once), while R stays unrolled.
  // mc: rows of x in this workgroup (MB == 1 has its own straight path).
  let mc = min(MB, params.M - m0);
#if SUBGROUPS
  let lane = sgLane;
#else
  let lane = 0u;
#endif
  // ups: units per group (UPS; through min() with a runtime value, K / UNIT >= UPS, so the loop
  // is not unrolled); a group's units share a header, a k-quant super-block's scales, read once.
  let ups = min(UPS, params.K / UNIT);
  let groups = params.K / (UNIT * UPS);
  for (var g = 0u; g < groups; g++) {
    var hdr: array<Hdr, R>;
    for (var r = 0u; r < R; r++) { hdr[r] = wHeader(rows[r], g); }
    for (var j = 0u; j < ups; j++) {
      let u = g * UPS + j;
      if (MB == 1u) {
        // One x row: each row's unit is decoded and consumed at once (nothing held across rows).
        let xs = xUnitOf(m0, u, lane);
        for (var r = 0u; r < R; r++) { acc[r] = wDotH(rows[r], g, j, hdr[r], xs, acc[r]); }
      } else {
        // Several: the R decoded units are held while the x rows stream past them.
        var wv: array<Unit, R>;
        for (var r = 0u; r < R; r++) { wv[r] = wUnitH(rows[r], g, j, hdr[r]); }
        for (var m = 0u; m < mc; m++) {
          let xs = xUnitOf(m0 + m, u, lane);
          for (var r = 0u; r < R; r++) { acc[r * MB + m] = unitDot(wv[r], xs, acc[r * MB + m]); }
        }
      }
    }
  }
  for (var r = 0u; r < R; r++) {
    let n = n0 + r * WG + lid;
    for (var m = 0u; m < MB; m++) {
      if (n < params.N && m0 + m < params.M) { store(n, m0 + m, acc[r * MB + m]); }
    }
  }
}
#else
const TPV: u32 = WG / V;    // threads per value in the second reduction stage

var<workgroup> red: array<f32, WG * V>;
var<workgroup> red2: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
#if W_QUANT
  _ = wu[0];
#endif
  let n0 = (wid.x + wid.y * nwg.x) * R;
  let m0 = wid.z * MB;
  // Workgroups past the end still take part in the barriers below; they just store nothing.
  let live = n0 < params.N;
#if XPRO
  {
    // Sum of squares per group of the one x row, reduced over the workgroup.
    let G = params.K / params.nGroup;
    var ss: array<f32, 8>;
    for (var g = 0u; g < 8u; g++) { ss[g] = 0.0; }
    for (var k4 = lid * 4u; k4 < params.K; k4 += WG * 4u) {
      let r = xRaw4(k4);
      let g = k4 / params.nGroup;
      ss[g] = fma(r.x, r.x, fma(r.y, r.y, fma(r.z, r.z, fma(r.w, r.w, ss[g]))));
    }
    for (var g = 0u; g < G; g++) {
      red[lid] = ss[g];
      workgroupBarrier();
      for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) { red[lid] += red[lid + st]; }
        workgroupBarrier();
      }
      if (lid == 0u) { xRstd[g] = inverseSqrt(red[0] / f32(params.nGroup) + params.nEps); }
      workgroupBarrier();
    }
  }
#endif
  var acc: array<f32, V>;
  for (var v = 0u; v < V; v++) { acc[v] = 0.0; }
  if (live) {
    let units = params.K / UNIT;
    for (var u = lid; u < units; u += WG) {
      for (var r = 0u; r < R; r++) {
        // Rows past N re-read the last row (in bounds); their sums are never stored.
        let wv = wUnit(min(n0 + r, params.N - 1u), u);
        for (var m = 0u; m < MB; m++) { acc[r * MB + m] = unitDot(wv, xUnit(m0 + m, u), acc[r * MB + m]); }
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
    let n = n0 + lid / MB;
    let m = m0 + lid % MB;
    if (n < params.N && m < params.M) { store(n, m, s); }
  }
}
#endif
