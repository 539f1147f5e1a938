#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "occ/crypto.h"

occ_status occ_sha256(const void *buf, size_t size, uint8_t out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(buf, size, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return OCC_ERR_INTERNAL;
    return OCC_OK;
}

int occ_ct_memcmp(const void *a, const void *b, size_t size)
{
    return CRYPTO_memcmp(a, b, size);
}

void occ_wipe(void *p, size_t size)
{
    if (p && size)
        explicit_bzero(p, size);
}
