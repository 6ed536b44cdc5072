// ssm_decode_step.wgsl: one decode token of the Mamba2 mixer core for each of B sequences in a
// single dispatch (docs/model.md §Mixer steps 2-5): causal conv1d + bias + SiLU on xBC with the
// conv-state ring update, then the recurrent scan with the D skip. Same math as conv1d.wgsl +
// conv1d_state.wgsl + ssm_scan.wgsl for T = 1, without the conv output ever reaching memory:
//   c[ch]   = silu(bias[ch] + sum_{k<K-1} w[ch,k] * ring[(pos-K+1+k) mod K, ch] + w[ch,K-1] * xBC[ch])
//   x = c[0:di], B = c[di:di+GN], C = c[di+GN:]
//   dt = clamp(softplus(dt_raw[h] + dt_bias[h]), dtMin, dtMax)
//   S[h,p,:] = exp(dt*A[h]) * S[h,p,:] + dt * x[h,p] * B[g,:];  y[h,p] = S[h,p,:] . C[g,:] + D[h] * x[h,p]
//   ring[pos mod K, ch] = xBC[ch]
// Writing row pos mod K is safe while other workgroups read rows pos-1 .. pos-K+1: the ring has K
// rows, one more than the conv reads. Each x channel's row is written by the lane that owns it; the
// B/C channels of group g by the first workgroup of the group's first head.
//
// Sequence b's states live anywhere in the two state buffers (slots of the state pool): its row of
// `seqs` gives their element offsets and the token's position.
//
// Bindings:
//   params (uniform)  B: u32 sequences; NH, P, headsPerGroup, pBlocks: u32; C (= convDim), K: u32;
//                     G: u32; xbcOff, dtOff, zxStride: u32 (elements: sequence b's xBC and dt sit
//                     at xbcOff / dtOff + b * zxStride in `zx`); dtMin, dtMax: f32; npt: u32
//   1 zx        array<f32>  in_proj rows [B, zxStride]                             read
//   2 convW     array<f32>  [C, K]                                                 read
//   3 convB     array<f32>  [C]                                                    read
//   4 convState array<f32>  rings [K, C] at seqs[b].x                              read_write
//   5 hp        array<vec4<f32>> [NH]  (dt_bias, A, D, 0)                          read
//   6 state     array<f32>  [NH, P, N] at seqs[b].y                                read_write
//   7 y         array<f32>  [B, NH * P]                                            read_write
//   8 seqs      array<vec4<u32>> [B]: (conv offset, state offset, position, 0)      read
// Dispatch: B * NH * ceil(P / PB) workgroups (linear id = wid.x + wid.y*nwg.x, bound-checked), the
//   geometry of ssm_scan.wgsl per sequence: workgroup = (sequence, head, block of PB rows), thread
//   (r, j) = (lid / LN, lid % LN) owns RPT rows and NPT state columns of each. B and C (2N values)
//   are convolved once per workgroup into workgroup memory.
// Defines: as ssm_scan.wgsl (N, LN, NPT, RPT, WG, PB, SUBGROUPS, DIRECT, K_END); TB is unused.

@group(0) @binding(1) var<storage, read> zx: array<f32>;
@group(0) @binding(2) var<storage, read> convW: array<f32>;
@group(0) @binding(3) var<storage, read> convB: array<f32>;
@group(0) @binding(4) var<storage, read_write> convState: array<f32>;
@group(0) @binding(5) var<storage, read> hp: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(8) var<storage, read> seqs: array<vec4<u32>>;

// Sequence of this workgroup: its zx row, ring and state offsets, and the token's position.
var<private> zxRow: u32;
var<private> ringBase: u32;
var<private> pos: u32;

var<workgroup> bc: array<f32, 2u * N>;   // conv outputs: B[g, 0..N) then C[g, 0..N)
#if !DIRECT
#if !SUBGROUPS
var<workgroup> red: array<f32, RPT * WG>;
#endif
#endif

// softplus and silu come from shaders/lib/activations.wgsl.

