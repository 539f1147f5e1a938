/* libFuzzer: the TCG RA-TLS CBOR evidence decoder, the PCK SGX extension
 * DER reader, and certificate-level extraction. */
#include <stdint.h>
#include <string.h>

#include <openssl/x509.h>

#include "attest/attest_int.h"
#include "occ/ratls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    occ_ratls_evidence ev;
    if (occ_ratls_parse_tcg(data, size, &ev, NULL) == OCC_OK) {
        if (ev.quote < data || ev.quote + ev.quote_size > data + size || ev.claims + ev.claims_size > data + size ||
            ev.model_count > OCC_BOUND_MODELS_MAX)
            __builtin_trap();
        for (size_t i = 0; i < ev.model_count; i++) /* every name bound is a valid one */
            if (!occ_model_name_valid(ev.model_names[i], strlen(ev.model_names[i])))
                __builtin_trap();
    }
    occ_pck_info info;
    (void)occ_pck_ext_parse(data, size, &info, NULL);
    /* the bytes as a DER certificate */
    const uint8_t *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    if (x) {
        (void)occ_ratls_extract(x, &ev, NULL);
        X509_free(x);
    }
    return 0;
}
