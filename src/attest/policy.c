/* Attestation policy: JSON reader and evaluation. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "attest/attest_int.h"

#define MAX_POLICY_SIZE (256u << 10)

void occ_attest_policy_default(occ_attest_policy *p)
{
    memset(p, 0, sizeof *p);
    p->tcb_status_count = 1;
    snprintf(p->accepted_tcb_status[0], OCC_TCB_STATUS_SIZE, "UpToDate");
}

static occ_status hex_list(cJSON *it, const char *key, uint8_t (*out)[32], size_t *count, occ_error *e)
{
    cJSON *x;
    if (cJSON_IsString(it)) { /* a single value is accepted too */
        if (occ_hex_decode(it->valuestring, strlen(it->valuestring), out[0], 32))
            return occ_fail(e, OCC_ERR_FORMAT, "policy: \"%s\" must be 64 hex characters", key);
        *count = 1;
        return OCC_OK;
    }
    if (!cJSON_IsArray(it))
        return occ_fail(e, OCC_ERR_FORMAT, "policy: \"%s\" must be a list of hex strings", key);
    *count = 0;
    cJSON_ArrayForEach(x, it)
    {
        if (*count >= OCC_POLICY_MAX_IDS)
            return occ_fail(e, OCC_ERR_FORMAT, "policy: \"%s\" has more than %d entries", key, OCC_POLICY_MAX_IDS);
        if (!cJSON_IsString(x) || occ_hex_decode(x->valuestring, strlen(x->valuestring), out[*count], 32))
            return occ_fail(e, OCC_ERR_FORMAT, "policy: every \"%s\" entry must be 64 hex characters", key);
        (*count)++;
    }
    return OCC_OK;
}

static occ_status get_u16(cJSON *it, const char *key, uint16_t *out, occ_error *e)
{
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 65535 ||
        it->valuedouble != (double)(int)it->valuedouble)
        return occ_fail(e, OCC_ERR_FORMAT, "policy: \"%s\" must be an integer 0..65535", key);
    *out = (uint16_t)it->valuedouble;
    return OCC_OK;
}

static occ_status get_bool(cJSON *it, const char *key, int *out, occ_error *e)
{
    if (!cJSON_IsBool(it))
        return occ_fail(e, OCC_ERR_FORMAT, "policy: \"%s\" must be true or false", key);
    *out = cJSON_IsTrue(it);
    return OCC_OK;
}

static occ_status get_hex32(cJSON *it, const char *key, uint8_t out[32], occ_error *e)
{
    if (!cJSON_IsString(it) || occ_hex_decode(it->valuestring, strlen(it->valuestring), out, 32))
        return occ_fail(e, OCC_ERR_FORMAT, "policy: \"%s\" must be 64 hex characters", key);
    return OCC_OK;
}

/* "models": {"NAME": "<64 hex>", ...} */
static occ_status models_map(cJSON *it, occ_attest_policy *p, occ_error *e)
{
    cJSON *x;
    if (!cJSON_IsObject(it))
        return occ_fail(e, OCC_ERR_FORMAT, "policy: \"models\" must be an object {\"NAME\": \"<model id hex>\", ...}");
    p->model_count = 0;
    cJSON_ArrayForEach(x, it)
    {
        const char *name = x->string;
        if (p->model_count >= OCC_BOUND_MODELS_MAX)
            return occ_fail(e, OCC_ERR_FORMAT, "policy: \"models\" has more than %d entries", OCC_BOUND_MODELS_MAX);
        if (!name || !occ_model_name_valid(name, strlen(name)))
            return occ_fail(e, OCC_ERR_FORMAT,
                            "policy: \"models\" key '%.64s' is not a model name (1..%d printable ASCII characters "
                            "without spaces or / ? # %% \" \\)",
                            name ? name : "", OCC_MODEL_NAME_MAX);
        for (size_t i = 0; i < p->model_count; i++)
            if (!strcmp(p->model_names[i], name))
                return occ_fail(e, OCC_ERR_FORMAT, "policy: \"models\" names '%s' twice", name);
        if (!cJSON_IsString(x) || occ_hex_decode(x->valuestring, strlen(x->valuestring), p->model_ids[p->model_count], 32))
            return occ_fail(e, OCC_ERR_FORMAT, "policy: \"models\" entry '%s' must be a model id (64 hex characters)",
                            name);
        snprintf(p->model_names[p->model_count], sizeof p->model_names[0], "%s", name);
        p->model_count++;
    }
    if (!p->model_count)
        return occ_fail(e, OCC_ERR_FORMAT, "policy: \"models\" is empty (leave it out, or name the models)");
    return OCC_OK;
}

