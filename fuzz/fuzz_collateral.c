/* libFuzzer: the collateral JSON reader and the TCB info / QE identity
 * evaluators on arbitrary JSON. */
#include <stdint.h>
#include <string.h>

#include "attest/attest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    occ_attest_collateral *c = NULL;
    if (occ_attest_collateral_parse((const char *)data, size, &c, NULL) == OCC_OK)
        occ_attest_collateral_free(c);
    occ_attest_verdict v;
    memset(&v, 0, sizeof v);
    occ_pck_info pck;
    memset(&pck, 0, sizeof pck);
    occ_tcb_evaluate((const char *)data, size, &pck, 1750464000LL, &v);
    occ_sgx_report qe;
    memset(&qe, 0, sizeof qe);
    char adv[OCC_VERDICT_MAX_ADVISORIES][OCC_ADVISORY_SIZE];
    size_t n = 0;
    memset(&v, 0, sizeof v);
    occ_qe_identity_evaluate((const char *)data, size, &qe, 1750464000LL, &v, adv, &n);
    return 0;
}
