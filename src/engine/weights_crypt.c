/* Encrypted weights: the pack's chunk cipher (occ/weights_crypt.h, shared
 * with the packer) and the engine's stash cipher (weights_crypt_int.h).
 * AES-256-GCM and HKDF-SHA256 from OpenSSL; nothing hand-rolled. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "engine/weights_crypt_int.h"
#include "occ/weights_crypt.h"

#define GCM_STEP (1u << 30) /* EVP takes int lengths */

static const char INFO_CHUNK_KEY[] = "occ weights v1: chunk key";
static const char INFO_KEY_CHECK[] = "occ weights v1: key check";

static void put32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static int hkdf(const uint8_t key[32], const uint8_t salt[16], const char *info, uint8_t out[32])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    OSSL_PARAM p[5];
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, 32);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 16);
    p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    p[4] = OSSL_PARAM_construct_end();
    int ok = kc && EVP_KDF_derive(kc, out, 32, p) == 1;
    EVP_KDF_CTX_free(kc);
    return ok;
}

/* A GCM context keyed once; every message sets its own nonce. */
static EVP_CIPHER_CTX *gcm_new(const uint8_t key[32])
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (x && EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, key, NULL, 1) == 1)
        return x;
    EVP_CIPHER_CTX_free(x);
    return NULL;
}

static int gcm_begin(EVP_CIPHER_CTX *x, int enc, uint32_t i, const uint8_t *aad, int aad_size)
{
    uint8_t iv[12] = {0};
    int len = 0;
    put32(iv, i);
    return EVP_CipherInit_ex(x, NULL, NULL, NULL, iv, enc) == 1 &&
           EVP_CipherUpdate(x, NULL, &len, aad, aad_size) == 1;
}

/* In place (in == out, allowed for GCM). */
static int gcm_update(EVP_CIPHER_CTX *x, uint8_t *buf, uint64_t size)
{
    for (uint64_t at = 0; at < size;) {
        int n = (int)(size - at < GCM_STEP ? size - at : GCM_STEP), len = 0;
        if (EVP_CipherUpdate(x, buf + at, &len, buf + at, n) != 1 || len != n)
            return 0;
        at += (uint64_t)n;
    }
    return 1;
}

static int gcm_seal_end(EVP_CIPHER_CTX *x, uint8_t tag[16])
{
    uint8_t none[16];
    int len = 0;
    return EVP_CipherFinal_ex(x, none, &len) == 1 && len == 0 &&
           EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
}

/* The tag comparison is OpenSSL's (CRYPTO_memcmp). */
static int gcm_open_end(EVP_CIPHER_CTX *x, const uint8_t tag[16])
{
    uint8_t none[16];
    int len = 0;
    return EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) == 1 &&
           EVP_CipherFinal_ex(x, none, &len) == 1 && len == 0;
}

/* ---- the pack's chunk cipher ---- */

struct occ_wcrypt {
    EVP_CIPHER_CTX *gcm;
    uint8_t pack_id[16];
};

occ_status occ_wcrypt_new(const uint8_t key[32], const uint8_t pack_id[16], uint8_t check_out[32],
                          occ_wcrypt **out, occ_error *e)
{
    *out = NULL;
    occ_wcrypt *c = calloc(1, sizeof *c);
    if (!c)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    uint8_t ck[32];
    int ok = hkdf(key, pack_id, INFO_CHUNK_KEY, ck) && (c->gcm = gcm_new(ck)) != NULL;
    OPENSSL_cleanse(ck, sizeof ck);
    if (ok && check_out)
        ok = hkdf(key, pack_id, INFO_KEY_CHECK, check_out);
    if (!ok) {
        occ_wcrypt_free(c);
        return occ_fail(e, OCC_ERR_INTERNAL, "weights key derivation (HKDF-SHA256, AES-256-GCM) failed");
    }
    memcpy(c->pack_id, pack_id, 16);
    *out = c;
    return OCC_OK;
}

occ_status occ_wcrypt_for_model(const occ_model *m, const uint8_t *key, occ_wcrypt **out, occ_error *e)
{
    *out = NULL;
    if (m->weights_crypt == OCC_WCRYPT_NONE) {
        if (key)
            return occ_fail(e, OCC_ERR_INVALID, "a weights key was given but this pack's weights "
                                                "are not encrypted (drop the key, or pack with --encrypt-key)");
        return OCC_OK;
    }
    if (m->weights_crypt != OCC_WCRYPT_AES256GCM)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "weights encryption scheme %u is not supported",
                        m->weights_crypt);
    if (!key)
        return occ_fail(e, OCC_ERR_KEY, "this pack's weights are encrypted (AES-256-GCM): give the "
                                        "model key it was packed with (--key FILE)");
    uint8_t check[32];
    occ_status st = occ_wcrypt_new(key, m->pack_id, check, out, e);
    if (!st && CRYPTO_memcmp(check, m->key_check, 32) != 0) {
        occ_wcrypt_free(*out);
        *out = NULL;
        st = occ_fail(e, OCC_ERR_KEY, "the weights key does not match this pack (key check failed): "
                                      "give the key it was packed with");
    }
    OPENSSL_cleanse(check, sizeof check);
    return st;
}

