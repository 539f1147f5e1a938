/* Collateral: the PCCS-style JSON (QuoteCollateralV3), TCB info and QE
 * identity evaluation. Signatures are checked in verify.c over the exact
 * strings before these evaluators run. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "attest/attest_int.h"

#define MAX_COLLATERAL_SIZE (4u << 20)

void occ_attest_collateral_free(occ_attest_collateral *c)
{
    if (!c)
        return;
    free(c->pck_crl_issuer_chain);
    free(c->root_ca_crl);
    free(c->pck_crl);
    free(c->tcb_info_issuer_chain);
    free(c->tcb_info);
    free(c->qe_identity_issuer_chain);
    free(c->qe_identity);
    free(c);
}

static occ_status get_str(cJSON *o, const char *key, char **out, size_t *size, occ_error *e)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(it) || !it->valuestring)
        return occ_fail(e, OCC_ERR_FORMAT, "collateral: \"%s\" missing or not a string", key);
    size_t n = strlen(it->valuestring);
    *out = malloc(n + 1);
    if (!*out)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    memcpy(*out, it->valuestring, n + 1);
    if (size)
        *size = n;
    return OCC_OK;
}

static occ_status get_hex(cJSON *o, const char *key, uint8_t **out, size_t *size, size_t exact, occ_error *e)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(it) || !it->valuestring)
        return occ_fail(e, OCC_ERR_FORMAT, "collateral: \"%s\" missing or not a string", key);
    size_t n = strlen(it->valuestring);
    if (n % 2 || n == 0 || (exact && n != 2 * exact))
        return occ_fail(e, OCC_ERR_FORMAT, "collateral: \"%s\" is not hex of the right length", key);
    uint8_t *b = malloc(n / 2);
    if (!b)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    if (occ_hex_decode(it->valuestring, n, b, n / 2)) {
        free(b);
        return occ_fail(e, OCC_ERR_FORMAT, "collateral: \"%s\" is not valid hex", key);
    }
    *out = b;
    *size = n / 2;
    return OCC_OK;
}

occ_status occ_attest_collateral_parse(const char *json, size_t size, occ_attest_collateral **out, occ_error *e)
{
    if (!json || !out)
        return occ_fail(e, OCC_ERR_INVALID, "collateral: NULL argument");
    *out = NULL;
    if (size > MAX_COLLATERAL_SIZE)
        return occ_fail(e, OCC_ERR_FORMAT, "collateral: larger than %u bytes", MAX_COLLATERAL_SIZE);
    cJSON *root = cJSON_ParseWithLength(json, size);
    if (!root)
        return occ_fail(e, OCC_ERR_FORMAT, "collateral: not valid JSON");
    occ_status st = OCC_OK;
    occ_attest_collateral *c = calloc(1, sizeof *c);
    if (!c) {
        cJSON_Delete(root);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    uint8_t *sig = NULL;
    size_t n;
    if (!cJSON_IsObject(root)) {
        st = occ_fail(e, OCC_ERR_FORMAT, "collateral: top level is not an object");
        goto out;
    }
    if ((st = get_str(root, "pck_crl_issuer_chain", &c->pck_crl_issuer_chain, NULL, e)) ||
        (st = get_hex(root, "root_ca_crl", &c->root_ca_crl, &c->root_ca_crl_size, 0, e)) ||
        (st = get_hex(root, "pck_crl", &c->pck_crl, &c->pck_crl_size, 0, e)) ||
        (st = get_str(root, "tcb_info_issuer_chain", &c->tcb_info_issuer_chain, NULL, e)) ||
        (st = get_str(root, "tcb_info", &c->tcb_info, &c->tcb_info_size, e)) ||
        (st = get_str(root, "qe_identity_issuer_chain", &c->qe_identity_issuer_chain, NULL, e)) ||
        (st = get_str(root, "qe_identity", &c->qe_identity, &c->qe_identity_size, e)))
        goto out;
    if ((st = get_hex(root, "tcb_info_signature", &sig, &n, 64, e)))
        goto out;
    memcpy(c->tcb_info_sig, sig, 64);
    free(sig);
    sig = NULL;
    if ((st = get_hex(root, "qe_identity_signature", &sig, &n, 64, e)))
        goto out;
    memcpy(c->qe_identity_sig, sig, 64);
out:
    free(sig);
    cJSON_Delete(root);
    if (st) {
        occ_attest_collateral_free(c);
        return st;
    }
    *out = c;
    return OCC_OK;
}

occ_status occ_attest_collateral_load(const char *path, occ_attest_collateral **out, occ_error *e)
{
    uint8_t *buf;
    size_t n;
    occ_status st = occ_attest_read_file(path, MAX_COLLATERAL_SIZE, &buf, &n, e);
    if (st)
        return st;
    st = occ_attest_collateral_parse((const char *)buf, n, out, e);
    free(buf);
    if (st)
        occ_error_prefix(e, "%s", path);
    return st;
}

/* ---- evaluation helpers ---- */

