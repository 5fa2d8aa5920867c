/* vless-tun: the record-layer AEAD of vt_record_aead.h. With VT_RECORD_AEAD
 * it is OpenSSL's libcrypto (EVP); without it only the switch below exists
 * and mbedTLS's own code does every record. Built into mbedcrypto. */
#include "vt_record_aead.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* -1: not decided yet (the environment is read on first use), 0 off, 1 on. */
static atomic_int vt_enabled = -1;

static int vt_is_enabled(void)
{
    int on = atomic_load_explicit(&vt_enabled, memory_order_relaxed);
    if (on < 0) {
        const char *env = getenv("VT_RECORD_AEAD");
        on = (env != NULL && strcmp(env, "builtin") == 0) ? 0 : 1;
        int expected = -1;
        /* A concurrent set_enabled() wins over the environment. */
        if (!atomic_compare_exchange_strong(&vt_enabled, &expected, on)) {
            on = expected;
        }
    }
    return on;
}

#if defined(VT_RECORD_AEAD)

#include <limits.h>
#include <openssl/evp.h>

#include "mbedtls/cipher.h"
#include "mbedtls/error.h"

struct vt_record_aead {
    EVP_CIPHER_CTX *ctx;
};

int vt_record_aead_set_enabled(int on)
{
    atomic_store(&vt_enabled, on ? 1 : 0);
    return 1;
}

const char *vt_record_aead_name(void)
{
    return vt_is_enabled() ? "openssl" : "builtin";
}

void *vt_record_aead_new(int cipher_type, const unsigned char *key, int key_bitlen)
{
    if (!vt_is_enabled() || key == NULL) {
        return NULL;
    }
    const EVP_CIPHER *cipher = NULL;
    switch ((mbedtls_cipher_type_t) cipher_type) {
        case MBEDTLS_CIPHER_AES_128_GCM:
            cipher = key_bitlen == 128 ? EVP_aes_128_gcm() : NULL;
            break;
        case MBEDTLS_CIPHER_AES_256_GCM:
            cipher = key_bitlen == 256 ? EVP_aes_256_gcm() : NULL;
            break;
        case MBEDTLS_CIPHER_CHACHA20_POLY1305:
            cipher = key_bitlen == 256 ? EVP_chacha20_poly1305() : NULL;
            break;
        default:
            break;
    }
    if (cipher == NULL) {
        return NULL;
    }
    struct vt_record_aead *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->ctx = EVP_CIPHER_CTX_new();
    /* The key schedule is done once here; a record only sets its nonce.
     * 12-byte nonces are both ciphers' default. enc = 1 is only where the
     * context starts: every record names its own direction. */
    if (h->ctx == NULL || EVP_CipherInit_ex(h->ctx, cipher, NULL, key, NULL, 1) != 1) {
        vt_record_aead_free(h);
        return NULL;
    }
    return h;
}

void vt_record_aead_free(void *handle)
{
    struct vt_record_aead *h = handle;
    if (h == NULL) {
        return;
    }
    EVP_CIPHER_CTX_free(h->ctx); /* clears the key schedule */
    free(h);
}

/* What OpenSSL's EVP takes: a 12-byte nonce, a 16-byte tag, int lengths. */
static int vt_handles(size_t iv_len, size_t ad_len, size_t ilen, size_t tag_len)
{
    return iv_len == 12 && tag_len == 16 && ad_len <= INT_MAX && ilen <= INT_MAX;
}

int vt_record_aead_seal(void *handle, const unsigned char *iv, size_t iv_len,
                        const unsigned char *ad, size_t ad_len,
                        const unsigned char *input, size_t ilen,
                        unsigned char *output, unsigned char *tag, size_t tag_len)
{
    struct vt_record_aead *h = handle;
    if (!vt_handles(iv_len, ad_len, ilen, tag_len)) {
        return VT_RECORD_AEAD_UNHANDLED;
    }
    int n = 0;
    int done = 0;
    if (EVP_CipherInit_ex(h->ctx, NULL, NULL, NULL, iv, 1) != 1 ||
        (ad_len > 0 && EVP_CipherUpdate(h->ctx, NULL, &n, ad, (int) ad_len) != 1) ||
        (ilen > 0 && EVP_CipherUpdate(h->ctx, output, &n, input, (int) ilen) != 1)) {
        return MBEDTLS_ERR_PLATFORM_HW_ACCEL_FAILED;
    }
    done = ilen > 0 ? n : 0;
    if (EVP_CipherFinal_ex(h->ctx, output + done, &n) != 1 || (size_t) (done + n) != ilen ||
        EVP_CIPHER_CTX_ctrl(h->ctx, EVP_CTRL_AEAD_GET_TAG, (int) tag_len, tag) != 1) {
        return MBEDTLS_ERR_PLATFORM_HW_ACCEL_FAILED;
    }
    return 0;
}

int vt_record_aead_open(void *handle, const unsigned char *iv, size_t iv_len,
                        const unsigned char *ad, size_t ad_len,
                        const unsigned char *input, size_t ilen,
                        unsigned char *output, const unsigned char *tag, size_t tag_len)
{
    struct vt_record_aead *h = handle;
    if (!vt_handles(iv_len, ad_len, ilen, tag_len)) {
        return VT_RECORD_AEAD_UNHANDLED;
    }
    int n = 0;
    int done = 0;
    if (EVP_CipherInit_ex(h->ctx, NULL, NULL, NULL, iv, 0) != 1 ||
        EVP_CIPHER_CTX_ctrl(h->ctx, EVP_CTRL_AEAD_SET_TAG, (int) tag_len, (void *) tag) != 1 ||
        (ad_len > 0 && EVP_CipherUpdate(h->ctx, NULL, &n, ad, (int) ad_len) != 1) ||
        (ilen > 0 && EVP_CipherUpdate(h->ctx, output, &n, input, (int) ilen) != 1)) {
        return MBEDTLS_ERR_PLATFORM_HW_ACCEL_FAILED;
    }
    done = ilen > 0 ? n : 0;
    if (EVP_CipherFinal_ex(h->ctx, output + done, &n) != 1 || (size_t) (done + n) != ilen) {
        /* As mbedTLS's own code does: no unauthenticated plaintext stays. */
        if (ilen > 0) {
            memset(output, 0, ilen);
        }
        return MBEDTLS_ERR_CIPHER_AUTH_FAILED;
    }
    return 0;
}

#else /* !VT_RECORD_AEAD */

int vt_record_aead_set_enabled(int on)
{
    atomic_store(&vt_enabled, on ? 1 : 0);
    return 0;
}

const char *vt_record_aead_name(void)
{
    (void) vt_is_enabled;
    return "builtin";
}

#endif
