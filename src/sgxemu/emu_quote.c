/* Emulated quoting: the SGX quoting service, emulated. A locally generated
 * root CA certifies a PCK-like key, whose key signs the QE report that binds
 * the attestation key, which signs the enclave report: the same chain and
 * byte format as DCAP (quote v3, certification data type 5), verified by the
 * same verifier. Only the root differs, and a verifier must be handed it
 * explicitly: an emulated quote is NOT hardware-backed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "occ/quote.h"

#define PATH_SIZE 4096

struct occ_emu_quoter {
    char dir[PATH_SIZE];
    char root_path[PATH_SIZE];
    X509 *root;
    X509 *pck;
    EVP_PKEY *pck_key;
    EVP_PKEY *ak;
    uint8_t ak_xy[64];
    char *chain_pem; /* pck then root, NUL-terminated; chain_size includes the NUL */
    size_t chain_size;
};

/* "OCC-EMULATED-QE!" */
static const uint8_t EMU_QE_VENDOR[16] = {'O', 'C', 'C', '-', 'E', 'M', 'U', 'L',
                                          'A', 'T', 'E', 'D', '-', 'Q', 'E', '!'};

static void sha256(const void *a, size_t an, const void *b, size_t bn, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 32;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || (an && EVP_DigestUpdate(md, a, an) != 1) ||
        (bn && EVP_DigestUpdate(md, b, bn) != 1) || EVP_DigestFinal_ex(md, out, &n) != 1)
        memset(out, 0, 32);
    EVP_MD_CTX_free(md);
}

occ_status occ_emu_hash_file(const char *path, uint8_t out[32], occ_error *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t buf[65536];
    size_t n;
    unsigned int hl = 32;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0)
        ok = EVP_DigestUpdate(md, buf, n) == 1;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, out, &hl) == 1;
    EVP_MD_CTX_free(md);
    fclose(f);
    if (!ok)
        return occ_fail(e, OCC_ERR_IO, "cannot hash %s", path);
    return OCC_OK;
}

occ_status occ_emu_mrenclave(uint8_t out[32], occ_error *e)
{
    return occ_emu_hash_file("/proc/self/exe", out, e);
}

/* ---- key material ---- */

static X509 *make_cert(const char *cn, EVP_PKEY *subject_key, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    int ok = x && name && bc && ku && RAND_bytes(serial, sizeof serial) == 1;
    if (ok) {
        serial[0] = (serial[0] & 0x7f) | 0x01;
        ok = (bn = BN_bin2bn(serial, sizeof serial, NULL)) && (sn = BN_to_ASN1_INTEGER(bn, NULL)) &&
             X509_set_version(x, 2) && X509_set_serialNumber(x, sn) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                        (const unsigned char *)"Occlumency EMULATED SGX (not hardware-backed)", -1,
                                        -1, 0) &&
             X509_set_subject_name(x, name) &&
             X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 86400) && X509_set_pubkey(x, subject_key);
    }
    if (ok) {
        bc->ca = ca ? 0xff : 0;
        ok = X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1;
        if (ca)
            ok = ok && ASN1_BIT_STRING_set_bit(ku, 5, 1) && ASN1_BIT_STRING_set_bit(ku, 6, 1); /* certSign, cRLSign */
        else
            ok = ok && ASN1_BIT_STRING_set_bit(ku, 0, 1); /* digitalSignature */
        ok = ok && X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1;
        ok = ok && X509_sign(x, issuer_key, EVP_sha256()) > 0;
    }
    ASN1_BIT_STRING_free(ku);
    BASIC_CONSTRAINTS_free(bc);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes via a temporary file and rename, mode 0600 (keys) / 0644 (certs). */
static occ_status write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key, occ_error *e)
{
    char path[PATH_SIZE], tmp[PATH_SIZE];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, key ? 0600 : 0644);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", tmp);
    }
    int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    ok = (fflush(f) == 0) && ok && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        ERR_clear_error();
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", path);
    }
    return OCC_OK;
}