static int json_uint(cJSON *o, const char *key, uint32_t max, uint32_t *out)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > max ||
        it->valuedouble != (double)(uint32_t)it->valuedouble)
        return 0;
    *out = (uint32_t)it->valuedouble;
    return 1;
}

static const char *json_str(cJSON *o, const char *key)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static int json_hex(cJSON *o, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_str(o, key);
    return s && occ_hex_decode(s, strlen(s), out, n) == OCC_OK;
}

/* Checks issueDate <= at < nextUpdate; adds reasons. Returns 1 when fresh. */
static int check_dates(cJSON *o, const char *what, int64_t at, occ_attest_verdict *v)
{
    int64_t issue, next;
    const char *is = json_str(o, "issueDate"), *ns = json_str(o, "nextUpdate");
    if (!is || !ns || !occ_parse_iso8601(is, &issue) || !occ_parse_iso8601(ns, &next)) {
        occ_verdict_reason(v, "%s: issueDate/nextUpdate missing or malformed", what);
        return 0;
    }
    char t[32];
    occ_format_time(at, t, sizeof t);
    if (at < issue) {
        occ_verdict_reason(v, "%s not yet valid: issueDate %s is after the verification time %s", what, is, t);
        return 0;
    }
    if (at >= next) {
        occ_verdict_reason(v, "%s expired: nextUpdate %s is not after the verification time %s", what, ns, t);
        return 0;
    }
    return 1;
}

static void add_advisories(cJSON *level, char adv[][OCC_ADVISORY_SIZE], size_t *count, size_t max)
{
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(level, "advisoryIDs"), *it;
    if (!cJSON_IsArray(ids))
        return;
    cJSON_ArrayForEach(it, ids)
    {
        if (cJSON_IsString(it) && *count < max)
            snprintf(adv[(*count)++], OCC_ADVISORY_SIZE, "%s", it->valuestring);
    }
}

void occ_tcb_evaluate(const char *tcb_info, size_t size, const occ_pck_info *pck, int64_t at, occ_attest_verdict *v)
{
    cJSON *o = cJSON_ParseWithLength(tcb_info, size);
    if (!cJSON_IsObject(o)) {
        occ_verdict_reason(v, "TCB info: not a valid JSON object");
        cJSON_Delete(o);
        return;
    }
    /* The wrapped form {"tcbInfo":{...},"signature":...} is not accepted here:
     * the signature covers the exact inner string, which the collateral gives. */
    uint32_t version;
    const char *id = json_str(o, "id");
    if (!json_uint(o, "version", 100, &version) || (version != 2 && version != 3)) {
        occ_verdict_reason(v, "TCB info: unsupported version (need 2 or 3)");
        goto out;
    }
    if (version == 3 && (!id || strcmp(id, "SGX"))) {
        occ_verdict_reason(v, "TCB info: id is \"%s\", not \"SGX\"", id ? id : "(missing)");
        goto out;
    }
    check_dates(o, "TCB info", at, v);
    uint8_t fmspc[6], pceid[2];
    if (!json_hex(o, "fmspc", fmspc, 6) || !json_hex(o, "pceId", pceid, 2)) {
        occ_verdict_reason(v, "TCB info: fmspc/pceId missing or malformed");
        goto out;
    }
    if (memcmp(fmspc, pck->fmspc, 6)) {
        char a[13], b[13];
        occ_hex_encode(fmspc, 6, a);
        occ_hex_encode(pck->fmspc, 6, b);
        occ_verdict_reason(v, "TCB info is for FMSPC %s but the PCK certificate has FMSPC %s", a, b);
        goto out;
    }
    if (memcmp(pceid, pck->pceid, 2)) {
        occ_verdict_reason(v, "TCB info PCE-ID does not match the PCK certificate");
        goto out;
    }
    cJSON *levels = cJSON_GetObjectItemCaseSensitive(o, "tcbLevels"), *lvl;
    if (!cJSON_IsArray(levels)) {
        occ_verdict_reason(v, "TCB info: tcbLevels missing");
        goto out;
    }
    cJSON_ArrayForEach(lvl, levels)
    {
        cJSON *tcb = cJSON_GetObjectItemCaseSensitive(lvl, "tcb");
        const char *status = json_str(lvl, "tcbStatus");
        uint32_t comp[16], pcesvn;
        if (!cJSON_IsObject(tcb) || !status || !json_uint(tcb, "pcesvn", 65535, &pcesvn)) {
            occ_verdict_reason(v, "TCB info: malformed TCB level");
            goto out;
        }
        if (version == 3) {
            cJSON *comps = cJSON_GetObjectItemCaseSensitive(tcb, "sgxtcbcomponents"), *c;
            if (!cJSON_IsArray(comps) || cJSON_GetArraySize(comps) != 16) {
                occ_verdict_reason(v, "TCB info: malformed sgxtcbcomponents");
                goto out;
            }
            int i = 0;
            cJSON_ArrayForEach(c, comps)
            {
                if (!json_uint(c, "svn", 255, &comp[i++])) {
                    occ_verdict_reason(v, "TCB info: malformed sgxtcbcomponents svn");
                    goto out;
                }
            }
        } else {
            for (int i = 0; i < 16; i++) {
                char key[24];
                snprintf(key, sizeof key, "sgxtcbcomp%02dsvn", i + 1);
                if (!json_uint(tcb, key, 255, &comp[i])) {
                    occ_verdict_reason(v, "TCB info: malformed %s", key);
                    goto out;
                }
            }
        }
        int ok = pck->pcesvn >= pcesvn;
        for (int i = 0; ok && i < 16; i++)
            ok = pck->comps[i] >= comp[i];
        if (!ok)
            continue;
        snprintf(v->tcb_status, sizeof v->tcb_status, "%s", status);
        const char *date = json_str(lvl, "tcbDate");
        if (date)
            snprintf(v->tcb_date, sizeof v->tcb_date, "%s", date);
        add_advisories(lvl, v->advisories, &v->advisory_count, OCC_VERDICT_MAX_ADVISORIES);
        goto out;
    }
    snprintf(v->tcb_status, sizeof v->tcb_status, "%s", "TcbLevelNotFound");
    occ_verdict_reason(v, "platform TCB is below every TCB level of the TCB info (TCB not supported)");
out:
    cJSON_Delete(o);
}

