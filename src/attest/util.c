/* Shared helpers: cursor, hex, files, ECDSA, time, verdict output. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/err.h>

#include "attest/attest_int.h"

const uint8_t occ_attest_intel_root_sha256[32] = {
    0x44, 0xa0, 0x19, 0x6b, 0x2b, 0x99, 0xf8, 0x89, 0xb8, 0xe1, 0x49, 0xe9, 0x5b, 0x80, 0x7a, 0x35,
    0x0e, 0x74, 0x24, 0x96, 0x43, 0x99, 0xe8, 0x85, 0xa7, 0xcb, 0xb8, 0xcc, 0xfa, 0xb6, 0x74, 0xd3,
};

int occ_cur_take(occ_cur *c, size_t n, const uint8_t **out)
{
    if (n > c->left)
        return 0;
    if (out)
        *out = c->p;
    c->p += n;
    c->left -= n;
    return 1;
}

int occ_cur_u16(occ_cur *c, uint16_t *v)
{
    const uint8_t *p;
    if (!occ_cur_take(c, 2, &p))
        return 0;
    *v = (uint16_t)(p[0] | (p[1] << 8));
    return 1;
}

int occ_cur_u32(occ_cur *c, uint32_t *v)
{
    const uint8_t *p;
    if (!occ_cur_take(c, 4, &p))
        return 0;
    *v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    return 1;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

occ_status occ_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_size)
{
    if (!hex || hex_len != 2 * out_size)
        return OCC_ERR_INVALID;
    for (size_t i = 0; i < out_size; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return OCC_ERR_INVALID;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return OCC_OK;
}

void occ_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

occ_status occ_attest_read_file(const char *path, size_t max_size, uint8_t **out, size_t *size, occ_error *e)
{
    *out = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory reading %s", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_size) {
                free(buf);
                fclose(f);
                return occ_fail(e, OCC_ERR_FORMAT, "%s is larger than %zu bytes", path, max_size);
            }
            cap = cap * 2 > max_size ? max_size : cap * 2;
            uint8_t *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return occ_fail(e, OCC_ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                fclose(f);
                return occ_fail(e, OCC_ERR_IO, "cannot read %s", path);
            }
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *size = n;
    return OCC_OK;
}

void occ_attest_sha256(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 32;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || (alen && EVP_DigestUpdate(md, a, alen) != 1) ||
        (blen && EVP_DigestUpdate(md, b, blen) != 1) || EVP_DigestFinal_ex(md, out, &n) != 1)
        memset(out, 0, 32); /* only on allocation failure; callers compare, so a zero hash fails closed */
    EVP_MD_CTX_free(md);
}

EVP_PKEY *occ_p256_from_xy(const uint8_t xy[64])
{
    uint8_t pt[65];
    pt[0] = 0x04;
    memcpy(pt + 1, xy, 64);
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt);
    params[2] = OSSL_PARAM_construct_end();
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    if (pkey) {
        /* fromdata does not check the point is on the curve: do it. */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        int ok = chk && EVP_PKEY_public_check(chk) == 1;
        EVP_PKEY_CTX_free(chk);
        if (!ok) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    return pkey;
}

int occ_ecdsa_verify_raw(EVP_PKEY *key, const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    if (!key || sig_len == 0 || sig_len % 2)
        return 0;
    size_t half = sig_len / 2;
    int ok = 0;
    uint8_t *der = NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!es || !r || !s || !md) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    if (!ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    int der_len = i2d_ECDSA_SIG(es, &der);
    if (der_len <= 0)
        goto out;
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
        goto out;
    ok = EVP_DigestVerify(md, der, (size_t)der_len, msg, msg_len) == 1;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return ok;
}

int occ_pem_chain(const uint8_t *pem, size_t len, X509 **certs, int max)
{
    if (len > INT32_MAX)
        return -1;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return -1;
    int n = 0;
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
            break;
        if (n == max) {
            X509_free(x);
            for (int i = 0; i < n; i++)
                X509_free(certs[i]);
            BIO_free(b);
            ERR_clear_error();
            return -1;
        }
        certs[n++] = x;
    }
    ERR_clear_error();
    BIO_free(b);
    return n;
}

