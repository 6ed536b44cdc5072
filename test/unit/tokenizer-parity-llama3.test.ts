// Parity corpus vs @huggingface/tokenizers for the llama3 tokenizer (see test/tokenizer-corpus/parity-suite.ts).
import { runParitySuite } from '../tokenizer-corpus/parity-suite.ts';

runParitySuite('llama3');
