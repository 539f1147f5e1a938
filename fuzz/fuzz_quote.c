/* libFuzzer: the SGX quote parser and the full quote-level checks (against
 * the Intel root, no collateral) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest_int.h"
#include "occ/attest.h"

static X509 *root;

static X509 *make_root(void)
{
    /* any self-signed certificate works as an anchor for fuzzing */
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_sign(x, k, EVP_sha256());
    EVP_PKEY_free(k);
    return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root)
        root = make_root();
    occ_quote q;
    if (occ_quote_parse(data, size, &q, NULL) == OCC_OK) {
        /* every pointer stays inside the input */
        if (q.cert_data + q.cert_size > data + size || q.qe_auth + q.qe_auth_size > data + size)
            abort();
    }
    occ_attest_verdict v;
    occ_status st = occ_attest_verify_quote(data, size, NULL, root, NULL, 1750464000LL, &v, NULL);
    if (st == OCC_OK)
        abort(); /* nothing random verifies */
    return 0;
}
