/* libFuzzer: the policy JSON reader, then policy application. */
#include <stdint.h>
#include <string.h>

#include "occ/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    occ_attest_policy p;
    if (occ_attest_policy_parse((const char *)data, size, &p, NULL) == OCC_OK) {
        if (p.mrenclave_count > OCC_POLICY_MAX_IDS || p.tcb_status_count > OCC_POLICY_MAX_STATUS)
            __builtin_trap();
        occ_attest_verdict v;
        memset(&v, 0, sizeof v);
        v.parsed = 1;
        v.verified = 1;
        snprintf(v.tcb_status, sizeof v.tcb_status, "UpToDate");
        occ_attest_policy_apply(&p, &v);
    }
    return 0;
}