static const char *const KNOWN_STATUS[] = {
    "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
    "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked", "Emulated",
};

occ_status occ_attest_policy_parse(const char *json, size_t size, occ_attest_policy *p, occ_error *e)
{
    if (!json || !p)
        return occ_fail(e, OCC_ERR_INVALID, "policy: NULL argument");
    occ_attest_policy_default(p);
    if (size > MAX_POLICY_SIZE)
        return occ_fail(e, OCC_ERR_FORMAT, "policy: larger than %u bytes", MAX_POLICY_SIZE);
    cJSON *root = cJSON_ParseWithLength(json, size);
    if (!root)
        return occ_fail(e, OCC_ERR_FORMAT, "policy: not valid JSON");
    occ_status st = OCC_OK;
    cJSON *it;
    if (!cJSON_IsObject(root)) {
        st = occ_fail(e, OCC_ERR_FORMAT, "policy: top level must be an object");
        goto out;
    }
    cJSON_ArrayForEach(it, root)
    {
        const char *k = it->string;
        if (!k) {
            st = occ_fail(e, OCC_ERR_FORMAT, "policy: malformed key");
            goto out;
        }
        if (!strcmp(k, "mrenclave")) {
            st = hex_list(it, k, p->mrenclave, &p->mrenclave_count, e);
        } else if (!strcmp(k, "mrsigner")) {
            st = hex_list(it, k, p->mrsigner, &p->mrsigner_count, e);
        } else if (!strcmp(k, "isv_prod_id")) {
            st = get_u16(it, k, &p->isv_prod_id, e);
            p->has_isv_prod_id = 1;
        } else if (!strcmp(k, "min_isv_svn")) {
            st = get_u16(it, k, &p->min_isv_svn, e);
            p->has_min_isv_svn = 1;
        } else if (!strcmp(k, "allow_debug")) {
            st = get_bool(it, k, &p->allow_debug, e);
        } else if (!strcmp(k, "allow_emulated")) {
            st = get_bool(it, k, &p->allow_emulated, e);
        } else if (!strcmp(k, "allow_missing_collateral")) {
            st = get_bool(it, k, &p->allow_missing_collateral, e);
        } else if (!strcmp(k, "model_id")) {
            if (cJSON_IsNull(it))
                continue;
            st = get_hex32(it, k, p->model_id, e);
            p->has_model_id = 1;
        } else if (!strcmp(k, "models")) {
            st = models_map(it, p, e);
        } else if (!strcmp(k, "report_data_pubkey_hash")) {
            if (cJSON_IsNull(it))
                continue;
            st = get_hex32(it, k, p->pubkey_hash, e);
            p->has_pubkey_hash = 1;
        } else if (!strcmp(k, "accepted_tcb_status")) {
            cJSON *x;
            if (!cJSON_IsArray(it)) {
                st = occ_fail(e, OCC_ERR_FORMAT, "policy: \"accepted_tcb_status\" must be a list of strings");
                goto out;
            }
            p->tcb_status_count = 0;
            cJSON_ArrayForEach(x, it)
            {
                if (!cJSON_IsString(x) || p->tcb_status_count >= OCC_POLICY_MAX_STATUS) {
                    st = occ_fail(e, OCC_ERR_FORMAT, "policy: \"accepted_tcb_status\" must be at most %d strings",
                                  OCC_POLICY_MAX_STATUS);
                    goto out;
                }
                int known = 0;
                for (size_t i = 0; i < sizeof KNOWN_STATUS / sizeof *KNOWN_STATUS; i++)
                    known |= !strcmp(x->valuestring, KNOWN_STATUS[i]);
                if (!known) {
                    st = occ_fail(e, OCC_ERR_FORMAT, "policy: unknown TCB status \"%.64s\"", x->valuestring);
                    goto out;
                }
                snprintf(p->accepted_tcb_status[p->tcb_status_count++], OCC_TCB_STATUS_SIZE, "%s", x->valuestring);
            }
        } else if (k[0] == '_' || !strcmp(k, "comment")) {
            continue;
        } else {
            st = occ_fail(e, OCC_ERR_FORMAT, "policy: unknown key \"%.64s\" (a typo would weaken the policy)", k);
        }
        if (st)
            goto out;
    }
out:
    cJSON_Delete(root);
    if (st)
        occ_attest_policy_default(p);
    return st;
}