static occ_status create_material(const char *dir, occ_error *e)
{
    occ_status st = OCC_ERR_INTERNAL;
    EVP_PKEY *rk = EVP_EC_gen("P-256"), *pk = EVP_EC_gen("P-256"), *ak = EVP_EC_gen("P-256");
    X509 *root = NULL, *pck = NULL;
    if (!rk || !pk || !ak) {
        st = occ_fail(e, OCC_ERR_INTERNAL, "emulated quoting: key generation failed");
        goto out;
    }
    root = make_cert("Occlumency EMULATED SGX Root CA", rk, NULL, rk, 1);
    pck = root ? make_cert("Occlumency EMULATED SGX PCK Certificate", pk, root, rk, 0) : NULL;
    if (!root || !pck) {
        st = occ_fail(e, OCC_ERR_INTERNAL, "emulated quoting: certificate generation failed");
        goto out;
    }
    /* keys first: root.pem appearing last marks the folder complete */
    if ((st = write_pem(dir, "root.key", NULL, rk, e)) || (st = write_pem(dir, "pck.key", NULL, pk, e)) ||
        (st = write_pem(dir, "ak.key", NULL, ak, e)) || (st = write_pem(dir, "pck.pem", pck, NULL, e)) ||
        (st = write_pem(dir, "root.pem", root, NULL, e)))
        goto out;
    st = OCC_OK;
out:
    ERR_clear_error();
    X509_free(root);
    X509_free(pck);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(ak);
    return st;
}

