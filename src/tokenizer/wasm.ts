// Thin typed wrapper around build/tokenizer.wasm (assembly/tokenizer/index.ts). One instance per
// Tokenizer: each has its own linear memory holding the vocab, merge table and scratch buffers.

import wasmBytes from '../../build/tokenizer.wasm';
import { MambaScanError } from '../errors.ts';

interface RawExports {
  memory: WebAssembly.Memory;
  inputBuffer(bytes: number): number;
  rangeBuffer(count: number): number;
  outputPtr(): number;
  outputLen(): number;
  resetOutput(): void;
  vocabArena(count: number, bytes: number): number;
  vocabOffsets(): number;
  vocabBuild(): void;
  tokenId(n: number): number;
  mergeBuffer(count: number): number;
  mergeBuild(): void;
  configure(flags: number, unk: number): number;
  configureDone(): void;
  encodePieces(textLen: number, nRanges: number): number;
  encodeSplit(textLen: number, kind: number): number;
  splitOnly(textLen: number, kind: number): number;
  decodeTables(count: number, bytes: number, stripFirst: number): number;
  decodeOffsets(): number;
  decodeFlags(): number;
  decodeOutPtr(): number;
  decodeIds(n: number, skip: number, first: number): number;
}

let compiled: Promise<WebAssembly.Module> | undefined;

export class TokenizerWasm {
  readonly x: RawExports;
  private buf: ArrayBuffer | null = null;
  private u8v = new Uint8Array(0);
  private i32v = new Int32Array(0);

  private constructor(x: RawExports) { this.x = x; }

  static async create(): Promise<TokenizerWasm> {
    // The module is compiled once per process; every tokenizer instantiates its own memory.
    compiled ??= WebAssembly.compile(wasmBytes as Uint8Array<ArrayBuffer>);
    const instance = await WebAssembly.instantiate(await compiled, {
      env: {
        abort: (_msg: number, _file: number, line: number, col: number) => {
          throw new MambaScanError(`tokenizer wasm aborted at ${line}:${col}`);
        },
      },
    });
    return new TokenizerWasm(instance.exports as unknown as RawExports);
  }

  /** Byte view of the whole memory (re-created after the memory grows). */
  get u8(): Uint8Array { this.refresh(); return this.u8v; }
  get i32(): Int32Array { this.refresh(); return this.i32v; }
  private refresh(): void {
    const b = this.x.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.u8v = new Uint8Array(b);
      this.i32v = new Int32Array(b);
    }
  }
}
