/* A minimal strict DER reader, used for the SGX extension of PCK
 * certificates (OID 1.2.840.113741.1.13.1). X.509 itself is parsed by
 * OpenSSL; this only walks the extension's inner SEQUENCEs. */
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "attest/attest_int.h"

int occ_der_next(occ_cur *c, occ_der *out)
{
    const uint8_t *p;
    if (!occ_cur_take(c, 2, &p))
        return 0;
    if ((p[0] & 0x1f) == 0x1f)
        return 0; /* multi-byte tags: not used here */
    out->tag = p[0];
    size_t len = p[1];
    if (len & 0x80) {
        size_t nb = len & 0x7f;
        if (nb == 0 || nb > 4)
            return 0; /* indefinite or absurd */
        const uint8_t *lp;
        if (!occ_cur_take(c, nb, &lp))
            return 0;
        if (lp[0] == 0)
            return 0; /* non-minimal */
        len = 0;
        for (size_t i = 0; i < nb; i++)
            len = len << 8 | lp[i];
        if (len < 0x80)
            return 0; /* non-minimal */
    }
    if (!occ_cur_take(c, len, &out->val))
        return 0;
    out->len = len;
    return 1;
}

/* 1.2.840.113741.1.13.1 */
static const uint8_t SGX_OID[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

static int oid_is(const occ_der *d, const uint8_t *suffix, size_t n)
{
    return d->tag == 0x06 && d->len == sizeof SGX_OID + n && !memcmp(d->val, SGX_OID, sizeof SGX_OID) &&
           !memcmp(d->val + sizeof SGX_OID, suffix, n);
}

static int der_uint(const occ_der *d, unsigned tag, uint32_t max, uint32_t *out)
{
    if (d->tag != tag || d->len == 0 || d->len > 5)
        return 0;
    if (d->val[0] & 0x80)
        return 0; /* negative */
    uint64_t v = 0;
    for (size_t i = 0; i < d->len; i++)
        v = v << 8 | d->val[i];
    if (v > max)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

static occ_status parse_tcb(const occ_der *seq, occ_pck_info *info, occ_error *e)
{
    occ_cur c = {seq->val, seq->len};
    int seen = 0;
    while (c.left) {
        occ_der item, oid, val;
        if (!occ_der_next(&c, &item) || item.tag != 0x30)
            return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad TCB entry");
        occ_cur ic = {item.val, item.len};
        if (!occ_der_next(&ic, &oid) || !occ_der_next(&ic, &val) || ic.left || oid.tag != 0x06 ||
            oid.len != sizeof SGX_OID + 2 || memcmp(oid.val, SGX_OID, sizeof SGX_OID) || oid.val[sizeof SGX_OID] != 2)
            return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad TCB entry");
        unsigned k = oid.val[sizeof SGX_OID + 1];
        uint32_t u;
        if (k >= 1 && k <= 16) {
            if (!der_uint(&val, 0x02, 255, &u))
                return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad TCB component %u", k);
            info->comps[k - 1] = (uint8_t)u;
            seen |= 1 << k;
        } else if (k == 17) {
            if (!der_uint(&val, 0x02, 65535, &u))
                return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad PCESVN");
            info->pcesvn = (uint16_t)u;
            seen |= 1 << 17;
        } else if (k == 18) {
            if (val.tag != 0x04 || val.len != 16)
                return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad CPUSVN");
            memcpy(info->cpusvn, val.val, 16);
            seen |= 1 << 18;
        }
    }
    if ((seen & 0x3fffe) != 0x3fffe)
        return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: TCB components or PCESVN missing");
    info->have_tcb = 1;
    return OCC_OK;
}

occ_status occ_pck_ext_parse(const uint8_t *der, size_t len, occ_pck_info *info, occ_error *e)
{
    memset(info, 0, sizeof *info);
    occ_cur c = {der, len};
    occ_der outer;
    if (!occ_der_next(&c, &outer) || outer.tag != 0x30 || c.left)
        return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: not a DER SEQUENCE");
    occ_cur oc = {outer.val, outer.len};
    while (oc.left) {
        occ_der item, oid, val;
        if (!occ_der_next(&oc, &item) || item.tag != 0x30)
            return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad entry");
        occ_cur ic = {item.val, item.len};
        if (!occ_der_next(&ic, &oid) || !occ_der_next(&ic, &val) || ic.left)
            return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad entry");
        static const uint8_t tcb[] = {2}, pceid[] = {3}, fmspc[] = {4};
        if (oid_is(&oid, tcb, 1)) {
            if (val.tag != 0x30)
                return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: TCB is not a SEQUENCE");
            occ_status st = parse_tcb(&val, info, e);
            if (st)
                return st;
        } else if (oid_is(&oid, pceid, 1)) {
            if (val.tag != 0x04 || val.len != 2)
                return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad PCE-ID");
            memcpy(info->pceid, val.val, 2);
            info->have_pceid = 1;
        } else if (oid_is(&oid, fmspc, 1)) {
            if (val.tag != 0x04 || val.len != 6)
                return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: bad FMSPC");
            memcpy(info->fmspc, val.val, 6);
            info->have_fmspc = 1;
        }
    }
    if (!info->have_tcb || !info->have_pceid || !info->have_fmspc)
        return occ_fail(e, OCC_ERR_FORMAT, "PCK SGX extension: TCB, PCE-ID or FMSPC missing");
    return OCC_OK;
}

occ_status occ_pck_info_from_cert(X509 *cert, occ_pck_info *info, occ_error *e)
{
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    if (!obj)
        return occ_fail(e, OCC_ERR_INTERNAL, "OBJ_txt2obj failed");
    int idx = X509_get_ext_by_OBJ(cert, obj, -1);
    ASN1_OBJECT_free(obj);
    if (idx < 0)
        return occ_fail(e, OCC_ERR_FORMAT, "PCK certificate has no SGX extension (1.2.840.113741.1.13.1)");
    X509_EXTENSION *ext = X509_get_ext(cert, idx);
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
    return occ_pck_ext_parse(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), info, e);
}
