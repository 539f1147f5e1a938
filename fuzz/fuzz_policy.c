/* libFuzzer: the policy JSON reader, then policy application. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "occ/attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    occ_attest_policy p;
    if (occ_attest_policy_parse((const char *)data, size, &p, NULL) == OCC_OK) {
        if (p.mrenclave_count > OCC_POLICY_MAX_IDS || p.tcb_status_count > OCC_POLICY_MAX_STATUS ||
            p.model_count > OCC_BOUND_MODELS_MAX)
            __builtin_trap();
        occ_attest_verdict v;
        memset(&v, 0, sizeof v);
        v.parsed = 1;
        v.verified = 1;
        snprintf(v.tcb_status, sizeof v.tcb_status, "UpToDate");
        occ_attest_policy_apply(&p, &v);
        /* and against a bound (name, model id) list, for every name the policy gives */
        v.models_bound = 1;
        v.model_count = 2;
        snprintf(v.model_names[0], sizeof v.model_names[0], "fmnist");
        snprintf(v.model_names[1], sizeof v.model_names[1], "fmnist-b");
        memset(v.model_ids[1], 0xbb, 32);
        v.reason_count = 0;
        occ_attest_policy_apply(&p, &v);
        for (size_t i = 0; i < p.model_count; i++)
            (void)occ_attest_policy_check_model(&p, &v, p.model_names[i], NULL);
    }
    return 0;
}
