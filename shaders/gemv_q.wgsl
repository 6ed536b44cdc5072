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
//     walks them unit by unit: no reduction, no barrier, no workgroup memory. CPU emulations run a
//     workgroup as SIMD lanes and pay per lane for every storage load, so x, identical for all
//     rows, is loaded once per subgroup: each lane loads UV / 8 vec4 of the unit and
//     subgroupBroadcast hands them to all (when SUBGROUPS and the subgroup is exactly the 8
//     threads of the workgroup; otherwise every thread loads the whole unit of x itself).
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
//          XVEC (x offset and row stride % 4 == 0); SUBGROUPS (LANES: broadcast x; needs WG == 8);
//          UNIT64 (the library's units are 64 values: q4_k, q6_k).
// Tuning (launcher): GPU WG 64, R 4 (R * MB <= 32 values, WG * R * MB floats of workgroup memory,
//          within 16 KiB); LANES WG 8, R 2.
// Needs K % UNIT == 0 (32, or 256 for the k-quants: whole blocks per row).

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

// x[m, k .. k + 4) (m clamped into range: rows past M read row M - 1 and are never stored).
fn xLoad4(m: u32, k: u32) -> vec4<f32> {
  let e = params.xOffset + min(m, params.M - 1u) * params.xRowStride + k;
#if XVEC
  return x[e / 4u];
#else
  return vec4<f32>(x[e], x[e + 1u], x[e + 2u], x[e + 3u]);
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
// The unit of x with each lane loading UV / 8 of its vec4 (lane = subgroup invocation id).
fn xUnitShared(m: u32, u: u32, lane: u32) -> Unit {
  var out: Unit;
  let a = xLoad4(m, unitK(u, lane));
  out[0] = subgroupBroadcast(a, 0u); out[1] = subgroupBroadcast(a, 1u);
  out[2] = subgroupBroadcast(a, 2u); out[3] = subgroupBroadcast(a, 3u);
  out[4] = subgroupBroadcast(a, 4u); out[5] = subgroupBroadcast(a, 5u);
  out[6] = subgroupBroadcast(a, 6u); out[7] = subgroupBroadcast(a, 7u);
#if UNIT64
  let b = xLoad4(m, unitK(u, lane + 8u));
  out[8] = subgroupBroadcast(b, 0u); out[9] = subgroupBroadcast(b, 1u);
  out[10] = subgroupBroadcast(b, 2u); out[11] = subgroupBroadcast(b, 3u);
  out[12] = subgroupBroadcast(b, 4u); out[13] = subgroupBroadcast(b, 5u);
  out[14] = subgroupBroadcast(b, 6u); out[15] = subgroupBroadcast(b, 7u);
#endif
  return out;
}
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
#if SUBGROUPS
        @builtin(subgroup_invocation_id) sgLane: u32, @builtin(subgroup_size) sgSize: u32,
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
#if SUBGROUPS
  let bcast = WG == 8u && sgSize == 8u;
#endif
  let units = params.K / UNIT;
  for (var u = 0u; u < units; u++) {
    var xs: array<Unit, MB>;
    for (var m = 0u; m < MB; m++) {
#if SUBGROUPS
      if (bcast) { xs[m] = xUnitShared(m0 + m, u, sgLane); } else { xs[m] = xUnit(m0 + m, u); }
#else
      xs[m] = xUnit(m0 + m, u);
#endif
    }
    for (var r = 0u; r < R; r++) {
      let wv = wUnit(rows[r], u);
      for (var m = 0u; m < MB; m++) { acc[r * MB + m] = unitDot(wv, xs[m], acc[r * MB + m]); }
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
