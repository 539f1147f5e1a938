/* Quote providers: where an enclave gets its quote from.
 *
 * - emulated quoting (src/sgxemu/emu_quote.c): a local root CA -> PCK-like
 *   certificate -> attestation key, kept in an operator-chosen folder; quotes
 *   in the SGX v3 byte format. NOT hardware-backed.
 * - Gramine (src/host/gramine_quote.c): /dev/attestation/{user_report_data,quote}.
 *
 * Quotes are returned in a malloc'd buffer the caller frees with free(). */
#ifndef OCC_QUOTE_H
#define OCC_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A quote provider: makes a quote whose REPORTDATA is report_data. */
typedef occ_status (*occ_quote_provider_fn)(void *ctx, const uint8_t report_data[64], uint8_t **quote,
                                            size_t *quote_size, occ_error *e);

/* ---- Gramine ---- */
#define OCC_GRAMINE_ATTEST_DIR "/dev/attestation"
/* base NULL means OCC_GRAMINE_ATTEST_DIR. Writes report_data to
 * base/user_report_data, reads base/quote. */
occ_status occ_gramine_quote(const char *base, const uint8_t report_data[64], uint8_t **quote,
                             size_t *quote_size, occ_error *e) OCC_MUST_CHECK;
/* Provider adapter: ctx is the base path (const char *) or NULL. */
occ_status occ_gramine_quote_provider(void *ctx, const uint8_t report_data[64], uint8_t **quote,
                                      size_t *quote_size, occ_error *e);

/* ---- emulated quoting ---- */
typedef struct occ_emu_quoter occ_emu_quoter;

/* The identity an emulated enclave reports. */
typedef struct occ_emu_identity {
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint64_t flags; /* ATTRIBUTES.flags, default INIT|MODE64BIT (0x5) */
    uint64_t xfrm;  /* default 0x7 */
} occ_emu_identity;

/* Opens (creating on first use, mode 0700) the emulated quoting folder:
 * DIR/root.pem (the root a verifier must be given explicitly), DIR/root.key,
 * DIR/pck.pem, DIR/pck.key, DIR/ak.key. Refuses a folder that group/others
 * can access. */
occ_status occ_emu_quote_open(const char *dir, occ_emu_quoter **out, occ_error *e) OCC_MUST_CHECK;
void occ_emu_quote_close(occ_emu_quoter *q);
/* Path of DIR/root.pem (owned by q). */
const char *occ_emu_quote_root_path(const occ_emu_quoter *q);

/* Default emulated identity: MRENCLAVE = occ_emu_mrenclave() (SHA-256 of the
 * running binary), MRSIGNER = SHA-256 of the emulated root's DER public key
 * (SubjectPublicKeyInfo), prod id 0, svn 0, flags INIT|MODE64BIT. */
occ_status occ_emu_identity_default(const occ_emu_quoter *q, occ_emu_identity *id, occ_error *e) OCC_MUST_CHECK;

/* Makes a v3 quote for `id` with the given REPORTDATA. */
occ_status occ_emu_quote_make(occ_emu_quoter *q, const occ_emu_identity *id, const uint8_t report_data[64],
                              uint8_t **quote, size_t *quote_size, occ_error *e) OCC_MUST_CHECK;

/* Emulated EGETKEY for sealing (ctx: an occ_emu_provider): a 32-byte key
 * that only this identity (MRENCLAVE, MRSIGNER) under this emulated
 * platform (the quoting folder's secret) derives. */
occ_status occ_emu_seal_key(void *ctx, uint8_t out[32], occ_error *e) OCC_MUST_CHECK;

/* Provider adapter: ctx is an occ_emu_provider. */
typedef struct occ_emu_provider {
    occ_emu_quoter *quoter;
    occ_emu_identity identity;
} occ_emu_provider;
occ_status occ_emu_quote_provider(void *ctx, const uint8_t report_data[64], uint8_t **quote,
                                  size_t *quote_size, occ_error *e);

/* MRENCLAVE in emulation: SHA-256 of the bytes of the running executable
 * (/proc/self/exe). Reproducible: same build -> same value; `sha256sum occ`
 * prints it. */
occ_status occ_emu_mrenclave(uint8_t out[32], occ_error *e) OCC_MUST_CHECK;
/* SHA-256 of a file's bytes. */
occ_status occ_emu_hash_file(const char *path, uint8_t out[32], occ_error *e) OCC_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
