/* vless-tun: a faster AEAD under mbedTLS's record layer.
 *
 * record-aead.patch makes mbedtls_cipher_setkey() ask vt_record_aead_new()
 * for a handle on every AEAD key it sets, and the one-shot
 * mbedtls_cipher_auth_encrypt_ext()/_decrypt_ext() (what the TLS 1.2 and 1.3
 * record layers call, once per record) use the handle when there is one.
 * record_aead_openssl.c implements it with OpenSSL's libcrypto (stitched
 * AES-NI/VAES + PCLMUL AES-GCM and SIMD ChaCha20-Poly1305); mbedTLS keeps
 * the handshake, the key schedule and the record state machine. */
#ifndef VT_RECORD_AEAD_H
#define VT_RECORD_AEAD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* vt_record_aead_seal/open's answer for "not mine: use mbedTLS's own". */
#define VT_RECORD_AEAD_UNHANDLED 1

/* A handle for an mbedtls_cipher_type_t and key, or NULL when this cipher is
 * not accelerated (or acceleration is off). */
void *vt_record_aead_new(int cipher_type, const unsigned char *key, int key_bitlen);
void vt_record_aead_free(void *handle);

/* Encrypts ilen bytes (output may equal input) and writes the tag. Returns
 * 0, an MBEDTLS_ERR_CIPHER_* code, or VT_RECORD_AEAD_UNHANDLED. */
int vt_record_aead_seal(void *handle, const unsigned char *iv, size_t iv_len,
                        const unsigned char *ad, size_t ad_len,
                        const unsigned char *input, size_t ilen,
                        unsigned char *output, unsigned char *tag, size_t tag_len);
/* Decrypts and checks the tag: 0, MBEDTLS_ERR_CIPHER_AUTH_FAILED (output
 * zeroed), another MBEDTLS_ERR_CIPHER_* code, or VT_RECORD_AEAD_UNHANDLED. */
int vt_record_aead_open(void *handle, const unsigned char *iv, size_t iv_len,
                        const unsigned char *ad, size_t ad_len,
                        const unsigned char *input, size_t ilen,
                        unsigned char *output, const unsigned char *tag, size_t tag_len);

/* Process-wide switch, for benchmarks and tests that compare with mbedTLS's
 * own code: 1 on (the default unless the environment has
 * VT_RECORD_AEAD=builtin), 0 off. Applies to keys set afterwards. Returns
 * whether a fast implementation is built in at all. */
int vt_record_aead_set_enabled(int on);
/* The implementation keys set now would get: "openssl" or "builtin". */
const char *vt_record_aead_name(void);

#ifdef __cplusplus
}
#endif

#endif
