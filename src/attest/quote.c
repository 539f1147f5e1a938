/* Strict SGX ECDSA quote v3 parser. Every length field is checked against
 * the bytes actually present; nothing is trusted. */
#include <string.h>

#include "attest/attest_int.h"

static void parse_report(const uint8_t *b, occ_sgx_report *r)
{
    occ_cur c = {b, OCC_QUOTE_REPORT_SIZE};
    const uint8_t *p;
    memset(r, 0, sizeof *r);
    occ_cur_take(&c, 16, &p);
    memcpy(r->cpusvn, p, 16);
    occ_cur_u32(&c, &r->miscselect);
    occ_cur_take(&c, 12, NULL); /* reserved1 @20 */
    occ_cur_take(&c, 16, &p);   /* @32 isvextprodid */
    memcpy(r->isv_ext_prod_id, p, 16);
    occ_cur_take(&c, 16, &p); /* @48 attributes */
    memcpy(r->attributes, p, 16);
    r->flags = 0;
    r->xfrm = 0;
    for (int i = 7; i >= 0; i--) {
        r->flags = r->flags << 8 | p[i];
        r->xfrm = r->xfrm << 8 | p[8 + i];
    }
    occ_cur_take(&c, 32, &p); /* @64 mrenclave */
    memcpy(r->mrenclave, p, 32);
    occ_cur_take(&c, 32, NULL); /* @96 reserved2 */
    occ_cur_take(&c, 32, &p);   /* @128 mrsigner */
    memcpy(r->mrsigner, p, 32);
    occ_cur_take(&c, 32, NULL); /* @160 reserved3 */
    occ_cur_take(&c, 64, &p);   /* @192 configid */
    memcpy(r->config_id, p, 64);
    occ_cur_u16(&c, &r->isv_prod_id); /* @256 */
    occ_cur_u16(&c, &r->isv_svn);     /* @258 */
    occ_cur_u16(&c, &r->config_svn);  /* @260 */
    occ_cur_take(&c, 42, NULL);       /* @262 reserved4 */
    occ_cur_take(&c, 16, &p);         /* @304 isvfamilyid */
    memcpy(r->isv_family_id, p, 16);
    occ_cur_take(&c, 64, &p); /* @320 reportdata */
    memcpy(r->report_data, p, 64);
}

occ_status occ_quote_parse(const uint8_t *buf, size_t size, occ_quote *q, occ_error *e)
{
    if (!buf || !q)
        return occ_fail(e, OCC_ERR_INVALID, "quote parse: NULL argument");
    memset(q, 0, sizeof *q);
    occ_cur c = {buf, size};
    const uint8_t *p;
    uint32_t sig_len;
    if (size < 8)
        return occ_fail(e, OCC_ERR_FORMAT, "quote parse error: %zu bytes is shorter than a quote header", size);
    occ_cur_u16(&c, &q->version);
    occ_cur_u16(&c, &q->att_key_type);
    occ_cur_u32(&c, &q->tee_type);
    if (q->tee_type != 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "not an SGX enclave quote: TEE type 0x%x%s (only SGX, type 0, is supported)", q->tee_type,
                        q->tee_type == 0x81 ? " = TDX" : "");
    if (q->version != 3)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "unsupported quote version %u (only SGX ECDSA quote v3)", q->version);
    if (q->att_key_type != 2)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "unsupported attestation key type %u (only 2 = ECDSA-256-with-P-256)", q->att_key_type);
    if (!occ_cur_u16(&c, &q->qe_svn) || !occ_cur_u16(&c, &q->pce_svn) || !occ_cur_take(&c, 16, &p))
        goto trunc;
    memcpy(q->qe_vendor_id, p, 16);
    if (!occ_cur_take(&c, 20, &p))
        goto trunc;
    memcpy(q->user_data, p, 20);
    if (!occ_cur_take(&c, OCC_QUOTE_REPORT_SIZE, &p))
        goto trunc;
    parse_report(p, &q->report);
    q->signed_bytes = buf;
    if (!occ_cur_u32(&c, &sig_len))
        goto trunc;
    if (sig_len != c.left)
        return occ_fail(e, OCC_ERR_FORMAT,
                        "quote parse error: signature_data_len %u %s the %zu remaining bytes", sig_len,
                        sig_len > c.left ? "exceeds" : "does not match", c.left);
    occ_cur s = {c.p, sig_len};
    if (!occ_cur_take(&s, 64, &q->isv_sig) || !occ_cur_take(&s, 64, &q->att_key) ||
        !occ_cur_take(&s, OCC_QUOTE_REPORT_SIZE, &q->qe_report_raw) || !occ_cur_take(&s, 64, &q->qe_sig) ||
        !occ_cur_u16(&s, &q->qe_auth_size))
        goto trunc_sig;
    parse_report(q->qe_report_raw, &q->qe_report);
    if (!occ_cur_take(&s, q->qe_auth_size, &q->qe_auth))
        return occ_fail(e, OCC_ERR_FORMAT, "quote parse error: QE auth data length %u exceeds the remaining %zu bytes",
                        q->qe_auth_size, s.left);
    if (!occ_cur_u16(&s, &q->cert_type) || !occ_cur_u32(&s, &q->cert_size))
        goto trunc_sig;
    if (!occ_cur_take(&s, q->cert_size, &q->cert_data))
        return occ_fail(e, OCC_ERR_FORMAT,
                        "quote parse error: certification data size %u exceeds the remaining %zu bytes", q->cert_size,
                        s.left);
    if (s.left)
        return occ_fail(e, OCC_ERR_FORMAT, "quote parse error: %zu trailing bytes after the certification data", s.left);
    return OCC_OK;
trunc:
    return occ_fail(e, OCC_ERR_FORMAT, "quote parse error: truncated (%zu bytes)", size);
trunc_sig:
    return occ_fail(e, OCC_ERR_FORMAT, "quote parse error: signature data truncated");
}