static X509 *read_cert(const char *dir, const char *name)
{
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *read_key(const char *dir, const char *name)
{
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static char *cert_pem(X509 *x, size_t *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    if (b && PEM_write_bio_X509(b, x)) {
        long len = BIO_get_mem_data(b, &data);
        if (len > 0 && (out = malloc((size_t)len))) {
            memcpy(out, data, (size_t)len);
            *n = (size_t)len;
        }
    }
    BIO_free(b);
    return out;
}

void occ_emu_quote_close(occ_emu_quoter *q)
{
    if (!q)
        return;
    X509_free(q->root);
    X509_free(q->pck);
    EVP_PKEY_free(q->pck_key);
    EVP_PKEY_free(q->ak);
    free(q->chain_pem);
    OPENSSL_cleanse(q, sizeof *q);
    free(q);
}

const char *occ_emu_quote_root_path(const occ_emu_quoter *q)
{
    return q ? q->root_path : NULL;
}

occ_status occ_emu_quote_open(const char *dir, occ_emu_quoter **out, occ_error *e)
{
    if (!dir || !*dir || !out)
        return occ_fail(e, OCC_ERR_INVALID, "emulated quoting: no folder given");
    *out = NULL;
    if (strlen(dir) > PATH_SIZE - 64)
        return occ_fail(e, OCC_ERR_INVALID, "emulated quoting: folder path too long");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return occ_fail(e, OCC_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    struct stat sb;
    if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return occ_fail(e, OCC_ERR_IO, "%s is not a folder", dir);
    if (sb.st_uid != geteuid() || (sb.st_mode & 077))
        return occ_fail(e, OCC_ERR_INVALID,
                        "%s must be owned by you with mode 0700 (it holds the emulated root's private key); "
                        "run: chmod 700 %s",
                        dir, dir);
    occ_emu_quoter *q = calloc(1, sizeof *q);
    if (!q)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    snprintf(q->dir, sizeof q->dir, "%s", dir);
    snprintf(q->root_path, sizeof q->root_path, "%s/root.pem", dir);
    occ_status st = OCC_OK;
    /* creation under an exclusive lock, so concurrent first uses agree */
    char lock[PATH_SIZE];
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
        st = occ_fail(e, OCC_ERR_IO, "cannot lock %s: %s", lock, strerror(errno));
        goto out;
    }
    if (access(q->root_path, F_OK) != 0 && (st = create_material(dir, e)))
        goto out;
    q->root = read_cert(dir, "root.pem");
    q->pck = read_cert(dir, "pck.pem");
    q->pck_key = read_key(dir, "pck.key");
    q->ak = read_key(dir, "ak.key");
    ERR_clear_error();
    if (!q->root || !q->pck || !q->pck_key || !q->ak) {
        st = occ_fail(e, OCC_ERR_FORMAT, "%s: emulated quoting material incomplete or unreadable "
                                         "(root.pem, pck.pem, pck.key, ak.key); remove the folder to regenerate",
                      dir);
        goto out;
    }
    if (X509_verify(q->pck, X509_get0_pubkey(q->root)) != 1 || X509_check_private_key(q->pck, q->pck_key) != 1) {
        ERR_clear_error();
        st = occ_fail(e, OCC_ERR_INTEGRITY, "%s: pck.pem is not certified by root.pem or does not match pck.key", dir);
        goto out;
    }
    uint8_t pub[65];
    size_t pn = 0;
    if (EVP_PKEY_get_octet_string_param(q->ak, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &pn) != 1 || pn != 65 ||
        pub[0] != 0x04) {
        ERR_clear_error();
        st = occ_fail(e, OCC_ERR_FORMAT, "%s/ak.key: not an uncompressed P-256 key", dir);
        goto out;
    }
    memcpy(q->ak_xy, pub + 1, 64);
    size_t n1 = 0, n2 = 0;
    char *p1 = cert_pem(q->pck, &n1), *p2 = cert_pem(q->root, &n2);
    if (p1 && p2 && (q->chain_pem = malloc(n1 + n2 + 1))) {
        memcpy(q->chain_pem, p1, n1);
        memcpy(q->chain_pem + n1, p2, n2);
        q->chain_pem[n1 + n2] = '\0';
        q->chain_size = n1 + n2 + 1;
    }
    free(p1);
    free(p2);
    if (!q->chain_pem)
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
out:
    if (lfd >= 0)
        close(lfd);
    if (st) {
        occ_emu_quote_close(q);
        return st;
    }
    *out = q;
    return OCC_OK;
}

occ_status occ_emu_identity_default(const occ_emu_quoter *q, occ_emu_identity *id, occ_error *e)
{
    memset(id, 0, sizeof *id);
    occ_status st = occ_emu_mrenclave(id->mrenclave, e);
    if (st)
        return st;
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(X509_get0_pubkey(q->root), &der);
    if (n <= 0)
        return occ_fail(e, OCC_ERR_INTERNAL, "cannot encode the emulated root key");
    sha256(der, (size_t)n, NULL, 0, id->mrsigner);
    OPENSSL_free(der);
    id->flags = 0x5; /* INIT | MODE64BIT, not DEBUG */
    id->xfrm = 0x7;
    return OCC_OK;
}

/* ---- quote bytes ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* 384-byte report body (offsets within the body). */
static void write_report(uint8_t *b, const uint8_t mrenclave[32], const uint8_t mrsigner[32], uint16_t prod,
                         uint16_t svn, uint64_t flags, uint64_t xfrm, const uint8_t report_data[64])
{
    memset(b, 0, 384);
    put64(b + 48, flags);
    put64(b + 56, xfrm);
    memcpy(b + 64, mrenclave, 32);
    memcpy(b + 128, mrsigner, 32);
    put16(b + 256, prod);
    put16(b + 258, svn);
    memcpy(b + 320, report_data, 64);
}

/* ECDSA-P256-SHA256 over msg, as raw r||s (64 bytes). */
static int sign_raw(EVP_PKEY *key, const uint8_t *msg, size_t n, uint8_t out[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t dl = sizeof der;
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(md, der, &dl, msg, n) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return 0;
    const uint8_t *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    if (!s)
        return 0;
    ok = BN_bn2binpad(ECDSA_SIG_get0_r(s), out, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(s), out + 32, 32) == 32;
    ECDSA_SIG_free(s);
    return ok;
}

occ_status occ_emu_quote_make(occ_emu_quoter *q, const occ_emu_identity *id, const uint8_t report_data[64],
                              uint8_t **quote, size_t *quote_size, occ_error *e)
{
    if (!q || !id || !report_data || !quote || !quote_size)
        return occ_fail(e, OCC_ERR_INVALID, "emulated quote: NULL argument");
    *quote = NULL;
    *quote_size = 0;
    enum { AUTH = 32 };
    size_t sig_len = 64 + 64 + 384 + 64 + 2 + AUTH + 2 + 4 + q->chain_size;
    size_t total = 48 + 384 + 4 + sig_len;
    uint8_t *b = calloc(1, total);
    if (!b)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    /* header */
    put16(b + 0, 3);
    put16(b + 2, 2);
    put32(b + 4, 0);
    put16(b + 8, 0);  /* qe svn */
    put16(b + 10, 0); /* pce svn */
    memcpy(b + 12, EMU_QE_VENDOR, 16);
    write_report(b + 48, id->mrenclave, id->mrsigner, id->isv_prod_id, id->isv_svn, id->flags, id->xfrm, report_data);
    put32(b + 432, (uint32_t)sig_len);
    uint8_t *s = b + 436;
    int ok = sign_raw(q->ak, b, 432, s);
    memcpy(s + 64, q->ak_xy, 64);
    /* QE report: binds the attestation key and the auth data */
    uint8_t auth[AUTH], qe_rd[64] = {0}, qe_mr[32], qe_signer[32];
    for (int i = 0; i < AUTH; i++)
        auth[i] = (uint8_t)i;
    sha256(q->ak_xy, 64, auth, AUTH, qe_rd);
    sha256("occlumency emulated quoting enclave", 35, NULL, 0, qe_mr);
    sha256("occlumency emulated quoting enclave signer", 42, NULL, 0, qe_signer);
    write_report(s + 128, qe_mr, qe_signer, 1, 0, 0x15, 0x7, qe_rd);
    ok = ok && sign_raw(q->pck_key, s + 128, 384, s + 512);
    put16(s + 576, AUTH);
    memcpy(s + 578, auth, AUTH);
    uint8_t *cd = s + 578 + AUTH;
    put16(cd, 5);
    put32(cd + 2, (uint32_t)q->chain_size);
    memcpy(cd + 6, q->chain_pem, q->chain_size);
    ERR_clear_error();
    if (!ok) {
        free(b);
        return occ_fail(e, OCC_ERR_INTERNAL, "emulated quote: signing failed");
    }
    *quote = b;
    *quote_size = total;
    return OCC_OK;
}

/* Emulated EGETKEY (KEYNAME = SEAL, KEYPOLICY = MRENCLAVE): HKDF-SHA256 of
 * the emulated platform's secret (the attestation key in DIR, which only
 * the "CPU" - whoever holds DIR - knows) with the enclave's MRENCLAVE and
 * MRSIGNER: another enclave, or the same code under another folder, derives
 * another key. */
occ_status occ_emu_seal_key(void *ctx, uint8_t out[32], occ_error *e)
{
    occ_emu_provider *p = ctx;
    if (!p || !p->quoter || !p->quoter->ak)
        return occ_fail(e, OCC_ERR_INVALID, "emulated sealing: no context");
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(p->quoter->ak, &der);
    if (n <= 0)
        return occ_fail(e, OCC_ERR_INTERNAL, "emulated sealing: cannot encode the platform secret");
    uint8_t info[64 + 16];
    memcpy(info, "occ-emu-seal-v1", 16);
    memcpy(info + 16, p->identity.mrenclave, 32);
    memcpy(info + 48, p->identity.mrsigner, 32);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    OSSL_PARAM prm[4];
    prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    prm[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, der, (size_t)n);
    prm[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info);
    prm[3] = OSSL_PARAM_construct_end();
    int ok = kc && EVP_KDF_derive(kc, out, 32, prm) == 1;
    EVP_KDF_CTX_free(kc);
    OPENSSL_clear_free(der, (size_t)n);
    if (!ok) {
        OPENSSL_cleanse(out, 32);
        return occ_fail(e, OCC_ERR_INTERNAL, "emulated sealing: key derivation failed");
    }
    return OCC_OK;
}

occ_status occ_emu_quote_provider(void *ctx, const uint8_t report_data[64], uint8_t **quote, size_t *quote_size,
                                  occ_error *e)
{
    occ_emu_provider *p = ctx;
    if (!p)
        return occ_fail(e, OCC_ERR_INVALID, "emulated quote provider: no context");
    return occ_emu_quote_make(p->quoter, &p->identity, report_data, quote, quote_size, e);
}
