/* occ attest: verify an SGX quote or an RA-TLS certificate against a policy.
 * Exit status: 0 accepted, 1 refused, 2 usage or input error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli/cli.h"
#include "occ/attest.h"
#include "occ/client.h"
#include "occ/quote.h"
#include "occ/ratls.h"

static void usage(FILE *f)
{
    fputs("usage: occ attest --quote FILE --root ROOT.der|pem [--collateral C.json] --policy P.json\n"
          "                  [--at UNIX_SECONDS] [--json] [--insecure]\n"
          "       occ attest --cert CERT.pem|der --root ROOT [--collateral C.json] --policy P.json [--model NAME]\n"
          "                  [--at T] [--json] [--insecure]\n"
          "       occ attest --emu-dir DIR --make-quote OUT [--report-data HEX128]\n"
          "       occ attest --emu-dir DIR --make-cert OUT.pem [--model-id HEX64 | --bind-model NAME=HEX64 ...]\n"
          "       occ attest https://HOST:PORT --policy P.json --root ROOT [--model NAME] [--save-cert FILE] [--json]\n"
          "\n"
          "Verifies an SGX DCAP ECDSA quote (v3) or an RA-TLS certificate: signatures, QE binding,\n"
          "the PCK chain to the pinned root, CRLs, TCB info and QE identity (with --collateral),\n"
          "then the policy. Exit 0 only when accepted.\n"
          "The policy must pin the enclave (mrenclave, or mrsigner with isv_prod_id) and the model\n"
          "(model_id, or models); otherwise nothing is verified (exit 2) unless --insecure is given.\n"
          "\n"
          "  --quote FILE        raw quote bytes\n"
          "  --cert FILE         RA-TLS certificate (TCG 2.23.133.5.4.9 or legacy quote extension)\n"
          "  --root FILE         trust anchor: the Intel SGX Root CA, or an emulated root (DIR/root.pem)\n"
          "  --emu-dir DIR       emulated quoting folder; alone, it means --root DIR/root.pem\n"
          "  --collateral FILE   PCCS-style collateral JSON (tcb_info, qe_identity, CRLs, chains)\n"
          "  --policy FILE       policy JSON (see docs/attestation.md)\n"
          "  --insecure          accept a policy that pins no enclave or no model (or no --policy: the\n"
          "                      default one): any enclave the root vouches for. Emulated quotes still\n"
          "                      need \"allow_emulated\": true in the policy.\n"
          "  --model NAME        the model about to be used: only its \"models\" entry is enforced\n"
          "                      (default: every entry of the policy's \"models\")\n"
          "  --at UNIX_SECONDS   verification time (default: now)\n"
          "  --json              print the verdict as JSON\n"
          "  --make-quote OUT    write an EMULATED quote (MRENCLAVE = SHA-256 of this occ binary)\n"
          "  --make-cert OUT     write an EMULATED RA-TLS certificate (its key is discarded)\n"
          "  --report-data HEX   REPORTDATA for --make-quote (128 hex chars; default zeros)\n"
          "  --model-id HEX      model id for --make-cert (64 hex chars; default zeros)\n"
          "  --bind-model NAME=HEX  for --make-cert, repeatable: a server's (name, model id) list, bound\n"
          "                      in REPORTDATA[32..63] and carried in the certificate as `occ serve` does\n"
          "\n"
          "An emulated quote verifies only with the emulated root given explicitly and is reported\n"
          "as NOT hardware-backed.\n"
          "\n"
          "Network form: connects to an `occ serve` server, verifies its RA-TLS certificate inside the\n"
          "TLS 1.3 handshake (nothing is sent to a refused server) and prints the verdict;\n"
          "  --save-cert FILE    write the verified certificate (PEM) for curl --cacert / --pinnedpubkey\n"
          "                      (the sha256// pin is printed; see docs/server.md)\n",
          f);
}

#define MAX_BIND OCC_BOUND_MODELS_MAX

static int make_evidence(const char *emu_dir, const char *quote_out, const char *cert_out, const char *rd_hex,
                         const char *model_hex, char *const *bind, size_t n_bind)
{
    const char *names[MAX_BIND];
    uint8_t ids[MAX_BIND][32];
    for (size_t i = 0; i < n_bind; i++) {
        char *eq = strchr(bind[i], '=');
        if (!eq || occ_hex_decode(eq + 1, strlen(eq + 1), ids[i], 32))
            return occ_cli_error("attest", "--bind-model wants NAME=<64 hex characters>, got '%s'", bind[i]) + 1;
        *eq = 0; /* argv is ours to cut */
        names[i] = bind[i];
    }
    if (n_bind && (model_hex || quote_out))
        return occ_cli_error("attest", "--bind-model goes with --make-cert, without --model-id") + 1;
    occ_error e = {0};
    uint8_t rd[64] = {0}, model[32] = {0};
    if (rd_hex && occ_hex_decode(rd_hex, strlen(rd_hex), rd, 64))
        return occ_cli_error("attest", "--report-data must be 128 hex characters");
    if (model_hex && occ_hex_decode(model_hex, strlen(model_hex), model, 32))
        return occ_cli_error("attest", "--model-id must be 64 hex characters");
    occ_emu_provider prov = {0};
    if (occ_emu_quote_open(emu_dir, &prov.quoter, &e) || occ_emu_identity_default(prov.quoter, &prov.identity, &e)) {
        occ_emu_quote_close(prov.quoter);
        return occ_cli_error("attest", "%s", e.msg);
    }
    int rc = 0;
    FILE *f = fopen(quote_out ? quote_out : cert_out, "wb");
    if (!f) {
        occ_emu_quote_close(prov.quoter);
        return occ_cli_error("attest", "cannot write %s: %s", quote_out ? quote_out : cert_out, strerror(errno));
    }
    if (quote_out) {
        uint8_t *q = NULL;
        size_t n = 0;
        if (occ_emu_quote_make(prov.quoter, &prov.identity, rd, &q, &n, &e))
            rc = occ_cli_error("attest", "%s", e.msg);
        else if (fwrite(q, 1, n, f) != n)
            rc = occ_cli_error("attest", "cannot write %s", quote_out);
        free(q);
    } else {
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        int64_t now = (int64_t)time(NULL);
        if (occ_ratls_keygen(&key, &e) ||
            (n_bind ? occ_ratls_make_cert_models(key, names, (const uint8_t(*)[32])ids, n_bind, occ_emu_quote_provider,
                                                 &prov, now - 3600, now + 30 * 86400, &cert, &e)
                    : occ_ratls_make_cert(key, model, occ_emu_quote_provider, &prov, now - 3600, now + 30 * 86400,
                                          &cert, &e)))
            rc = occ_cli_error("attest", "%s", e.msg);
        else if (!PEM_write_X509(f, cert))
            rc = occ_cli_error("attest", "cannot write %s", cert_out);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    if (fclose(f) != 0 && !rc)
        rc = occ_cli_error("attest", "cannot write %s", quote_out ? quote_out : cert_out);
    if (!rc)
        fprintf(stderr, "occ attest: wrote an EMULATED %s (NOT hardware-backed); verify with --root %s\n",
                quote_out ? "quote" : "RA-TLS certificate", occ_emu_quote_root_path(prov.quoter));
    occ_emu_quote_close(prov.quoter);
    return rc ? 2 : 0;
}

