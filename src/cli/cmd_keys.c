/* occ keys serve: the model owner's key broker (docs/keys.md). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "cli/cli.h"
#include "occ/attest.h"
#include "occ/keys.h"

static void usage(FILE *f)
{
    fputs("usage: occ keys serve --listen ADDR:PORT --key-dir DIR --policy P.json --root ROOT [options]\n"
          "\n"
          "The model owner's key broker. It gives DIR/<model id hex>.key (32 raw bytes, as made by\n"
          "occ pack --encrypt-key) only to an enclave whose RA-TLS certificate, presented as its TLS\n"
          "client certificate, the policy accepts and which binds that model id; the policy's \"models\",\n"
          "if any, must also bind it. A refused client gets `403 {\"error\":\"refused\"}`; the reason is\n"
          "logged here, one line per request (stderr).\n"
          "\n"
          "  --listen ADDR:PORT   port 0: any free port (printed)\n"
          "  --key-dir DIR        the model keys\n"
          "  --policy P.json      the policy clients use (docs/attestation.md); must pin the enclave\n"
          "                       (mrenclave, or mrsigner with isv_prod_id)\n"
          "  --root ROOT          the attestation root (Intel's; or DIR/root.pem of emulated quoting)\n"
          "  --collateral C.json  DCAP collateral for the TCB evaluation (real SGX)\n"
          "  --cert FILE --key FILE  the broker's TLS certificate and key (PEM); default: a fresh\n"
          "                       self-signed P-256 certificate\n"
          "  --cert-out FILE      write the broker's certificate (PEM): occ serve --key-server-ca FILE\n"
          "  -h, --help           this text\n"
          "\n"
          "Stops on SIGINT/SIGTERM and prints how many keys it released and refused.\n",
          f);
}

static occ_broker *g_broker;

static void on_signal(int sig)
{
    (void)sig;
    if (g_broker)
        occ_broker_stop(g_broker);
}

static int self_signed(EVP_PKEY **key, X509 **cert)
{
    *key = EVP_EC_gen("P-256");
    *cert = X509_new();
    if (!*key || !*cert)
        return -1;
    X509_set_version(*cert, 2);
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1)
        return -1;
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    if (!ai || X509_set_serialNumber(*cert, ai) != 1) {
        ASN1_INTEGER_free(ai);
        return -1;
    }
    ASN1_INTEGER_free(ai);
    X509_gmtime_adj(X509_getm_notBefore(*cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(*cert), 366L * 86400);
    X509_NAME *n = X509_get_subject_name(*cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"occ-keys broker", -1, -1, 0);
    X509_set_issuer_name(*cert, n);
    if (X509_set_pubkey(*cert, *key) != 1 || X509_sign(*cert, *key, EVP_sha256()) <= 0)
        return -1;
    return 0;
}

static int load_pem(const char *cert_path, const char *key_path, X509 **cert, EVP_PKEY **key)
{
    FILE *f = fopen(cert_path, "r");
    if (!f)
        return occ_cli_error("keys", "--cert %s: %s", cert_path, strerror(errno));
    *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!*cert)
        return occ_cli_error("keys", "--cert %s: not a PEM certificate", cert_path);
    f = fopen(key_path, "r");
    if (!f)
        return occ_cli_error("keys", "--key %s: %s", key_path, strerror(errno));
    *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!*key)
        return occ_cli_error("keys", "--key %s: not a PEM private key", key_path);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *listen = NULL, *key_dir = NULL, *policy_path = NULL, *root_path = NULL, *coll_path = NULL,
               *cert_path = NULL, *key_path = NULL, *cert_out = NULL;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = !strcmp(a, "--listen")       ? &listen
                            : !strcmp(a, "--key-dir")    ? &key_dir
                            : !strcmp(a, "--policy")     ? &policy_path
                            : !strcmp(a, "--root")       ? &root_path
                            : !strcmp(a, "--collateral") ? &coll_path
                            : !strcmp(a, "--cert")       ? &cert_path
                            : !strcmp(a, "--key")        ? &key_path
                            : !strcmp(a, "--cert-out")   ? &cert_out
                                                         : NULL;
        if (!slot) {
            usage(stderr);
            return occ_cli_error("keys", "unknown option '%s'", a) + 1;
        }
        if (!v)
            return occ_cli_error("keys", "%s needs a value (see --help)", a) + 1;
        *slot = v;
    }
    if (!listen || !key_dir || !policy_path || !root_path)
        return occ_cli_error("keys", "serve needs --listen, --key-dir, --policy and --root (see --help)") + 1;
    if (!cert_path != !key_path)
        return occ_cli_error("keys", "--cert and --key go together") + 1;
    occ_error e = {0};
    occ_attest_policy *pol = calloc(1, sizeof *pol);
    if (!pol)
        return occ_cli_error("keys", "out of memory");
    int rc = 2;
    X509 *root = NULL, *cert = NULL;
    EVP_PKEY *key = NULL;
    occ_attest_collateral *coll = NULL;
    occ_broker *b = NULL;
    if (occ_attest_policy_load(policy_path, pol, &e)) {
        occ_cli_error("keys", "--policy: %s", e.msg);
        goto done;
    }
    if (!pol->mrenclave_count && !(pol->mrsigner_count && pol->has_isv_prod_id)) {
        occ_cli_error("keys", "the policy pins no enclave: give \"mrenclave\", or \"mrsigner\" with \"isv_prod_id\" "
                              "(a broker must not give keys to any enclave the root vouches for)");
        goto done;
    }
    if (occ_attest_root_load(root_path, &root, &e)) {
        occ_cli_error("keys", "--root: %s", e.msg);
        goto done;
    }
    if (coll_path && occ_attest_collateral_load(coll_path, &coll, &e)) {
        occ_cli_error("keys", "--collateral: %s", e.msg);
        goto done;
    }
    if (cert_path) {
        if (load_pem(cert_path, key_path, &cert, &key))
            goto done;
    } else if (self_signed(&key, &cert)) {
        occ_cli_error("keys", "cannot make the broker's certificate");
        goto done;
    }
    if (cert_out) {
        FILE *f = fopen(cert_out, "w");
        if (!f || PEM_write_X509(f, cert) != 1 || fclose(f)) {
            occ_cli_error("keys", "cannot write %s", cert_out);
            goto done;
        }
    }
    occ_broker_config cfg = {listen, key_dir, pol, root, coll, cert, key, stderr};
    if (occ_broker_create(&cfg, &b, &e)) {
        occ_cli_error("keys", "%s", e.msg);
        goto done;
    }
    unsigned char md[32];
    unsigned mdl = 0;
    char fp[65];
    X509_digest(cert, EVP_sha256(), md, &mdl);
    occ_hex_encode(md, 32, fp);
    printf("occ keys: broker certificate sha256 %s%s%s\n", fp, cert_out ? " written to " : "", cert_out ? cert_out : "");
    printf("keys from %s/<model id>.key\n", key_dir);
    printf("listening https://%.*s:%u (port %u)\n", (int)(strrchr(listen, ':') - listen), listen, occ_broker_port(b),
           occ_broker_port(b));
    fflush(stdout);
    g_broker = b;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (occ_broker_run(b, &e)) {
        occ_cli_error("keys", "%s", e.msg);
        rc = 1;
        goto done;
    }
    uint64_t rel = 0, ref = 0;
    occ_broker_counts(b, &rel, &ref);
    fprintf(stderr, "occ keys: stopped; %llu released, %llu refused\n", (unsigned long long)rel,
            (unsigned long long)ref);
    rc = 0;
done:
    g_broker = NULL;
    occ_broker_free(b);
    occ_attest_collateral_free(coll);
    X509_free(root);
    X509_free(cert);
    EVP_PKEY_free(key);
    free(pol);
    return rc;
}

int occ_cmd_keys(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
