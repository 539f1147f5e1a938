/* libFuzzer: the key broker's two parsers (docs/keys.md). First byte even:
 * the broker's request parser (src/keys/keyreq.c, bytes from any TLS
 * client) fed whole and in every prefix a real connection could deliver;
 * odd: the enclave's parser of the broker's answer (src/enclave/keyfetch.c).
 * Both must never crash, and their verdicts must be consistent: a complete
 * request names a 64-hex id, and a prefix of an accepted request is never
 * refused. The authorization rule is fed a verdict built from the bytes. */
#include <stdint.h>
#include <string.h>

#include "enclave/keyfetch.h"
#include "occ/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    int mode = data[0] & 1;
    data++;
    size--;
    if (!mode) {
        int complete = 0;
        uint8_t id[32];
        occ_error e = {0};
        occ_status st = occ_keyreq_parse(data, size, &complete, id, &e);
        if (st == OCC_OK && complete) {
            /* every prefix is incomplete or the same request */
            for (size_t n = 0; n < size; n += 1 + size / 16) {
                int c2 = 0;
                uint8_t id2[32];
                if (occ_keyreq_parse(data, n, &c2, id2, &e) != OCC_OK)
                    __builtin_trap();
                if (c2 && memcmp(id, id2, 32))
                    __builtin_trap();
            }
            /* the decision on a verdict derived from the input */
            static occ_attest_verdict v;
            static occ_attest_policy p;
            memset(&v, 0, sizeof v);
            memset(&p, 0, sizeof p);
            v.accepted = size & 1;
            v.models_bound = size & 2 ? 1 : 0;
            v.model_count = 1;
            strcpy(v.model_names[0], "m");
            memcpy(v.model_ids[0], id, 32);
            memcpy(v.report_data + 32, id, 32);
            if (size & 4) {
                p.model_count = 1;
                strcpy(p.model_names[0], size & 8 ? "m" : "x");
                memcpy(p.model_ids[0], id, 32);
            }
            occ_status a = occ_keys_authorize(&p, &v, id, &e);
            int want = v.accepted && (!p.model_count || (v.models_bound && (size & 8)));
            if ((a == OCC_OK) != want)
                __builtin_trap();
        }
    } else {
        int complete = 0, status = 0;
        const uint8_t *body = NULL;
        size_t body_size = 0;
        occ_error e = {0};
        if (occ_keyresp_parse(data, size, &complete, &status, &body, &body_size, &e) == OCC_OK && complete) {
            if (body_size > 1024 || (body_size && (body < data || body + body_size > data + size)))
                __builtin_trap();
        }
    }
    return 0;
}