/* The policy must pin the enclave and the model, unless --insecure. */
static int pins_ok(const occ_attest_policy *p, const char *policy_path, int insecure)
{
    char why[200];
    if (occ_attest_policy_pinned(p, why, sizeof why))
        return 1;
    if (insecure) {
        fprintf(stderr, "occ attest: --insecure: %s: any enclave the root vouches for is accepted\n", why);
        return 1;
    }
    occ_cli_error("attest", "%s%s; refusing to verify against it (pin them, see docs/attestation.md, or pass --insecure)",
                  policy_path ? "" : "no --policy: ", why);
    return 0;
}

static X509 *load_cert_file(const char *path, occ_error *e)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    if (occ_attest_read_file(path, 1u << 20, &buf, &n, e))
        return NULL;
    /* DER first, and only when it is the whole file: an RA-TLS certificate in DER
     * carries a PEM PCK chain inside its quote, which PEM_read would pick up instead */
    const uint8_t *p = buf;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    if (x && p != buf + n) {
        X509_free(x);
        x = NULL;
    }
    if (!x) {
        BIO *b = BIO_new_mem_buf(buf, (int)n);
        x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    }
    ERR_clear_error();
    free(buf);
    if (!x)
        occ_fail(e, OCC_ERR_FORMAT, "%s: not a PEM or DER X.509 certificate", path);
    return x;
}

