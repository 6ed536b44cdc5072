// Parity corpus vs @huggingface/tokenizers for the llama2 tokenizer (see test/tokenizer-corpus/parity-suite.ts).
import { runParitySuite } from '../tokenizer-corpus/parity-suite.ts';

runParitySuite('llama2');