// silu(bias + conv) of channel ch at this token; the newest tap is the token's own raw input.
fn convAt(ch: u32) -> f32 {
  let K = params.K;
  let C = params.C;
  var acc = convB[ch];
  for (var k = 0u; k + 1u < K; k++) {
    // Position pos - (K-1) + k >= pos - K + 1; adding K keeps the ring index positive.
    let slot = (pos + 1u + k) % K;
    acc = fma(convW[ch * K + k], convState[ringBase + slot * C + ch], acc);
  }
  acc = fma(convW[ch * K + K - 1u], zx[zxRow + params.xbcOff + ch], acc);
  return silu(acc);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let NH = params.NH;
  let P = params.P;
  let perSeq = NH * params.pBlocks;
  let wAll = wid.x + wid.y * nwg.x;
  // No early return before the barrier below: workgroups past the end only skip the stores.
  let live = wAll < params.B * perSeq;
  let wClamped = min(wAll, params.B * perSeq - 1u);
  let b = wClamped / perSeq;
  let wc = wClamped % perSeq;
  let sq = seqs[b];
  zxRow = b * params.zxStride;
  ringBase = sq.x;
  pos = sq.z;
  let stateBase = sq.y;
  let yBase = b * NH * P;
  let h = wc / params.pBlocks;
  let r = lid / LN;
  let j = lid % LN;
  let pBlock = (wc % params.pBlocks) * PB;
  let g = h / params.headsPerGroup;
  let hv = hp[h];
  let di = NH * P;
  let GN = params.G * N;
  let slotNow = pos % params.K;
  let ownsBC = live && pBlock == 0u && h % params.headsPerGroup == 0u;

  for (var i = lid; i < 2u * N; i += WG) {
    let ch = di + select(i, GN + i - N, i >= N) + g * N;
    bc[i] = convAt(ch);
  }
  workgroupBarrier();
  // After the barrier: this workgroup has read every B/C history row it needs.
  if (ownsBC) {
    for (var i = lid; i < 2u * N; i += WG) {
      let ch = di + select(i, GN + i - N, i >= N) + g * N;
      convState[ringBase + slotNow * params.C + ch] = zx[zxRow + params.xbcOff + ch];
    }
  }

  let dtv = clamp(softplus(zx[zxRow + params.dtOff + h] + hv.x), params.dtMin, params.dtMax);
  let dA = exp(dtv * hv.y);
  for (var i = 0u; i < RPT; i++) {
    let p = pBlock + r + i * (WG / LN);
    let pc = min(p, P - 1u);
    let ch = h * P + pc;
    let xv = convAt(ch);
    let dx = dtv * xv;
    var acc = 0.0;
    for (var k = 0u; k < {{K_END}}; k++) {
      let n = j + k * LN;
      if (n < N) {
        let si = stateBase + (h * P + pc) * N + n;
        let v = fma(state[si], dA, dx * bc[n]);
        if (live && p < P) { state[si] = v; }
        acc = fma(v, bc[N + n], acc);
      }
    }
    if (j == 0u) {
      acc = fma(hv.z, xv, acc);
      // The lane that reads this x channel's history writes its new ring row, after its reads.
      if (live && p < P) { convState[ringBase + slotNow * params.C + ch] = zx[zxRow + params.xbcOff + ch]; }
    }
#if DIRECT
    if (live && p < P) { y[yBase + h * P + p] = acc; }
#else
#if SUBGROUPS
    var a = acc;
    for (var o = LN / 2u; o > 0u; o = o / 2u) { a += subgroupShuffleXor(a, o); }
    if (live && j == 0u && p < P) { y[yBase + h * P + p] = a; }
#else
    red[i * WG + lid] = acc;
#endif
#endif
  }
#if !DIRECT
#if !SUBGROUPS
  workgroupBarrier();
  for (var q = lid; q < PB; q += WG) {
    let i = q / (WG / LN);
    let rThread = q % (WG / LN);
    var sum = 0.0;
    for (var jj = 0u; jj < LN; jj++) { sum += red[i * WG + rThread * LN + jj]; }
    if (live && pBlock + q < P) { y[yBase + h * P + pBlock + q] = sum; }
  }
#endif
#endif
}
