// attention_combine.wgsl: merges the split-K partials of attention_splitk.wgsl into the output:
//   M = max_s m_s;  L = sum_s l_s exp(m_s - M);  out[t, h, d] = sum_s acc_s[d] exp(m_s - M) / L
// (empty splits carry m = -3e38, l = 0, acc = 0 and drop out; split 0 always holds key 0).
//
// Bindings:
//   params (uniform)  rows: u32 (= T * nHeads); nSplits: u32
//   1 part  array<f32> [T, nHeads, nSplits, HD + 2] = (m, l, acc[0..HD))   read
//   2 out   array<f32> [T, nHeads * HD]                                    read_write
// Dispatch: one workgroup of WG threads per (t, h): rows workgroups, linear id wid.x + wid.y * nwg.x,
//   folded past 65535; threads stride over head dims. Each thread recomputes M and L (nSplits <= 64
//   reads, no barrier needed).
// Defines: HD head dim, WG threads. Tuning knobs: WG (default 64).

@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> outBuf: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let th = wid.x + wid.y * nwg.x;
  if (th >= params.rows) { return; }
  let nS = params.nSplits;
  let stride = HD + 2u;
  let base = th * nS * stride;
  var M = -3.0e38;
  for (var s = 0u; s < nS; s++) { M = max(M, part[base + s * stride]); }
  var L = 0.0;
  for (var s = 0u; s < nS; s++) { L += part[base + s * stride + 1u] * exp(part[base + s * stride] - M); }
  let inv = 1.0 / L;
  for (var d = lid; d < HD; d += WG) {
    var o = 0.0;
    for (var s = 0u; s < nS; s++) {
      let b = base + s * stride;
      o = fma(part[b + 2u + d], exp(part[b] - M), o);
    }
    outBuf[th * HD + d] = o * inv;
  }
}
