// ssm_scan.wgsl: the recurrent selective scan, O(state) working memory, any T >= 1
// (SPEC.md §Mamba2 mixer steps 4-5, §Scan algorithms "Recurrent"). Per token t, head h, row p:
//   dt = clamp(softplus(dt_raw[t,h] + dt_bias[h]), dtMin, dtMax); dA = exp(dt * A[h])
//   S[h,p,:] = dA * S[h,p,:] + dt * x[t,h,p] * B[t,g,:]
//   y[t,h,p] = S[h,p,:] · C[t,g,:] + D[h] * x[t,h,p]          with g = h / (NH / G)
// The state is read once, carried in registers across all T tokens, and written back in place.
//
// Bindings:
//   params (uniform)  T, NH, P: u32; headsPerGroup: u32 (NH/G); pBlocks: u32 (ceil(P/PB));
//                     xOff, xStride, dtOff, dtStride, bOff, bStride, cOff, cStride: u32 (elements);
//                     dtMin, dtMax: f32 (dtMax = 3.4e38 when unbounded)
//   1 xs    array<f32>  x(t,h,p)  = xs[xOff + t*xStride + h*P + p]      read
//   2 dts   array<f32>  dt(t,h)   = dts[dtOff + t*dtStride + h]         read (raw, before bias)
//   3 bs    array<f32>  B(t,g,n)  = bs[bOff + t*bStride + g*N + n]      read
//   4 cs    array<f32>  C(t,g,n)  = cs[cOff + t*cStride + g*N + n]      read
//   5 hp    array<vec4<f32>> [NH]  (dt_bias, A, D, 0)                   read (ssm_scan_head_params)
//   6 state array<f32> [NH, P, N]  f32                                  read_write (in place)
//   7 y     array<f32> [T, NH*P]                                        write
// Dispatch: NH * ceil(P / PB) workgroups (linear id = wid.x + wid.y*nwg.x, bound-checked); one
//   workgroup per (head, block of PB rows p). Thread (r, j) = (lid / LN, lid % LN) owns row
//   p = block*PB + r and the NPT state columns n = j + k*LN (k < NPT) in registers; adjacent lanes
//   read adjacent B/C addresses.
// Reduction of y over n (LN lanes per row):
//   DIRECT (LN = 1): each thread owns a whole state row; no reduction. B/C addresses are then the
//     same for every thread of the workgroup (scalar loads on CPU emulations, which is why the host
//     picks it on software adapters; on real GPUs N registers per thread is too many at N >= 128).
//   SUBGROUPS: butterfly subgroupShuffleXor within each aligned group of LN lanes. Needs LN <= the
//     smallest subgroup size (WebGPU guarantees >= 4, so the host uses LN = 4) and subgroups made
//     of consecutive local invocation indices (true for 1-D workgroups on the implementations we
//     know; WGSL does not promise it).
//   else: each lane stores its partial sum for TB tokens in workgroup memory; one barrier per TB
//     tokens, then the workgroup sums the LN partials of each (t, r) and writes y.
// Defines (tuning knobs): N (d_state), LN (lanes per row: 4, 8 or 1), NPT = ceil(N/LN), PB (rows per
//   workgroup: 16), WG = PB*LN (64), DIRECT (LN == 1), TB (tokens per reduction block, fallback only: 4;
//   1 with SUBGROUPS, where it only sets the loop nesting), SUBGROUPS.

@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> dts: array<f32>;
@group(0) @binding(3) var<storage, read> bs: array<f32>;
@group(0) @binding(4) var<storage, read> cs: array<f32>;
@group(0) @binding(5) var<storage, read> hp: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

#if !DIRECT
#if !SUBGROUPS
var<workgroup> red: array<f32, TB * WG>;
#endif
#endif

// softplus(v) = log1p(exp(v)), with v > 20 passed through (SPEC step 4). WGSL has no log1p; this
// is the classic exact-ish form log(u) * e / (u - 1), u = 1 + e, which keeps tiny results accurate.
fn softplus(v: f32) -> f32 {
  if (v > 20.0) { return v; }
  let e = exp(v);
  let u = 1.0 + e;
  if (u == 1.0) { return e; }
  return log(u) * (e / (u - 1.0));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let NH = params.NH;
  let P = params.P;
  if (w >= NH * params.pBlocks) { return; }
  let h = w / params.pBlocks;
  let r = lid / LN;
  let j = lid % LN;
  let p = (w % params.pBlocks) * PB + r;
  let valid = p < P;
  let pc = min(p, P - 1u);            // clamped row for loads; results of invalid rows are dropped
  let g = h / params.headsPerGroup;
  let hv = hp[h];
  let T = params.T;

  var s: array<f32, NPT>;
  let sBase = (h * P + pc) * N;
  for (var k = 0u; k < NPT; k++) {
    let n = j + k * LN;
    s[k] = select(0.0, state[sBase + min(n, N - 1u)], n < N);
  }

  let xCol = h * P + pc;
  let gN = g * N;
  for (var t0 = 0u; t0 < T; t0 += TB) {
    let tn = min(TB, T - t0);
    for (var tt = 0u; tt < tn; tt++) {
      let t = t0 + tt;
      let dtv = clamp(softplus(dts[params.dtOff + t * params.dtStride + h] + hv.x), params.dtMin, params.dtMax);
      let dA = exp(dtv * hv.y);
      let xv = xs[params.xOff + t * params.xStride + xCol];
      let dx = dtv * xv;
      let bRow = params.bOff + t * params.bStride + gN;
      let cRow = params.cOff + t * params.cStride + gN;
      var acc = 0.0;
      for (var k = 0u; k < NPT; k++) {
        let n = j + k * LN;
        if (n < N) {
          s[k] = fma(s[k], dA, dx * bs[bRow + n]);
          acc = fma(s[k], cs[cRow + n], acc);
        }
      }
      if (j == 0u) { acc = fma(hv.z, xv, acc); }
#if DIRECT
      if (valid) { y[t * NH * P + h * P + p] = acc; }
#else
#if SUBGROUPS
      for (var o = LN / 2u; o > 0u; o = o / 2u) {
        acc += subgroupShuffleXor(acc, o);
      }
      if (j == 0u && valid) { y[t * NH * P + h * P + p] = acc; }
#else
      red[tt * WG + lid] = acc;
#endif
#endif
    }
#if !DIRECT
#if !SUBGROUPS
    workgroupBarrier();
    for (var i = lid; i < tn * PB; i += WG) {
      let tt = i / PB;
      let rr = i % PB;
      let pp = (w % params.pBlocks) * PB + rr;
      var sum = 0.0;
      for (var jj = 0u; jj < LN; jj++) { sum += red[tt * WG + rr * LN + jj]; }
      if (pp < P) { y[(t0 + tt) * NH * P + h * P + pp] = sum; }
    }
    workgroupBarrier();
#endif
#endif
  }

  if (valid) {
    for (var k = 0u; k < NPT; k++) {
      let n = j + k * LN;
      if (n < N) { state[sBase + n] = s[k]; }
    }
  }
}
