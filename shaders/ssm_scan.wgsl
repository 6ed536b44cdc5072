// ssm_scan.wgsl: the recurrent selective scan, O(state) working memory, any T >= 1
// (docs/model.md §Mixer steps 4-5, §Scan algorithms "Recurrent"). Per token t, head h, row p:
//   dt = clamp(softplus(dt_raw[t,h] + dt_bias[h]), dtMin, dtMax); dA = exp(dt * A[h])
//   S[h,p,:] = dA * S[h,p,:] + dt * x[t,h,p] * B[t,g,:]
//   y[t,h,p] = S[h,p,:] · C[t,g,:] + D[h] * x[t,h,p]          with g = h / (NH / G)
// The state is read once, carried in registers across all T tokens, and written back in place.
//
// Bindings:
//   params (uniform)  T, NH, P: u32; headsPerGroup: u32 (NH/G); pBlocks: u32 (ceil(P/PB));
//                     xOff, xStride, dtOff, dtStride, bOff, bStride, cOff, cStride: u32 (elements);
//                     dtMin, dtMax: f32 (dtMax = 3.4e38 when unbounded); npt: u32 (= NPT); yOff: u32 (elements)
//   1 xs    array<f32>  x(t,h,p)  = xs[xOff + t*xStride + h*P + p]      read
//   2 dts   array<f32>  dt(t,h)   = dts[dtOff + t*dtStride + h]         read (raw, before bias)
//   3 bs    array<f32>  B(t,g,n)  = bs[bOff + t*bStride + g*N + n]      read
//   4 cs    array<f32>  C(t,g,n)  = cs[cOff + t*cStride + g*N + n]      read
//   5 hp    array<vec4<f32>> [NH]  (dt_bias, A, D, 0)                   read (ssm_scan_head_params)
//   6 state array<f32> [NH, P, N]  f32                                  read_write (in place)
//   7 y     array<f32> [T, NH*P] from yOff                              write
// Dispatch: NH * ceil(P / PB) workgroups (linear id = wid.x + wid.y*nwg.x, bound-checked); one
//   workgroup per (head, block of PB = RPT*WG/LN rows p). Thread (r, j) = (lid / LN, lid % LN) owns
//   rows p_i = block*PB + r + i*WG/LN (i < RPT) and, of each, the NPT state columns n = j + k*LN
//   (k < NPT), in registers. Adjacent lanes read adjacent B/C addresses; each B/C load feeds RPT rows.
// Reduction of y over n (LN lanes per row):
//   DIRECT (LN = 1): each thread owns whole state rows; no reduction (N registers per row, so
//     only sensible for small N; a knob, not the default).
//   SUBGROUPS: butterfly subgroupShuffleXor within each aligned group of LN lanes. Needs LN <= the
//     smallest subgroup size (WebGPU guarantees >= 4, so the host uses LN = 4) and subgroups made
//     of consecutive local invocation indices (true for 1-D workgroups on the implementations we
//     know; WGSL does not promise it).
//   else: each lane stores its partial sum for TB tokens in workgroup memory; one barrier per TB
//     tokens, then the workgroup sums the LN partials of each (t, r) and writes y.
// Defines (tuning knobs): N (d_state); LN (lanes per row: 4 subgroup, 8/4 workgroup, 1 direct);
//   NPT = ceil(N/LN); RPT (rows per thread: clamp(64/NPT, 1, 4)); WG (64); PB = RPT*WG/LN;
//   DIRECT (LN == 1); SUBGROUPS; TB (tokens per reduction block, workgroup path only: 4, else 1).
//   Registers per thread for the state: NPT*RPT (64 for N = 128 on the subgroup path).
//   K_END: the column loop bound, as text: `NPT` (constant: the compiler unrolls it and keeps the
//   state in registers; real GPUs) or `params.npt` (runtime: software adapters, where LLVM needs
//   6-65 s per fully unrolled variant on a cold shader cache).

@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> dts: array<f32>;
@group(0) @binding(3) var<storage, read> bs: array<f32>;
@group(0) @binding(4) var<storage, read> cs: array<f32>;
@group(0) @binding(5) var<storage, read> hp: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

#if !DIRECT
#if !SUBGROUPS
var<workgroup> red: array<f32, TB * RPT * WG>;
#endif
#endif

