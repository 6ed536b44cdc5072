// Kernel definitions and their specialisation. A kernel is one WGSL file plus a typed description
// of its bindings and uniform params; the host writes params by name from the same description,
// and the prelude generated here declares the matching WGSL struct, so the two cannot drift.
//
// WGSL conventions every kernel follows:
//   @group(0) @binding(0) var<uniform> params: Params;   (generated; only if `params` is non-empty)
//   @group(0) @binding(1 + i)  -> bindings[i]
// Specialisation: `defines` become `const NAME: u32 = ...;` (integers), `const NAME = true/false;`
// (booleans), and `{{NAME}}` text substitution (any value); `#if NAME` / `#else` / `#endif` lines
// select text by a boolean define. `F16` true adds `enable f16;`, `SUBGROUPS` true `enable subgroups;`.

export type ParamType = 'u32' | 'i32' | 'f32';
export type DefineValue = string | number | boolean;

export interface KernelDef {
  /** Short name used in labels: `ssm_scan`. */
  readonly name: string;
  /** WGSL source (without the generated prelude). */
  readonly source: string;
  /** Storage bindings in binding order (binding 1 + index). */
  readonly bindings: readonly string[];
  /** Uniform fields in declaration order; each is 4 bytes. */
  readonly params?: readonly (readonly [string, ParamType])[];
  /**
   * Shared WGSL (shaders/lib/*.wgsl) placed before `source`, under the same defines: helpers
   * several kernels use (WGSL has no includes). Module-scope order does not matter in WGSL, so a
   * library may use bindings the kernel declares.
   */
  readonly libraries?: readonly string[];
  /** Workgroup size the source declares, for the host's grid computation (may depend on defines). */
  readonly workgroupSize?: (defines: Record<string, DefineValue>) => [number, number, number];
}

export function variantLabel(name: string, defines: Record<string, DefineValue>): string {
  const parts = Object.keys(defines).sort().map((k) => {
    const v = defines[k];
    return typeof v === 'boolean' ? (v ? k.toLowerCase() : '') : `${k.toLowerCase()}${v}`;
  }).filter(Boolean);
  return [name, ...parts].join('.');
}

/** Returns the full WGSL text and how many lines the prelude added (for error line mapping). */
export function specialise(def: KernelDef, defines: Record<string, DefineValue>): { code: string; preludeLines: number } {
  const prelude: string[] = [];
  if (defines.F16 === true) prelude.push('enable f16;');
  if (defines.SUBGROUPS === true) prelude.push('enable subgroups;');
  for (const [k, v] of Object.entries(defines)) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`kernel ${def.name}: define name ${k} must be UPPER_SNAKE`);
    if (typeof v === 'boolean') prelude.push(`const ${k} = ${v};`);
    else if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0) throw new Error(`kernel ${def.name}: numeric define ${k}=${v} must be a non-negative integer`);
      prelude.push(`const ${k}: u32 = ${v}u;`);
    }
  }
  const params = def.params ?? [];
  if (params.length > 0) {
    prelude.push(`struct Params { ${params.map(([n, t]) => `${n}: ${t}`).join(', ')} }`);
    prelude.push('@group(0) @binding(0) var<uniform> params: Params;');
  }
  // #if/#else/#endif, nestable; lines removed are kept as blanks so line numbers stay stable.
  const out: string[] = [];
  const stack: { active: boolean; taken: boolean }[] = [];
  const active = () => stack.every((s) => s.active);
  const libraryText = (def.libraries ?? []).join('\n');
  const libraryLines = def.libraries?.length ? libraryText.split('\n').length : 0;
  const text = def.libraries?.length ? `${libraryText}\n${def.source}` : def.source;
  for (const line of text.split('\n')) {
    const m = /^\s*#(if|else|endif)\b\s*(!?)\s*([A-Z0-9_]*)/.exec(line);
    if (m) {
      if (m[1] === 'if') {
        const v = defines[m[3]];
        if (v === undefined) throw new Error(`kernel ${def.name}: #if ${m[3]} has no define`);
        const cond = m[2] === '!' ? !v : Boolean(v);
        stack.push({ active: cond, taken: cond });
      } else if (m[1] === 'else') {
        const top = stack[stack.length - 1];
        if (!top) throw new Error(`kernel ${def.name}: #else without #if`);
        top.active = !top.taken;
      } else {
        if (!stack.pop()) throw new Error(`kernel ${def.name}: #endif without #if`);
      }
      out.push('');
      continue;
    }
    out.push(active() ? line : '');
  }
  if (stack.length) throw new Error(`kernel ${def.name}: unterminated #if`);
  let body = out.join('\n');
  body = body.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_, k: string) => {
    const v = defines[k];
    if (v === undefined) throw new Error(`kernel ${def.name}: {{${k}}} has no define`);
    return String(v);
  });
  // Error lines are reported in the kernel's own file: the prelude (at least one line, possibly
  // empty) and the libraries come first.
  return { code: `${prelude.join('\n')}\n${body}`, preludeLines: Math.max(1, prelude.length) + libraryLines };
}

/** Bytes of a kernel's uniform params block (16-byte multiple), 0 when it has none. */
export function paramBlockBytes(def: KernelDef): number {
  const n = (def.params ?? []).length;
  return n === 0 ? 0 : Math.ceil((n * 4) / 16) * 16;
}

/** Writes params by name, little-endian, into `view` at `offset`. Missing or unknown names throw. */
export function writeParams(def: KernelDef, values: Record<string, number>, view: DataView, offset: number): void {
  const params = def.params ?? [];
  for (let i = 0; i < params.length; i++) {
    const [n, t] = params[i];
    const v = values[n];
    if (v === undefined) throw new Error(`kernel ${def.name}: param ${n} not set`);
    if (t === 'f32') view.setFloat32(offset + i * 4, v, true);
    else if (t === 'u32') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`kernel ${def.name}: param ${n}=${v} is not a u32`);
      view.setUint32(offset + i * 4, v, true);
    } else view.setInt32(offset + i * 4, v, true);
  }
  let given = 0;
  for (const _ in values) given++;
  if (given !== params.length) {
    for (const k of Object.keys(values)) {
      if (!params.some(([n]) => n === k)) throw new Error(`kernel ${def.name}: unknown param ${k}`);
    }
  }
}

/** Packs params by name into a fresh uniform block (tests, one-off uploads). */
export function packParams(def: KernelDef, values: Record<string, number>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, paramBlockBytes(def)));
  writeParams(def, values, new DataView(buf), 0);
  return buf;
}