int occ_parse_iso8601(const char *s, int64_t *out)
{
    int Y, M, D, h, m, sec, n = 0;
    if (!s || strlen(s) != 20)
        return 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || n != 20)
        return 0;
    for (int i = 0; i < 20; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return 0;
        } else if (i == 10) {
            if (s[i] != 'T')
                return 0;
        } else if (i == 13 || i == 16) {
            if (s[i] != ':')
                return 0;
        } else if (i == 19) {
            if (s[i] != 'Z')
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return 0;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *out = (int64_t)timegm(&tm);
    return 1;
}

void occ_format_time(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, size, "%lld", (long long)t);
}

/* ---- verdict ---- */

void occ_verdict_reason(occ_attest_verdict *v, const char *fmt, ...)
{
    va_list ap;
    if (v->reason_count >= OCC_VERDICT_MAX_REASONS) {
        snprintf(v->reasons[OCC_VERDICT_MAX_REASONS - 1], OCC_VERDICT_REASON_SIZE, "(more reasons omitted)");
        return;
    }
    va_start(ap, fmt);
    vsnprintf(v->reasons[v->reason_count++], OCC_VERDICT_REASON_SIZE, fmt, ap);
    va_end(ap);
}

void occ_verdict_warn(occ_attest_verdict *v, const char *fmt, ...)
{
    va_list ap;
    if (v->warning_count >= 8)
        return;
    va_start(ap, fmt);
    vsnprintf(v->warnings[v->warning_count++], OCC_VERDICT_REASON_SIZE, fmt, ap);
    va_end(ap);
}

int occ_verdict_has_reason(const occ_attest_verdict *v, const char *needle)
{
    for (size_t i = 0; i < v->reason_count; i++)
        if (strstr(v->reasons[i], needle))
            return 1;
    return 0;
}

void occ_verdict_add_advisory(occ_attest_verdict *v, const char *id)
{
    for (size_t i = 0; i < v->advisory_count; i++)
        if (!strcmp(v->advisories[i], id))
            return;
    if (v->advisory_count < OCC_VERDICT_MAX_ADVISORIES)
        snprintf(v->advisories[v->advisory_count++], OCC_ADVISORY_SIZE, "%s", id);
}

void occ_verdict_print(const occ_attest_verdict *v, FILE *f)
{
    char hex[129];
    if (v->emulated)
        fputs("!!! EMULATED QUOTE: NOT hardware-backed. It proves nothing about SGX hardware;\n"
              "!!! it only shows the holder of the emulated root's keys vouched for this code.\n",
              f);
    fprintf(f, "verdict:      %s\n", v->accepted ? "ACCEPTED" : "REFUSED");
    if (v->parsed) {
        fprintf(f, "quote:        SGX ECDSA v%u%s\n", v->quote_version, v->is_cert ? " (from RA-TLS certificate)" : "");
        fprintf(f, "tcb status:   %s\n", v->tcb_status[0] ? v->tcb_status : "Unknown");
        if (v->qe_tcb_status[0])
            fprintf(f, "qe tcb:       %s\n", v->qe_tcb_status);
        if (v->tcb_date[0])
            fprintf(f, "tcb date:     %s\n", v->tcb_date);
        fputs("advisories:   ", f);
        for (size_t i = 0; i < v->advisory_count; i++)
            fprintf(f, "%s%s", i ? ", " : "", v->advisories[i]);
        fputs(v->advisory_count ? "\n" : "(none)\n", f);
        occ_hex_encode(v->mrenclave, 32, hex);
        fprintf(f, "mrenclave:    %s\n", hex);
        occ_hex_encode(v->mrsigner, 32, hex);
        fprintf(f, "mrsigner:     %s\n", hex);
        fprintf(f, "isv prod id:  %u\nisv svn:      %u\n", v->isv_prod_id, v->isv_svn);
        fprintf(f, "debug:        %s\n", v->debug ? "YES (debug enclave: its memory is readable by the host)" : "no");
        occ_hex_encode(v->report_data, 64, hex);
        fprintf(f, "report data:  %s\n", hex);
        if (v->is_cert)
            fprintf(f, "key binding:  %s\n", v->binding[0] ? v->binding : "none");
        for (size_t i = 0; v->models_bound && i < v->model_count; i++) {
            occ_hex_encode(v->model_ids[i], 32, hex);
            fprintf(f, "%s %s = %s\n", i ? "             " : "models:      ", v->model_names[i], hex);
        }
    }
    for (size_t i = 0; i < v->warning_count; i++)
        fprintf(f, "warning:      %s\n", v->warnings[i]);
    for (size_t i = 0; i < v->reason_count; i++)
        fprintf(f, "reason:       %s\n", v->reasons[i]);
}

