// Package tokenizer encodes text to token ids and decodes ids to text for
// the vocabularies of the llama family that package vocab reads: GGUF
// tokenizer.ggml.* metadata, a Hugging Face tokenizer.model, and a Hugging
// Face tokenizer.json.
//
// # Two behaviours
//
// A vocabulary from a GGUF file (FromGGUF, or New on any vocab.Vocab)
// tokenizes as llama.cpp does:
//
//   - "llama" (SentencePiece-style BPE, Llama 1/2, Mistral, TinyLlama):
//     each space becomes "▁", one "▁" is prepended to every text fragment
//     at the start or after a special token (add_space_prefix), and
//     adjacent symbols merge in order of the score of the token they form,
//     characters outside the vocabulary falling back to <0xNN> byte
//     tokens. This differs from sentencepiece itself, which applies the
//     model's normalizer (remove_extra_whitespaces): llama.cpp, and this
//     package, keep every space (shared/goldens/tokenize/README.md).
//   - "gpt2" (byte-level BPE, Llama 3, Qwen2/3, SmolLM, GPT-2): the
//     pre-tokenizer named by tokenizer.ggml.pre splits the text, each word
//     is spelled in GPT-2's byte-to-unicode alphabet and merged by rank.
//     Supported names: llama-bpe (llama3, llama-v3), qwen2, gpt-2, smollm,
//     default.
//
// Special-token text is recognised as llama.cpp's tokenizer_st_partition
// does (longest token first), CONTROL and UNKNOWN tokens only when
// EncodeOptions.ParseSpecial is set, USER_DEFINED tokens always.
//
// A folder with a tokenizer.json (FromHFFolder) tokenizes as Hugging Face
// tokenizers does with that file: added tokens split out first
// (leftmost-longest, honouring lstrip, rstrip, single_word and normalized),
// then the normalizer (Prepend, Replace with a string, NFC, Sequence), the
// pre-tokenizer (Split with the Llama 3, Qwen2 or GPT-2 pattern, ByteLevel,
// Digits, Metaspace, Sequence), the BPE model (merge ranks, byte_fallback,
// ignore_merges, unk_token with fuse_unk) and the post-processor's special
// tokens (TemplateProcessing, RobertaProcessing, BertProcessing,
// ByteLevel). Anything else is refused with ErrUnsupported rather than
// tokenized differently. A folder with only a tokenizer.model gets the
// llama.cpp behaviour of its converted vocabulary.
//
// The regular expressions of the byte-level pre-tokenizers use look-ahead,
// which Go's regexp lacks; pretok.go holds hand-written splitters that
// give the same pieces. NFC uses tables generated from Python's
// unicodedata (gen_nfc.py, zz_generated_nfc.go).
//
// # Decoding
//
// Decode and Piece follow llama.cpp's detokenize and token_to_piece:
// "▁" reads as a space, <0xNN> tokens are reassembled into bytes,
// byte-level tokens are mapped back to bytes, CONTROL and UNKNOWN tokens
// are left out of Decode, and the space that add_space_prefix put in front
// is removed from the first token only (so a leading BOS keeps it).
// StreamDecoder emits text as generation produces ids, holding back an
// incomplete UTF-8 sequence until its last byte arrives.
//
// # Deliberate differences
//
// On input that is not valid UTF-8, a byte that does not start a valid
// sequence is a character of its own (llama.cpp trusts the lead byte's
// length, which can swallow the next character, and its BPE path replaces
// such bytes with U+FFFD); byte-level tokenizers therefore decode any input
// back exactly. Decode does no clean-up of spaces before punctuation
// (llama.cpp's clean_spaces for some BPE vocabularies), so that decoding
// stays the inverse of encoding. The special token ids llama.cpp defaults
// for a gpt2 vocabulary without bos/eos keys (11) are not assumed.
//
// # Speed
//
// Encoded words (and, for SentencePiece-style vocabularies in which no
// token continues past a space, the pieces between runs of "▁") are cached
// per tokenizer, as tokenizers caches words; a Tokenizer is safe for
// concurrent use.
package tokenizer