/* occ attest https://HOST:PORT: the server's certificate, verified in the handshake. */
static int attest_url(const char *url, const char *root_path, const char *policy_path, const char *save_cert,
                      int json, int64_t at, const char *model, int insecure)
{
    occ_error e = {0};
    X509 *root = NULL;
    occ_attest_policy policy;
    occ_attest_policy_default(&policy);
    if ((root_path && occ_attest_root_load(root_path, &root, &e)) ||
        (policy_path && occ_attest_policy_load(policy_path, &policy, &e))) {
        occ_cli_error("attest", "%s", e.msg);
        X509_free(root);
        return 2;
    }
    if (!pins_ok(&policy, policy_path, insecure)) {
        X509_free(root);
        return 2;
    }
    if (!root)
        fprintf(stderr, "occ attest: no --root given: no evidence can be trusted, the server will be refused "
                        "(emulated servers: --root DIR/root.pem of their --emu-dir)\n");
    occ_client_opts o = {&policy, root, at, 10000, model, insecure};
    occ_attest_verdict v;
    occ_client *c = NULL;
    occ_status st = occ_client_connect(url, &o, &v, &c, &e);
    int rc = 2;
    if (st && st != OCC_ERR_ATTEST) {
        occ_cli_error("attest", "%s", e.msg);
        goto out;
    }
    uint8_t *pin_src = v.spki_sha256;
    char pin[64] = "";
    EVP_EncodeBlock((unsigned char *)pin, pin_src, 32);
    if (!st && save_cert) {
        FILE *f = fopen(save_cert, "wb");
        int ok = f && PEM_write_X509(f, occ_client_peer_cert(c)) == 1;
        if (f && fclose(f))
            ok = 0;
        if (!ok) {
            occ_cli_error("attest", "cannot write %s", save_cert);
            goto out;
        }
    }
    if (json) {
        char *s = occ_verdict_json(&v);
        cJSON *j = s ? cJSON_Parse(s) : NULL;
        free(s);
        if (!j) {
            occ_cli_error("attest", "out of memory");
            goto out;
        }
        cJSON_AddStringToObject(j, "url", url);
        cJSON_AddNumberToObject(j, "handshake_ms", c ? occ_client_handshake_ms(c) : 0);
        if (!st) {
            char pinned[80];
            snprintf(pinned, sizeof pinned, "sha256//%s", pin);
            cJSON_AddStringToObject(j, "pinnedpubkey", pinned);
            if (save_cert)
                cJSON_AddStringToObject(j, "saved_cert", save_cert);
        }
        char *out = cJSON_Print(j);
        cJSON_Delete(j);
        if (out)
            puts(out);
        free(out);
    } else {
        occ_verdict_print(&v, stdout);
        if (!st) {
            printf("server %s: accepted; TLS 1.3 handshake + verification %.1f ms\n", url, occ_client_handshake_ms(c));
            printf("pinnedpubkey sha256//%s\n", pin);
            if (save_cert)
                printf("certificate saved to %s (curl --cacert %s --pinnedpubkey sha256//%s ...)\n", save_cert,
                       save_cert, pin);
        } else {
            printf("server %s: REFUSED before anything was sent\n", url);
        }
    }
    rc = st ? 1 : 0;
out:
    occ_client_close(c);
    X509_free(root);
    return rc;
}