occ_status occ_attest_policy_load(const char *path, occ_attest_policy *p, occ_error *e)
{
    uint8_t *buf;
    size_t n;
    occ_status st = occ_attest_read_file(path, MAX_POLICY_SIZE, &buf, &n, e);
    if (st)
        return st;
    st = occ_attest_policy_parse((const char *)buf, n, p, e);
    free(buf);
    if (st)
        occ_error_prefix(e, "%s", path);
    return st;
}

static int in_list(const uint8_t (*list)[32], size_t n, const uint8_t v[32])
{
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= CRYPTO_memcmp(list[i], v, 32) == 0;
    return found;
}

int occ_attest_policy_pinned(const occ_attest_policy *p, char *why, size_t why_size)
{
    int enclave = p->mrenclave_count || (p->mrsigner_count && p->has_isv_prod_id);
    int model = p->has_model_id || p->model_count;
    if (why && why_size)
        snprintf(why, why_size, "%s%s%s", enclave ? "" : "the policy pins no enclave (mrenclave, or mrsigner with isv_prod_id)",
                 !enclave && !model ? "; " : "", model ? "" : "the policy pins no model (model_id, or models)");
    return enclave && model;
}

/* Appends the reason why the "models" entry for name does not hold (if it
 * does not); returns 1 when it holds. */
static int model_reason(const occ_attest_policy *p, const occ_attest_verdict *v, const char *name, char *out,
                        size_t size)
{
    size_t pi = p->model_count, vi = v->model_count;
    for (size_t i = 0; i < p->model_count; i++)
        if (!strcmp(p->model_names[i], name))
            pi = i;
    if (pi == p->model_count) {
        snprintf(out, size, "the policy's \"models\" has no entry for model '%.128s'", name);
        return 0;
    }
    if (!v->models_bound) {
        snprintf(out, size, "the policy's \"models\" needs the server's (name, model id) list, which this evidence "
                            "does not carry (an Occlumency RA-TLS certificate does)");
        return 0;
    }
    for (size_t i = 0; i < v->model_count; i++)
        if (!strcmp(v->model_names[i], name))
            vi = i;
    if (vi == v->model_count) {
        char list[160] = "";
        for (size_t i = 0; i < v->model_count && strlen(list) + strlen(v->model_names[i]) + 8 < sizeof list; i++) {
            strcat(list, i ? ", " : "");
            strcat(list, v->model_names[i]);
        }
        snprintf(out, size, "model '%.64s' is not served by this enclave (it serves: %s)", name, list);
        return 0;
    }
    if (CRYPTO_memcmp(v->model_ids[vi], p->model_ids[pi], 32)) {
        char got[65], want[65];
        occ_hex_encode(v->model_ids[vi], 32, got);
        occ_hex_encode(p->model_ids[pi], 32, want);
        snprintf(out, size, "model '%.24s' is served with model id %.16s..., the policy expects %.16s...", name, got,
                 want);
        return 0;
    }
    return 1;
}

occ_status occ_attest_policy_check_model(const occ_attest_policy *p, const occ_attest_verdict *v, const char *name,
                                         occ_error *e)
{
    char why[OCC_VERDICT_REASON_SIZE];
    if (!p || !v || !name)
        return occ_fail(e, OCC_ERR_INVALID, "policy check: NULL argument");
    if (!p->model_count)
        return OCC_OK;
    if (model_reason(p, v, name, why, sizeof why))
        return OCC_OK;
    return occ_fail(e, OCC_ERR_ATTEST, "%s", why);
}

