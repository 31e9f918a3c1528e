// Package vocab converts tokenizer vocabularies between the Hugging Face
// folder layout and GGUF's tokenizer.ggml.* metadata, in both directions.
// It moves vocabulary data only (tokens, scores, types, merges, special ids,
// flags, chat template); it does not encode or decode text.
//
// # Kinds
//
// Two tokenizer kinds of the llama family are handled (GGUF-LLAMACPP.md §2):
//
//   - "llama": SentencePiece-style BPE (Llama 1/2, Mistral, TinyLlama,
//     OpenLLaMA). Pieces use "▁" (U+2581) for spaces and "<0xNN>" byte
//     tokens; merge priority is the token score.
//   - "gpt2": byte-level BPE (Llama 3, Qwen2/3, SmolLM, GPT-2). Tokens are
//     in the GPT-2 byte-to-unicode alphabet; merges are "left right"
//     strings; tokenizer.ggml.pre names the pre-tokenizer.
//
// # Hugging Face → GGUF
//
// FromHFFolder follows what llama.cpp's convert_hf_to_gguf.py writes for a
// LlamaForCausalLM folder (LlamaModel.set_vocab):
//
//  1. tokenizer.model present: the SentencePiece path
//     (_create_vocab_sentencepiece). The vocabulary is padded to
//     config.json's vocab_size with "[PADi]" (score -10000, UNUSED);
//     added_tokens.json entries become USER_DEFINED (score -1000);
//     tokenizer_config.json's added_tokens_decoder entries become CONTROL
//     when "special" (or when they look special, "<|…|>"), USER_DEFINED
//     otherwise, with score -1000. USER_DEFINED pieces of the .model itself
//     become NORMAL, as sentencepiece reports them.
//  2. otherwise a tokenizer.json with a byte_fallback BPE model: the
//     Llama-HF path (LlamaHfVocab). Byte tokens are BYTE, the special tokens
//     of tokenizer_config.json CONTROL, extra added tokens USER_DEFINED.
//  3. otherwise a tokenizer.json with a byte-level BPE model: the GPT-2
//     path (get_vocab_base); ids missing up to vocab_size become "[PADi]"
//     UNUSED; merges are read in both the "a b" and ["a", "b"] forms.
//
// Special ids, add_bos/add_eos and the chat template then follow gguf-py's
// SpecialVocab: ids of tokenizer_config.json's bos/eos/unk/pad tokens are
// looked up among tokenizer.json's added_tokens, then config.json's
// *_token_id fill the ones still missing; a TemplateProcessing
// post-processor sets add_bos/add_eos (and add_sep, kept internally and
// written back by ToMeta); the chat template comes from
// tokenizer_config.json, chat_template.jinja or chat_template.json (of a
// list of named templates, the one named "default"). tokenizer_config.json's
// add_prefix_space becomes add_space_prefix, as LlamaModel.set_vocab does.
//
// Deliberate differences from the Python converter, each harmless or a fix:
// the Llama-HF path derives scores from the merge ranks (the converter
// writes -1000 for every token, which leaves llama.cpp's SentencePiece
// tokenizer without merge priorities); the pre-tokenizer name is chosen from
// the pre_tokenizer configuration rather than from a hash of encoded text; an
// eos_token_id list in config.json contributes its first id; a
// tokenizer.model with add_dummy_prefix false sets add_space_prefix false;
// special_tokens_map.json stands in for a special token tokenizer_config.json
// does not name; ids in a tokenizer.json without config.json must have no
// holes (the converter's assertion), so that a tiny file cannot demand a
// huge vocabulary.
//
// # GGUF → Hugging Face
//
// FromMeta reads the keys back; WriteHF writes tokenizer.json,
// tokenizer_config.json, special_tokens_map.json and, for the llama kind, a
// tokenizer.model rebuilt from tokens, scores and types, so that the folder
// converts back to the same vocabulary.
//
// # Errors
//
// Bad input is reported as a *formats.FormatError naming the file and the
// field, wrapping one of this package's rule sentinels (ErrNoTokenizer,
// ErrProtobuf, ErrJSON, ErrVocab, ErrMeta, ErrUnsupportedTokenizer,
// ErrTooLarge), which wrap formats.ErrFormat, formats.ErrUnsupported or
// formats.ErrLimit. No input makes the readers panic, and nothing is
// allocated from a length or count that was not checked against the input
// size or MaxTokens first.
package vocab