char *occ_verdict_json(const occ_attest_verdict *v)
{
    char hex[129];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddBoolToObject(o, "accepted", v->accepted);
    cJSON_AddBoolToObject(o, "verified", v->verified);
    cJSON_AddBoolToObject(o, "emulated", v->emulated);
    cJSON_AddBoolToObject(o, "hardware_backed", v->parsed && !v->emulated && v->verified);
    cJSON_AddBoolToObject(o, "debug", v->debug);
    cJSON_AddStringToObject(o, "tcb_status", v->tcb_status[0] ? v->tcb_status : "Unknown");
    cJSON_AddStringToObject(o, "qe_tcb_status", v->qe_tcb_status[0] ? v->qe_tcb_status : "Unknown");
    if (v->tcb_date[0])
        cJSON_AddStringToObject(o, "tcb_date", v->tcb_date);
    if (v->fmspc[0])
        cJSON_AddStringToObject(o, "fmspc", v->fmspc);
    cJSON *adv = cJSON_AddArrayToObject(o, "advisories");
    for (size_t i = 0; adv && i < v->advisory_count; i++)
        cJSON_AddItemToArray(adv, cJSON_CreateString(v->advisories[i]));
    cJSON *rs = cJSON_AddArrayToObject(o, "reasons");
    for (size_t i = 0; rs && i < v->reason_count; i++)
        cJSON_AddItemToArray(rs, cJSON_CreateString(v->reasons[i]));
    cJSON *ws = cJSON_AddArrayToObject(o, "warnings");
    for (size_t i = 0; ws && i < v->warning_count; i++)
        cJSON_AddItemToArray(ws, cJSON_CreateString(v->warnings[i]));
    cJSON_AddBoolToObject(o, "collateral_missing", v->collateral_missing);
    if (v->parsed) {
        cJSON_AddNumberToObject(o, "quote_version", v->quote_version);
        occ_hex_encode(v->mrenclave, 32, hex);
        cJSON_AddStringToObject(o, "mrenclave", hex);
        occ_hex_encode(v->mrsigner, 32, hex);
        cJSON_AddStringToObject(o, "mrsigner", hex);
        occ_hex_encode(v->report_data, 64, hex);
        cJSON_AddStringToObject(o, "report_data", hex);
        cJSON_AddNumberToObject(o, "isv_prod_id", v->isv_prod_id);
        cJSON_AddNumberToObject(o, "isv_svn", v->isv_svn);
        snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)v->flags);
        cJSON_AddStringToObject(o, "attributes_flags", hex);
    } else {
        cJSON_AddNullToObject(o, "mrenclave");
        cJSON_AddNullToObject(o, "mrsigner");
        cJSON_AddNullToObject(o, "report_data");
        cJSON_AddNullToObject(o, "isv_prod_id");
        cJSON_AddNullToObject(o, "isv_svn");
    }
    if (v->is_cert) {
        cJSON_AddStringToObject(o, "key_binding", v->binding);
        occ_hex_encode(v->spki_sha256, 32, hex);
        cJSON_AddStringToObject(o, "spki_sha256", hex);
        /* the (name, model id) list bound in REPORTDATA[32..63]; null when
         * the certificate carries none (or it did not verify) */
        cJSON *ms = v->models_bound ? cJSON_AddObjectToObject(o, "models") : NULL;
        if (!v->models_bound)
            cJSON_AddNullToObject(o, "models");
        for (size_t i = 0; ms && i < v->model_count; i++) {
            occ_hex_encode(v->model_ids[i], 32, hex);
            cJSON_AddStringToObject(ms, v->model_names[i], hex);
        }
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}