void occ_attest_policy_apply(const occ_attest_policy *p, occ_attest_verdict *v)
{
    char hex[129], want[129];
    v->accepted = 0;
    if (!v->parsed)
        return;
    if (v->emulated && !p->allow_emulated)
        occ_verdict_reason(v, "emulated quote refused by policy (allow_emulated is false): not hardware-backed");
    if (v->collateral_missing && !p->allow_missing_collateral)
        occ_verdict_reason(v, "collateral missing: TCB info, QE identity and CRLs are needed to evaluate the TCB "
                              "status and revocation");
    if (v->debug && !p->allow_debug)
        occ_verdict_reason(v, "debug enclave refused: ATTRIBUTES.DEBUG is set (the host can read its memory); "
                              "allow_debug is false");
    if (!v->emulated && !v->collateral_missing) {
        int ok = 0;
        for (size_t i = 0; i < p->tcb_status_count; i++)
            ok |= !strcmp(p->accepted_tcb_status[i], v->tcb_status);
        if (!ok) {
            char list[OCC_POLICY_MAX_STATUS * (OCC_TCB_STATUS_SIZE + 2)] = "";
            char adv[256] = "";
            for (size_t i = 0; i < p->tcb_status_count; i++) {
                strcat(list, i ? ", " : "");
                strcat(list, p->accepted_tcb_status[i]);
            }
            for (size_t i = 0; i < v->advisory_count && strlen(adv) + OCC_ADVISORY_SIZE + 3 < sizeof adv; i++) {
                strcat(adv, i ? ", " : "");
                strcat(adv, v->advisories[i]);
            }
            occ_verdict_reason(v, "TCB status %s not accepted by policy (accepted: %s)%s%s", v->tcb_status, list,
                               v->advisory_count ? "; advisories: " : "", adv);
        }
    }
    if (p->mrenclave_count && !in_list(p->mrenclave, p->mrenclave_count, v->mrenclave)) {
        occ_hex_encode(v->mrenclave, 32, hex);
        occ_verdict_reason(v, "MRENCLAVE mismatch: %s is not allowed by the policy", hex);
    }
    if (p->mrsigner_count && !in_list(p->mrsigner, p->mrsigner_count, v->mrsigner)) {
        occ_hex_encode(v->mrsigner, 32, hex);
        occ_verdict_reason(v, "MRSIGNER mismatch: %s is not allowed by the policy", hex);
    }
    if (p->has_isv_prod_id && p->isv_prod_id != v->isv_prod_id)
        occ_verdict_reason(v, "ISVPRODID mismatch: %u, policy expects %u", v->isv_prod_id, p->isv_prod_id);
    if (p->has_min_isv_svn && v->isv_svn < p->min_isv_svn)
        occ_verdict_reason(v, "ISVSVN %u is below the policy minimum %u", v->isv_svn, p->min_isv_svn);
    if (p->has_model_id && CRYPTO_memcmp(p->model_id, v->report_data + 32, 32)) {
        occ_hex_encode(v->report_data + 32, 32, hex);
        occ_hex_encode(p->model_id, 32, want);
        occ_verdict_reason(v, "model id mismatch: REPORTDATA[32..63] is %s, policy expects %s", hex, want);
    }
    if (p->model_count) {
        char why[OCC_VERDICT_REASON_SIZE];
        if (p->use_model[0]) {
            if (!model_reason(p, v, p->use_model, why, sizeof why))
                occ_verdict_reason(v, "%s", why);
        } else {
            for (size_t i = 0; i < p->model_count; i++)
                if (!model_reason(p, v, p->model_names[i], why, sizeof why))
                    occ_verdict_reason(v, "%s", why);
        }
    }
    if (p->has_pubkey_hash && CRYPTO_memcmp(p->pubkey_hash, v->report_data, 32))
        occ_verdict_reason(v, "public key hash mismatch: REPORTDATA[0..31] differs from report_data_pubkey_hash");
    if (!p->mrenclave_count && !p->mrsigner_count)
        occ_verdict_warn(v, "the policy pins neither MRENCLAVE nor MRSIGNER: any enclave code would be accepted");
    v->accepted = v->verified && v->reason_count == 0;
}