// softplus comes from shaders/lib/activations.wgsl.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let NH = params.NH;
  let P = params.P;
  if (w >= NH * params.pBlocks) { return; }
  let h = w / params.pBlocks;
  let r = lid / LN;                   // row thread, 0..WG/LN-1
  let j = lid % LN;                   // lane within the row
  let pBlock = (w % params.pBlocks) * PB;
  let g = h / params.headsPerGroup;
  let hv = hp[h];
  let T = params.T;
  let gN = g * N;

  // Rows p_i = pBlock + r + i*(WG/LN), i < RPT; rows past P run on a clamped row, never stored.
  var s: array<f32, NPT * RPT>;
  var xCol: array<u32, RPT>;
  for (var i = 0u; i < RPT; i++) {
    let pc = min(pBlock + r + i * (WG / LN), P - 1u);
    xCol[i] = params.xOff + h * P + pc;
    for (var k = 0u; k < {{K_END}}; k++) {
      let n = j + k * LN;
      s[k * RPT + i] = select(0.0, state[(h * P + pc) * N + min(n, N - 1u)], n < N);
    }
  }

  for (var t0 = 0u; t0 < T; t0 += TB) {
    let tn = min(TB, T - t0);
    for (var tt = 0u; tt < tn; tt++) {
      let t = t0 + tt;
      let dtv = clamp(softplus(dts[params.dtOff + t * params.dtStride + h] + hv.x), params.dtMin, params.dtMax);
      let dA = exp(dtv * hv.y);
      var xv: array<f32, RPT>;
      var dx: array<f32, RPT>;
      var acc: array<f32, RPT>;
      for (var i = 0u; i < RPT; i++) {
        // Explicit: Dawn on lavapipe and SwiftShader did not re-zero this array per iteration.
        acc[i] = 0.0;
        xv[i] = xs[xCol[i] + t * params.xStride];
        dx[i] = dtv * xv[i];
      }
      let bRow = params.bOff + t * params.bStride + gN;
      let cRow = params.cOff + t * params.cStride + gN;
      for (var k = 0u; k < {{K_END}}; k++) {
        let n = j + k * LN;
        if (n < N) {
          // One B and one C load serve RPT rows.
          let bv = bs[bRow + n];
          let cv = cs[cRow + n];
          for (var i = 0u; i < RPT; i++) {
            let v = fma(s[k * RPT + i], dA, dx[i] * bv);
            s[k * RPT + i] = v;
            acc[i] = fma(v, cv, acc[i]);
          }
        }
      }
      for (var i = 0u; i < RPT; i++) {
        if (j == 0u) { acc[i] = fma(hv.z, xv[i], acc[i]); }
        let p = pBlock + r + i * (WG / LN);
#if DIRECT
        if (p < P) { y[params.yOff + t * NH * P + h * P + p] = acc[i]; }
#else
#if SUBGROUPS
        var a = acc[i];
        for (var o = LN / 2u; o > 0u; o = o / 2u) {
          a += subgroupShuffleXor(a, o);
        }
        if (j == 0u && p < P) { y[params.yOff + t * NH * P + h * P + p] = a; }
#else
        red[(tt * RPT + i) * WG + lid] = acc[i];
#endif
#endif
      }
    }
#if !DIRECT
#if !SUBGROUPS
    workgroupBarrier();
    for (var q = lid; q < tn * PB; q += WG) {
      let tt = q / PB;
      let rr = q % PB;                 // = r + i*(WG/LN)
      let i = rr / (WG / LN);
      let rThread = rr % (WG / LN);
      var sum = 0.0;
      for (var jj = 0u; jj < LN; jj++) { sum += red[(tt * RPT + i) * WG + rThread * LN + jj]; }
      if (pBlock + rr < P) { y[params.yOff + (t0 + tt) * NH * P + h * P + pBlock + rr] = sum; }
    }
    workgroupBarrier();
#endif
#endif
  }

  for (var i = 0u; i < RPT; i++) {
    let p = pBlock + r + i * (WG / LN);
    if (p < P) {
      for (var k = 0u; k < {{K_END}}; k++) {
        let n = j + k * LN;
        if (n < N) { state[(h * P + p) * N + n] = s[k * RPT + i]; }
      }
    }
  }
}
