/* The model binding of REPORTDATA[32..63] (include/occ/binding.h). */
#include <string.h>

#include <openssl/evp.h>

#include "occ/binding.h"

#define DOMAIN "occlumency-models-v1"

int occ_model_name_valid(const char *name, size_t len)
{
    if (!name || len < 1 || len > OCC_MODEL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x21 || c > 0x7e || strchr("/?#%\"\\", c))
            return 0;
    }
    return 1;
}

static int name_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int r = memcmp(a, b, la < lb ? la : lb);
    return r ? r : (la > lb) - (la < lb);
}

void occ_models_sort(const char *const *names, size_t n, size_t *order)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++) /* n <= 16: insertion sort */
        for (size_t k = i; k > 0 && name_cmp(names[order[k - 1]], names[order[k]]) > 0; k--) {
            size_t t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

occ_status occ_models_binding(const char *const *names, const uint8_t (*ids)[32], size_t n, uint8_t out[32],
                              occ_error *e)
{
    if (!names || !ids || !out || n < 1 || n > OCC_BOUND_MODELS_MAX)
        return occ_fail(e, OCC_ERR_INVALID, "model binding: 1..%d models, got %zu", OCC_BOUND_MODELS_MAX, n);
    for (size_t i = 0; i < n; i++)
        if (!names[i] || !occ_model_name_valid(names[i], strlen(names[i])))
            return occ_fail(e, OCC_ERR_INVALID,
                            "model name '%.128s': 1..%d printable ASCII characters without spaces or / ? # %% \" \\",
                            names[i] ? names[i] : "(null)", OCC_MODEL_NAME_MAX);
    size_t order[OCC_BOUND_MODELS_MAX];
    occ_models_sort(names, n, order);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(names[order[i - 1]], names[order[i]]))
            return occ_fail(e, OCC_ERR_INVALID, "model name '%s' given twice", names[order[i]]);
    if (n == 1) {
        memcpy(out, ids[0], 32);
        return OCC_OK;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t len[4];
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, DOMAIN, sizeof DOMAIN) == 1; /* with its NUL */
    be32(len, (uint32_t)n);
    ok = ok && EVP_DigestUpdate(md, len, 4) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        size_t k = order[i], nl = strlen(names[k]);
        be32(len, (uint32_t)nl);
        ok = EVP_DigestUpdate(md, len, 4) == 1 && EVP_DigestUpdate(md, names[k], nl) == 1 &&
             EVP_DigestUpdate(md, ids[k], 32) == 1;
    }
    unsigned int ol = 32;
    ok = ok && EVP_DigestFinal_ex(md, out, &ol) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return occ_fail(e, OCC_ERR_INTERNAL, "model binding: SHA-256 failed");
    return OCC_OK;
}