int occ_cmd_attest(int argc, char **argv)
{
    const char *quote = NULL, *cert = NULL, *coll_path = NULL, *root_path = NULL, *policy_path = NULL;
    const char *emu_dir = NULL, *make_quote = NULL, *make_cert = NULL, *rd_hex = NULL, *model_hex = NULL;
    const char *url = NULL, *save_cert = NULL, *model = NULL;
    char *bind[MAX_BIND];
    size_t n_bind = 0;
    int json = 0, insecure = 0;
    int64_t at = OCC_ATTEST_NOW;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        } else if (!strcmp(a, "--insecure")) {
            insecure = 1;
            continue;
        } else if (!strcmp(a, "--bind-model")) {
            if (i + 1 >= argc || n_bind >= MAX_BIND) {
                occ_cli_error("attest", "--bind-model needs NAME=HEX (at most %d)", MAX_BIND);
                return 2;
            }
            bind[n_bind++] = argv[++i];
            continue;
        } else if (!strcmp(a, "--model")) {
            slot = &model;
        } else if (!strcmp(a, "--quote")) {
            slot = &quote;
        } else if (!strcmp(a, "--cert")) {
            slot = &cert;
        } else if (!strcmp(a, "--collateral")) {
            slot = &coll_path;
        } else if (!strcmp(a, "--root")) {
            slot = &root_path;
        } else if (!strcmp(a, "--policy")) {
            slot = &policy_path;
        } else if (!strcmp(a, "--emu-dir")) {
            slot = &emu_dir;
        } else if (!strcmp(a, "--make-quote")) {
            slot = &make_quote;
        } else if (!strcmp(a, "--make-cert")) {
            slot = &make_cert;
        } else if (!strcmp(a, "--report-data")) {
            slot = &rd_hex;
        } else if (!strcmp(a, "--model-id")) {
            slot = &model_hex;
        } else if (!strcmp(a, "--save-cert")) {
            slot = &save_cert;
        } else if (!strcmp(a, "--at")) {
            if (i + 1 >= argc) {
                usage(stderr);
                return 2;
            }
            char *end = NULL;
            errno = 0;
            long long t = strtoll(argv[++i], &end, 10);
            if (errno || !end || *end || end == argv[i] || t < 0) {
                occ_cli_error("attest", "--at wants UNIX seconds, got '%s'", argv[i]);
                return 2;
            }
            at = t;
            continue;
        } else if (!strncmp(a, "https://", 8)) {
            url = a;
            continue;
        } else {
            occ_cli_error("attest", "unknown option '%s' (see occ attest --help)", a);
            return 2;
        }
        if (i + 1 >= argc) {
            occ_cli_error("attest", "%s needs a value", a);
            return 2;
        }
        *slot = argv[++i];
    }
    if (make_quote || make_cert) {
        if (!emu_dir || (make_quote && make_cert)) {
            occ_cli_error("attest", "--make-quote/--make-cert need --emu-dir DIR (and only one of them)");
            return 2;
        }
        return make_evidence(emu_dir, make_quote, make_cert, rd_hex, model_hex, bind, n_bind);
    }
    if (url) {
        char emu_root_url[4200];
        if (!root_path && emu_dir) {
            snprintf(emu_root_url, sizeof emu_root_url, "%s/root.pem", emu_dir);
            root_path = emu_root_url;
        }
        return attest_url(url, root_path, policy_path, save_cert, json, at, model, insecure);
    }
    if (!!quote + !!cert != 1) {
        occ_cli_error("attest", "give exactly one of --quote FILE or --cert FILE (see occ attest --help)");
        return 2;
    }
    char emu_root[4200];
    if (!root_path && emu_dir) {
        snprintf(emu_root, sizeof emu_root, "%s/root.pem", emu_dir);
        root_path = emu_root;
    }
    if (!root_path) {
        occ_cli_error("attest", "--root FILE is required (the Intel SGX Root CA, or an emulated root)");
        return 2;
    }
    occ_error e = {0};
    X509 *root = NULL, *x = NULL;
    occ_attest_collateral *coll = NULL;
    occ_attest_policy policy;
    uint8_t *qbuf = NULL;
    size_t qn = 0;
    int rc = 2;
    occ_attest_policy_default(&policy);
    if (occ_attest_root_load(root_path, &root, &e) || (coll_path && occ_attest_collateral_load(coll_path, &coll, &e)) ||
        (policy_path && occ_attest_policy_load(policy_path, &policy, &e)) ||
        (quote && occ_attest_read_file(quote, 1u << 20, &qbuf, &qn, &e))) {
        occ_cli_error("attest", "%s", e.msg);
        goto out;
    }
    if (!pins_ok(&policy, policy_path, insecure))
        goto out;
    if (model) {
        if (!cert || strlen(model) >= sizeof policy.use_model) {
            occ_cli_error("attest", "--model NAME goes with --cert or https:// (a quote carries no model names)");
            goto out;
        }
        snprintf(policy.use_model, sizeof policy.use_model, "%s", model);
    }
    if (cert && !(x = load_cert_file(cert, &e))) {
        occ_cli_error("attest", "%s", e.msg);
        goto out;
    }
    occ_attest_verdict v;
    occ_status st = quote ? occ_attest_verify_quote(qbuf, qn, coll, root, &policy, at, &v, &e)
                          : occ_ratls_verify_cert(x, &policy, root, coll, at, &v, &e);
    if (st != OCC_OK && st != OCC_ERR_ATTEST && st != OCC_ERR_FORMAT && st != OCC_ERR_UNSUPPORTED) {
        occ_cli_error("attest", "%s", e.msg);
        goto out;
    }
    if (json) {
        char *s = occ_verdict_json(&v);
        if (!s) {
            occ_cli_error("attest", "out of memory");
            goto out;
        }
        puts(s);
        free(s);
    } else {
        occ_verdict_print(&v, stdout);
    }
    rc = v.accepted ? 0 : 1;
out:
    X509_free(root);
    X509_free(x);
    occ_attest_collateral_free(coll);
    free(qbuf);
    return rc;
}
