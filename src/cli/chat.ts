// `chat`: a REPL over one Session, so the recurrent state (and the shared blocks' KV cache) carries
// across turns and each turn prefills only its own new tokens, not the whole history.
//
// Which tokens are new: the chat template renders the whole conversation. After a reply, the
// model has consumed the rendering up to the generation prompt plus the reply's tokens. For the
// next turn we render the history again (now with the new user message and a generation prompt)
// and feed only the text past the previous rendering (llama.cpp's chat does the same). When the
// reply did not end in an end-of-sequence token (length limit) but the template closes assistant
// turns with one, that token text is fed first so the state matches what the template describes.
// A template whose rendering of earlier turns changes later (not a prefix) is handled by
// re-prefilling the whole conversation in a fresh session.
//
// --save writes the transcript and the session's snapshot after every turn; --load restores both,
// so the next turn feeds only its own tokens, exactly as if the chat had never stopped.
import { createInterface } from 'node:readline';
import type { MambaModel, Session, GenerateStats } from '../index.node.ts';
import { AbortError, InputError } from '../errors.ts';
import type { ChatMessage } from '../tokenizer/index.ts';
import type { ParsedArgs } from './args.ts';
import { statsLine } from './format.ts';
import { figuresOf, generateOptions, noTokenizer } from './generate.ts';
import { type CliIo, writeAll } from './io.ts';
import { loadChatFile, saveChatFile } from './chat-file.ts';

type ChatArgs = Extract<ParsedArgs, { command: 'chat' }>;

/** What ChatTranscript knows, as JSON (a saved chat). */
export interface TranscriptState {
  messages: ChatMessage[];
  consumed: string;
  lastPrompt: string;
  carry: string;
  diverged: boolean;
}

type Tok = NonNullable<MambaModel['tokenizer']>;

/**
 * The conversation as the template sees it and the text the model has consumed. `nextTurnText`
 * returns what to feed for a new user message; `recordReply` updates the bookkeeping after it.
 */
export class ChatTranscript {
  messages: ChatMessage[] = [];
  /** Template rendering of everything the session state covers ('' = nothing yet). */
  private consumed = '';
  /** Rendering up to and including the last generation prompt. */
  private lastPrompt = '';
  /** Text to feed before the next turn (an end-of-sequence token the reply lacked). */
  private carry = '';
  /** The template rendered the last prompt differently once the reply was added. */
  private diverged = false;

  constructor(private readonly render: (m: ChatMessage[], addGenerationPrompt: boolean) => string, system?: string) {
    if (system !== undefined && system !== '') this.messages.push({ role: 'system', content: system });
  }

  /** Text to feed for `user`, and whether the session must be restarted (history not a prefix). */
  nextTurnText(user: string): { text: string; restart: boolean } {
    this.messages.push({ role: 'user', content: user });
    const full = this.render(this.messages, true);
    this.lastPrompt = full;
    if (this.consumed === '') return { text: full, restart: false };
    if (this.diverged || !full.startsWith(this.consumed)) {
      this.diverged = false;
      return { text: full, restart: true };
    }
    return { text: this.carry + full.slice(this.consumed.length), restart: false };
  }

  /** Forgets the last user message (its turn failed before the model consumed anything). */
  dropLastUser(): void {
    if (this.messages.at(-1)?.role === 'user') this.messages.pop();
  }

  /**
   * After a reply: `reply` is its text, `endedWithEos` whether its last token was an eos id, and
   * `eosTexts` the texts of the eos tokens (to find one that closes assistant turns).
   */
  recordReply(reply: string, endedWithEos: boolean, eosTexts: readonly string[]): void {
    this.messages.push({ role: 'assistant', content: reply });
    const after = this.render(this.messages, false);
    this.carry = '';
    // The session consumed lastPrompt; if the history no longer renders with it as a prefix, the
    // state describes a different text than the template does from now on.
    this.diverged = !after.startsWith(this.lastPrompt);
    if (!this.diverged && !endedWithEos) {
      const assistantPart = after.slice(this.lastPrompt.length).trimEnd();
      const eos = eosTexts.find((t) => t !== '' && assistantPart.endsWith(t));
      if (eos !== undefined) this.carry = eos;
    }
    this.consumed = after;
  }

  reset(system?: string): void {
    this.messages = system !== undefined && system !== '' ? [{ role: 'system', content: system }] : [];
    this.consumed = '';
    this.lastPrompt = '';
    this.carry = '';
    this.diverged = false;
  }

  /** The system message the conversation started with, if any. */
  get system(): string | undefined {
    return this.messages[0]?.role === 'system' ? this.messages[0].content : undefined;
  }

  toJSON(): TranscriptState {
    return { messages: this.messages.map((m) => ({ ...m })), consumed: this.consumed, lastPrompt: this.lastPrompt, carry: this.carry, diverged: this.diverged };
  }

