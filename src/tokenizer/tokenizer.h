#pragma once
// Tokenizers read from GGUF metadata, behaving like llama.cpp's (the reference
// the golden data comes from):
//   - "llama": SentencePiece-style (dummy space prefix, ' ' -> U+2581, greedy
//     highest-score bigram merges, <0xNN> byte fallback);
//   - "gpt2": byte-level BPE with merge ranks and the pre-tokenizer regex named
//     by tokenizer.ggml.pre (qwen2, qwen35, llama-bpe/llama3, gpt-2, default).
// Everything is built once at load; encode/decode are const and thread-safe.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace specsteer {

enum class ChatFormat { None, ChatML, Llama3 };

// One turn of a conversation: role "user" or "assistant".
struct ChatTurn {
  std::string role;
  std::string text;
};

class Tokenizer {
 public:
  // Throws specsteer::Error naming the metadata key that is missing or bad.
  // An unknown tokenizer.ggml.pre is an error (as in llama.cpp); a missing one
  // means llama.cpp's "default" BPE regexes.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& f);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: add BOS/EOS as the metadata says (tokenizer.ggml.add_bos_token /
  // add_eos_token; when absent llama.cpp's defaults: SPM add_bos, llama-bpe add_bos).
  // parse_special: text of CONTROL/UNKNOWN tokens becomes those tokens. As in
  // llama.cpp, USER_DEFINED tokens (e.g. Qwen's "<think>") are matched always.
  // Invalid UTF-8 throws Error naming the byte offset (nothing is replaced).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes of one token, as llama.cpp's token_to_piece(special=true): byte
  // tokens give their byte, SPM '▁' -> ' ', GPT-2 byte-unicode mapped back to
  // bytes; CONTROL/USER_DEFINED/UNKNOWN give their text; UNUSED tokens give "".
  // Throws Error for an id out of range.
  std::string token_bytes(int32_t id) const;
  // Concatenation of token_bytes. No leading-space stripping: an SPM encoding
  // decodes to " " + text (the dummy prefix), and BOS decodes to its text.
  std::string decode(std::span<const int32_t> ids) const;

  int n_vocab() const;
  int32_t bos() const;  // -1 when the model has none
  int32_t eos() const;
  bool add_bos() const;
  bool add_eos() const;
  // End of generation, with llama.cpp's rules: eos, eot, eom, FIM pad/repo/sep
  // and tokens whose text is an end-of-turn spelling (<|im_end|>, <|eot_id|>,
  // <|endoftext|>, ... — note llama.cpp also lists "</s>").
  bool is_eog(int32_t id) const;
  bool is_control(int32_t id) const;
  // Normal (or byte) token: part of the base vocabulary, not an added token.
  bool is_normal(int32_t id) const;
  const std::string& token_text(int32_t id) const;  // raw vocabulary string
  const std::string& model_type() const;            // "llama" or "gpt2"
  const std::string& pre_type() const;              // tokenizer.ggml.pre ("" when absent)
  ChatFormat chat_format() const;
  // One user turn ending with the assistant header; encode with parse_special.
  // ChatML: ["<|im_start|>system\n{sys}<|im_end|>\n"] "<|im_start|>user\n{msg}<|im_end|>\n<|im_start|>assistant\n".
  // Llama3 (BOS comes from encode): ["<|start_header_id|>system<|end_header_id|>\n\n{sys}<|eot_id|>"]
  //   "<|start_header_id|>user<|end_header_id|>\n\n{msg}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n".
  // None: the message itself ("{sys}\n\n{msg}" when a system text is given).
  std::string format_chat(std::string_view user_message, std::string_view system = {}) const;
  // A whole conversation (user and assistant turns, ending with a user turn)
  // ending with the assistant header: each earlier turn as the format writes
  // a finished turn, so the text of turns 1..n is a prefix of that of turns
  // 1..n+2 (what a prefix cache reuses). None: turns joined by blank lines.
  std::string format_chat(std::span<const ChatTurn> turns, std::string_view system = {}) const;

  struct Impl;

 private:
  Tokenizer();
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token bytes into valid UTF-8, holding back an incomplete
// multi-byte sequence until the next push completes it. Bytes that can never
// form valid UTF-8 are replaced at once by U+FFFD (one per maximal invalid
// subpart, as the Unicode standard recommends); finish() flushes a held
// incomplete sequence as one U+FFFD and resets the stream.
class Utf8Stream {
 public:
  std::string push(std::string_view bytes);
  std::string finish();

 private:
  std::string pending_;
};

// Draft/verify models can pair only when their vocabularies agree on every
// normal token (same id -> same text) and split text the same way (same model
// type and pre-tokenizer). Added/control tokens may differ and the vocab sizes
// may differ in the added-token tail. Returns false and sets *why (may be null).
bool vocab_compatible(const Tokenizer& a, const Tokenizer& b, std::string* why);

}  // namespace specsteer
