// The record layer's AEAD (third_party/mbedtls/record-aead.patch and
// record_aead.c): what mbedTLS's cipher layer does with the fast
// implementation must be byte for byte what its own code does, both ways,
// for every record size the record layer uses, and a forged record must
// fail and leave no plaintext behind.
#include <gtest/gtest.h>

#include <mbedtls/cipher.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "vt_record_aead.h"

namespace {

using Bytes = std::vector<unsigned char>;

Bytes fromHex(const std::string& hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<unsigned char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// One mbedTLS cipher context with a key, the fast implementation on or off
// at the moment the key is set (as the record layer sets it).
class Key {
 public:
  Key(mbedtls_cipher_type_t type, const Bytes& key, bool fast, mbedtls_operation_t op) {
    mbedtls_cipher_init(&ctx_);
    vt_record_aead_set_enabled(fast ? 1 : 0);
    ok_ = mbedtls_cipher_setup(&ctx_, mbedtls_cipher_info_from_type(type)) == 0 &&
          mbedtls_cipher_setkey(&ctx_, key.data(), static_cast<int>(key.size() * 8), op) == 0;
    vt_record_aead_set_enabled(1);
  }
  ~Key() { mbedtls_cipher_free(&ctx_); }
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  bool ok() const { return ok_; }

  // Ciphertext followed by the 16-byte tag, in place as the record layer does.
  Bytes seal(const Bytes& iv, const Bytes& ad, const Bytes& plain) {
    Bytes buf(plain.size() + 16);
    if (!plain.empty()) std::memcpy(buf.data(), plain.data(), plain.size());
    size_t olen = 0;
    int rc = mbedtls_cipher_auth_encrypt_ext(&ctx_, iv.data(), iv.size(), ad.data(), ad.size(),
                                             buf.data(), plain.size(), buf.data(), buf.size(),
                                             &olen, 16);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(olen, buf.size());
    return buf;
  }
  int open(const Bytes& iv, const Bytes& ad, Bytes& sealed, Bytes& plain) {
    plain.assign(sealed.size() - 16, 0xAA);
    size_t olen = 0;
    int rc = mbedtls_cipher_auth_decrypt_ext(&ctx_, iv.data(), iv.size(), ad.data(), ad.size(),
                                             sealed.data(), sealed.size(), plain.data(),
                                             plain.size(), &olen, 16);
    if (rc == 0) {
      EXPECT_EQ(olen, plain.size());
    }
    return rc;
  }

 private:
  mbedtls_cipher_context_t ctx_;
  bool ok_ = false;
};

struct Case {
  mbedtls_cipher_type_t type;
  size_t keyBytes;
  const char* name;
};
const Case kCases[] = {{MBEDTLS_CIPHER_AES_128_GCM, 16, "AES-128-GCM"},
                       {MBEDTLS_CIPHER_AES_256_GCM, 32, "AES-256-GCM"},
                       {MBEDTLS_CIPHER_CHACHA20_POLY1305, 32, "ChaCha20-Poly1305"}};

TEST(RecordAead, BuiltWhereLibcryptoIs) {
#ifdef VT_EXPECT_RECORD_AEAD
  EXPECT_EQ(vt_record_aead_set_enabled(1), 1);
  EXPECT_STREQ(vt_record_aead_name(), "openssl");
  vt_record_aead_set_enabled(0);
  EXPECT_STREQ(vt_record_aead_name(), "builtin");
  vt_record_aead_set_enabled(1);
#else
  EXPECT_EQ(vt_record_aead_set_enabled(1), 0);
  EXPECT_STREQ(vt_record_aead_name(), "builtin");
#endif
}

// RFC 8439 section 2.8.2: the published tag, through the fast path.
TEST(RecordAead, ChaChaPolyRfc8439Vector) {
  Bytes key(32);
  for (int i = 0; i < 32; ++i) key[i] = static_cast<unsigned char>(0x80 + i);
  Bytes iv = fromHex("070000004041424344454647");
  Bytes ad = fromHex("50515253c0c1c2c3c4c5c6c7");
  std::string text =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
      "future, sunscreen would be it.";
  Bytes plain(text.begin(), text.end());
  Key fast(MBEDTLS_CIPHER_CHACHA20_POLY1305, key, true, MBEDTLS_ENCRYPT);
  ASSERT_TRUE(fast.ok());
  Bytes sealed = fast.seal(iv, ad, plain);
  Bytes tag(sealed.end() - 16, sealed.end());
  EXPECT_EQ(tag, fromHex("1ae10b594f09e26a7e902ecbd0600691"));
  EXPECT_EQ(Bytes(sealed.begin(), sealed.begin() + 4), fromHex("d31a8d34"));
}

TEST(RecordAead, SameBytesAsMbedtlsBothWays) {
  std::mt19937 rng(7);
  auto random = [&](size_t n) {
    Bytes b(n);
    for (auto& c : b) c = static_cast<unsigned char>(rng());
    return b;
  };
  // Empty records, one byte, block edges, a full 16 KiB record and its
  // largest TLS 1.3 inner plaintext (content type byte included).
  const size_t sizes[] = {0, 1, 15, 16, 17, 63, 64, 65, 255, 1400, 8191, 16384, 16385};
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Bytes key = random(c.keyBytes);
    Key fastEnc(c.type, key, true, MBEDTLS_ENCRYPT);
    Key fastDec(c.type, key, true, MBEDTLS_DECRYPT);
    Key ownEnc(c.type, key, false, MBEDTLS_ENCRYPT);
    Key ownDec(c.type, key, false, MBEDTLS_DECRYPT);
    ASSERT_TRUE(fastEnc.ok() && fastDec.ok() && ownEnc.ok() && ownDec.ok());
    for (size_t n : sizes) {
      SCOPED_TRACE(n);
      Bytes iv = random(12), ad = random(5), plain = random(n);
      Bytes a = fastEnc.seal(iv, ad, plain);
      Bytes b = ownEnc.seal(iv, ad, plain);
      ASSERT_EQ(a, b);
      Bytes out;
      ASSERT_EQ(ownDec.open(iv, ad, a, out), 0);
      EXPECT_EQ(out, plain);
      ASSERT_EQ(fastDec.open(iv, ad, b, out), 0);
      EXPECT_EQ(out, plain);
      // The same handle both ways, as the cipher layer allows.
      ASSERT_EQ(fastEnc.open(iv, ad, a, out), 0);
      EXPECT_EQ(out, plain);
    }
  }
}

TEST(RecordAead, ForgeryFailsAndLeavesNoPlaintext) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Bytes key(c.keyBytes, 0x42), iv(12, 0x01), ad = fromHex("1703030100");
    Bytes plain(300, 0x5A);
    Key enc(c.type, key, true, MBEDTLS_ENCRYPT);
    Key dec(c.type, key, true, MBEDTLS_DECRYPT);
    ASSERT_TRUE(enc.ok() && dec.ok());
    Bytes sealed = enc.seal(iv, ad, plain);
    for (size_t flip : {size_t{0}, size_t{150}, sealed.size() - 1}) {
      SCOPED_TRACE(flip);
      Bytes bad = sealed;
      bad[flip] ^= 0x01;
      Bytes out;
      EXPECT_EQ(dec.open(iv, ad, bad, out), MBEDTLS_ERR_CIPHER_AUTH_FAILED);
      EXPECT_EQ(out, Bytes(out.size(), 0));
    }
    Bytes otherAd = ad;
    otherAd[4] ^= 0x80;
    Bytes out;
    EXPECT_EQ(dec.open(iv, otherAd, sealed, out), MBEDTLS_ERR_CIPHER_AUTH_FAILED);
    // And the good record still opens after the failures.
    ASSERT_EQ(dec.open(iv, ad, sealed, out), 0);
    EXPECT_EQ(out, plain);
  }
}

// What the fast code does not take (a nonce other than 12 bytes: GCM allows
// it, TLS never uses it) still works through mbedTLS's own code.
TEST(RecordAead, OtherNonceLengthsFallBackToMbedtls) {
  Bytes key(16, 0x11), iv(16, 0x22), ad(13, 0x33), plain(100, 0x44);
  Key fast(MBEDTLS_CIPHER_AES_128_GCM, key, true, MBEDTLS_ENCRYPT);
  Key own(MBEDTLS_CIPHER_AES_128_GCM, key, false, MBEDTLS_ENCRYPT);
  ASSERT_TRUE(fast.ok() && own.ok());
  Bytes a = fast.seal(iv, ad, plain);
  EXPECT_EQ(a, own.seal(iv, ad, plain));
  Bytes out;
  ASSERT_EQ(fast.open(iv, ad, a, out), 0);
  EXPECT_EQ(out, plain);
}

}  // namespace
