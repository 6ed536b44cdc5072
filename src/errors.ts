// Typed errors. Each message says what went wrong and, where there is one, what to do about it.

export class MambaScanError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A checkpoint file (config, safetensors header or data) is unusable. */
export class CheckpointError extends MambaScanError {
  readonly file: string;
  readonly tensor?: string;
  constructor(file: string, reason: string, tensor?: string, options?: { cause?: unknown }) {
    super(`${file}${tensor ? ` [${tensor}]` : ''}: ${reason}`, options);
    this.file = file;
    this.tensor = tensor;
  }
}

/** config.json is missing fields, has wrong types or describes an unsupported model. */
export class ConfigError extends MambaScanError {}

/** Something the runtime does not implement (a dtype, a tokenizer component, a model variant). */
export class UnsupportedError extends MambaScanError {}

/** No WebGPU adapter or device, or one lacking a required limit/feature. */
export class DeviceError extends MambaScanError {}

/** The GPU device was lost; every pending and later call fails with this. */
export class DeviceLostError extends MambaScanError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(`WebGPU device lost (${reason}): ${message}`);
    this.reason = reason;
  }
}

/** WGSL failed to compile or a pipeline failed validation. */
export class ShaderCompileError extends MambaScanError {
  readonly label: string;
  readonly line?: number;
  constructor(label: string, message: string, line?: number, sourceLine?: string) {
    super(`shader ${label}${line !== undefined ? `, line ${line}` : ''}: ${message}${sourceLine ? `\n  > ${sourceLine.trim()}` : ''}`);
    this.label = label;
    this.line = line;
  }
}

/** Invalid arguments from the caller: token ids out of range, bad shapes, prompt too long. */
export class InputError extends MambaScanError {}

/** The model or request does not fit in the memory budget. */
export class OutOfMemoryError extends MambaScanError {
  readonly neededBytes: number;
  readonly availableBytes: number;
  constructor(message: string, neededBytes: number, availableBytes: number) {
    super(message);
    this.neededBytes = neededBytes;
    this.availableBytes = availableBytes;
  }
}

/** A generation was cancelled through its AbortSignal. */
export class AbortError extends MambaScanError {}

/** A saved session state is corrupt, truncated, or belongs to another model or configuration. */
export class SnapshotError extends MambaScanError {}

/**
 * A Hugging Face Hub request failed: a required file is missing (404), access was refused
 * (401/403: private or gated model without a token), or a transfer broke off or came back the
 * wrong size. `status` is the HTTP status when there was one.
 */
export class HubError extends MambaScanError {
  readonly url: string;
  readonly status?: number;
  constructor(url: string, status: number | undefined, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.url = url;
    this.status = status;
  }
}

/**
 * A batch loop (MambaModel.createBatcher, the server) refused a request because its queue of
 * waiting requests is full (or it is shutting down): retry later, or raise maxQueue.
 */
export class QueueFullError extends MambaScanError {}