  static fromJSON(render: (m: ChatMessage[], addGenerationPrompt: boolean) => string, s: TranscriptState): ChatTranscript {
    const t = new ChatTranscript(render);
    t.messages = s.messages.map((m) => ({ ...m }));
    t.consumed = s.consumed;
    t.lastPrompt = s.lastPrompt ?? '';
    t.carry = s.carry ?? '';
    t.diverged = s.diverged === true;
    return t;
  }
}

export async function runChat(model: MambaModel, args: ChatArgs, io: CliIo): Promise<void> {
  const tok = model.tokenizer;
  if (!tok) throw noTokenizer(args.model);
  const render = (m: ChatMessage[], addGenerationPrompt: boolean) => tok.applyChatTemplate(m, { addGenerationPrompt });
  // Fail now, not after the first line is typed, when the checkpoint has no usable template.
  render([{ role: 'user', content: 'hi' }], true);

  let transcript = new ChatTranscript(render, args.system);
  let session: Session;
  if (args.load) {
    const saved = await loadChatFile(args.load);
    // restoreSession checks the snapshot belongs to this model (SnapshotError otherwise).
    session = await model.restoreSession(saved.snapshot);
    transcript = ChatTranscript.fromJSON(render, saved.transcript);
  } else {
    session = model.createSession();
  }
  const system = transcript.system;
  const save = async () => {
    if (args.save) await saveChatFile(args.save, { model: model.fingerprint, transcript: transcript.toJSON(), snapshot: await session.saveState() });
  };
  const eosTexts = [...new Set([...model.config.eosTokenIds, ...tok.eosTokenIds])].map((id) => tok.decode([id], { skipSpecialTokens: false }));
  const interactive = !args.json && io.stdin.isTTY === true;
  const rl = createInterface({ input: io.stdin, output: interactive ? io.stdout : undefined, terminal: interactive });
  const stats = !args.json && !args.quiet;
  let current: AbortController | undefined;
  rl.on('SIGINT', () => {
    // Ctrl-C stops the reply being generated; at the prompt it ends the chat.
    if (current) current.abort();
    else rl.close();
  });
  if (interactive) {
    const resumed = args.load ? `, continuing ${args.load} (${transcript.messages.filter((m) => m.role === 'user').length} turns)` : '';
    await writeAll(io.stderr, `chat with ${args.model}${resumed}: /reset starts over, /exit or Ctrl-D quits, Ctrl-C stops a reply\n`);
    rl.setPrompt('> ');
    rl.prompt();
  }
  let turn = 0;
  try {
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === '/exit' || line === '/quit') break;
      if (line === '/reset') {
        session.dispose();
        session = model.createSession();
        transcript.reset(system);
        await save();
        if (interactive) await writeAll(io.stderr, '(conversation reset)\n');
      } else if (line !== '') {
        turn++;
        current = new AbortController();
        try {
          await chatTurn(line);
        } catch (e) {
          // A bad turn (too long for the context, cancelled) does not end the chat.
          if (!(e instanceof InputError || e instanceof AbortError) || !interactive) throw e;
          await writeAll(io.stderr, `\n${e instanceof AbortError ? '(stopped)' : `error: ${e.message} (/reset starts over)`}\n`);
        } finally {
          current = undefined;
        }
        // The transcript and the state agree after a turn, also a stopped one.
        await save();
      }
      if (interactive) rl.prompt();
    }
  } finally {
    rl.close();
    session.dispose();
  }

  async function chatTurn(user: string): Promise<void> {
    const { text, restart } = transcript.nextTurnText(user);
    if (restart) {
      session.dispose();
      session = model.createSession();
    }
    const ids = tok!.encode(text, { addSpecialTokens: false });
    const decoder = tok!.createStreamDecoder({ skipSpecialTokens: true });
    const out: number[] = [];
    let reply = '';
    model.resetPeak();
    const opts = generateOptions(model, args, current!.signal);
    const eos = new Set(opts.eosTokenIds);
    const it = session.stream(ids, opts);
    let stats: GenerateStats | undefined;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) { stats = r.value; break; }
        out.push(r.value);
        const piece = decoder.push(r.value);
        reply += piece;
        if (!args.json) await writeAll(io.stdout, piece);
      }
    } catch (e) {
      if (out.length === 0) transcript.dropLastUser();
      else transcript.recordReply(reply.trim(), eos.has(out.at(-1)!), eosTexts);
      throw e;
    }
    const tail = decoder.flush();
    reply += tail;
    transcript.recordReply(reply.trim(), eos.has(out.at(-1) ?? -1), eosTexts);
    const figures = figuresOf(model, stats);
    if (args.json) {
      await writeAll(io.stdout, `${JSON.stringify({ turn, user, reply: reply.trim(), promptIds: ids, ids: out, stats: figures })}\n`);
      return;
    }
    await writeAll(io.stdout, `${tail}\n`);
    if (stats) await writeAll(io.stderr, `${statsLine(figures)}\n`);
  }
}