void occ_qe_identity_evaluate(const char *qe_identity, size_t size, const occ_sgx_report *qe, int64_t at,
                              occ_attest_verdict *v, char qe_adv[][OCC_ADVISORY_SIZE], size_t *qe_adv_count)
{
    cJSON *o = cJSON_ParseWithLength(qe_identity, size);
    if (!cJSON_IsObject(o)) {
        occ_verdict_reason(v, "QE identity: not a valid JSON object");
        cJSON_Delete(o);
        return;
    }
    uint32_t version, prodid;
    const char *id = json_str(o, "id");
    uint8_t mrsigner[32], misc[4], misc_mask[4], attr[16], attr_mask[16];
    if (!json_uint(o, "version", 100, &version) || version != 2 || !id || strcmp(id, "QE")) {
        occ_verdict_reason(v, "QE identity: need id \"QE\", version 2");
        goto out;
    }
    check_dates(o, "QE identity", at, v);
    if (!json_hex(o, "mrsigner", mrsigner, 32) || !json_uint(o, "isvprodid", 65535, &prodid) ||
        !json_hex(o, "miscselect", misc, 4) || !json_hex(o, "miscselectMask", misc_mask, 4) ||
        !json_hex(o, "attributes", attr, 16) || !json_hex(o, "attributesMask", attr_mask, 16)) {
        occ_verdict_reason(v, "QE identity: malformed fields");
        goto out;
    }
    if (CRYPTO_memcmp(mrsigner, qe->mrsigner, 32))
        occ_verdict_reason(v, "QE identity mismatch: QE MRSIGNER is not Intel's quoting enclave signer");
    if (prodid != qe->isv_prod_id)
        occ_verdict_reason(v, "QE identity mismatch: QE ISVPRODID %u, expected %u", qe->isv_prod_id, prodid);
    /* miscselect is hex of the big-endian u32 */
    uint32_t m = (uint32_t)misc[0] << 24 | (uint32_t)misc[1] << 16 | (uint32_t)misc[2] << 8 | misc[3];
    uint32_t mm = (uint32_t)misc_mask[0] << 24 | (uint32_t)misc_mask[1] << 16 | (uint32_t)misc_mask[2] << 8 | misc_mask[3];
    if ((qe->miscselect & mm) != (m & mm))
        occ_verdict_reason(v, "QE identity mismatch: MISCSELECT");
    for (int i = 0; i < 16; i++) {
        if ((qe->attributes[i] & attr_mask[i]) != (attr[i] & attr_mask[i])) {
            occ_verdict_reason(v, "QE identity mismatch: ATTRIBUTES");
            break;
        }
    }
    cJSON *levels = cJSON_GetObjectItemCaseSensitive(o, "tcbLevels"), *lvl;
    if (!cJSON_IsArray(levels)) {
        occ_verdict_reason(v, "QE identity: tcbLevels missing");
        goto out;
    }
    cJSON_ArrayForEach(lvl, levels)
    {
        cJSON *tcb = cJSON_GetObjectItemCaseSensitive(lvl, "tcb");
        const char *status = json_str(lvl, "tcbStatus");
        uint32_t svn;
        if (!cJSON_IsObject(tcb) || !status || !json_uint(tcb, "isvsvn", 65535, &svn)) {
            occ_verdict_reason(v, "QE identity: malformed TCB level");
            goto out;
        }
        if (qe->isv_svn >= svn) {
            snprintf(v->qe_tcb_status, sizeof v->qe_tcb_status, "%s", status);
            add_advisories(lvl, qe_adv, qe_adv_count, OCC_VERDICT_MAX_ADVISORIES);
            goto out;
        }
    }
    snprintf(v->qe_tcb_status, sizeof v->qe_tcb_status, "%s", "TcbLevelNotFound");
    occ_verdict_reason(v, "QE ISVSVN %u is below every QE identity TCB level", qe->isv_svn);
out:
    cJSON_Delete(o);
}
