#pragma once
// Comparing a secret a client sent (a bearer token, an API key) with the one
// configured, in constant time: SHA-256 of both, compared with
// CRYPTO_memcmp, so neither the content nor the length of the expected
// secret leaks through timing. Users link OpenSSL::Crypto.
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>

#include <string>
#include <string_view>

namespace specsteer {

inline bool token_equal(std::string_view given, std::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

// An "Authorization" header value that is "Bearer <expected>".
inline bool bearer_matches(std::string_view header, std::string_view expected) {
  constexpr std::string_view kBearer = "Bearer ";
  return header.size() > kBearer.size() && header.substr(0, kBearer.size()) == kBearer &&
         token_equal(header.substr(kBearer.size()), expected);
}

// Hex SHA-256 of `data`: names derived from a secret (cache keys that name
// nobody), digests of texts kept without the texts.
inline std::string sha256_hex(std::string_view data) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// n bytes from OpenSSL's CSPRNG.
inline std::string random_secret(size_t n = 32) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("cannot draw random bytes (OpenSSL RAND_bytes)");
  return out;
}

}  // namespace specsteer