static int chunk_aad(const occ_wcrypt *c, uint32_t i, const occ_chunk *ch, uint8_t aad[44])
{
    memcpy(aad, "OCCWGT1", 8);
    memcpy(aad + 8, c->pack_id, 16);
    put32(aad + 24, i);
    put64(aad + 28, ch->offset);
    put64(aad + 36, ch->size);
    return 44;
}

occ_status occ_wcrypt_seal(occ_wcrypt *c, uint32_t i, const occ_chunk *ch, uint8_t *buf, uint8_t tag[16],
                           occ_error *e)
{
    uint8_t aad[44];
    int n = chunk_aad(c, i, ch, aad);
    if (!c->gcm || !gcm_begin(c->gcm, 1, i, aad, n) || !gcm_update(c->gcm, buf, ch->size) ||
        !gcm_seal_end(c->gcm, tag))
        return occ_fail(e, OCC_ERR_INTERNAL, "AES-256-GCM encryption of chunk %u failed", i);
    return OCC_OK;
}

occ_status occ_wcrypt_open(occ_wcrypt *c, uint32_t i, const occ_chunk *ch, uint8_t *buf, occ_error *e)
{
    uint8_t aad[44];
    int n = chunk_aad(c, i, ch, aad);
    if (!c->gcm || !gcm_begin(c->gcm, 0, i, aad, n))
        return occ_fail(e, OCC_ERR_INTERNAL, "AES-256-GCM setup for chunk %u failed", i);
    if (!gcm_update(c->gcm, buf, ch->size) || !gcm_open_end(c->gcm, ch->tag)) {
        OPENSSL_cleanse(buf, (size_t)ch->size);
        return occ_fail(e, OCC_ERR_INTEGRITY,
                        "weight chunk %u failed authentication (AES-256-GCM): the chunk or its tag "
                        "was altered, or comes from another pack or place",
                        i);
    }
    return OCC_OK;
}

void occ_wcrypt_free(occ_wcrypt *c)
{
    if (!c)
        return;
    EVP_CIPHER_CTX_free(c->gcm); /* wipes the key schedule */
    free(c);
}

/* ---- the engine's stash cipher ---- */

struct occ_segcrypt {
    EVP_CIPHER_CTX *gcm;
};

occ_segcrypt *occ_segcrypt_new(const uint8_t key[32])
{
    occ_segcrypt *c = calloc(1, sizeof *c);
    if (c && !(c->gcm = gcm_new(key))) {
        free(c);
        c = NULL;
    }
    return c;
}

void occ_segcrypt_free(occ_segcrypt *c)
{
    if (!c)
        return;
    EVP_CIPHER_CTX_free(c->gcm);
    free(c);
}

static int seg_begin(occ_segcrypt *c, int enc, const uint8_t model_id[32], uint32_t i, uint64_t size)
{
    uint8_t aad[52];
    memcpy(aad, "OCCSEG1", 8);
    memcpy(aad + 8, model_id, 32);
    put32(aad + 40, i);
    put64(aad + 44, size);
    return gcm_begin(c->gcm, enc, i, aad, (int)sizeof aad);
}

int occ_segcrypt_seal(occ_segcrypt *c, const uint8_t model_id[32], uint32_t i, uint8_t *buf,
                      uint64_t size, uint8_t tag[16])
{
    return c && seg_begin(c, 1, model_id, i, size) && gcm_update(c->gcm, buf, size) &&
           gcm_seal_end(c->gcm, tag);
}

int occ_segcrypt_open_begin(occ_segcrypt *c, const uint8_t model_id[32], uint32_t i, uint64_t size)
{
    return c && seg_begin(c, 0, model_id, i, size);
}

int occ_segcrypt_open_piece(occ_segcrypt *c, uint8_t *dst, const uint8_t *src, uint64_t n)
{
    /* copy first, then decrypt the enclave copy (see occ_segcrypt_copy_in) */
    memcpy(dst, src, (size_t)n);
    return gcm_update(c->gcm, dst, n);
}

int occ_segcrypt_open_end(occ_segcrypt *c, const uint8_t tag[16])
{
    return gcm_open_end(c->gcm, tag);
}

int occ_segcrypt_copy_in(occ_segcrypt *c, const uint8_t model_id[32], uint32_t i, uint8_t *dst,
                         const uint8_t *src, uint64_t size, const uint8_t tag[16], uint64_t piece)
{
    if (!c || !seg_begin(c, 0, model_id, i, size))
        return 0;
    int ok = 1;
    for (uint64_t at = 0; ok && at < size; at += piece) {
        uint64_t n = size - at < piece ? size - at : piece;
        /* copy first, then decrypt the enclave copy: GCM reads its input
         * twice (GHASH and CTR), which must not be the host's bytes */
        memcpy(dst + at, src + at, (size_t)n);
        ok = gcm_update(c->gcm, dst + at, n);
    }
    ok = ok && gcm_open_end(c->gcm, tag);
    if (!ok)
        OPENSSL_cleanse(dst, (size_t)size);
    return ok;
}
