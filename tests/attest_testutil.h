/* Helpers shared by the attestation tests: locating ../shared/testdata. */
#ifndef OCC_ATTEST_TESTUTIL_H
#define OCC_ATTEST_TESTUTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/attest.h"

static char occ_td_buf[4096];

/* Path of a file under shared/testdata/dcap/. */
static const char *td(const char *rel)
{
    const char *shared = getenv("OCC_SHARED");
    char alt[2048];
    if (!shared || !*shared) {
        const char *src = getenv("OCC_SRC");
        snprintf(alt, sizeof alt, "%s/../shared", src && *src ? src : "..");
        shared = alt;
    }
    snprintf(occ_td_buf, sizeof occ_td_buf, "%s/testdata/dcap/%s", shared, rel);
    return occ_td_buf;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *b = NULL;
    occ_error e = {0};
    if (occ_attest_read_file(path, 1u << 22, &b, n, &e)) {
        fprintf(stderr, "cannot read %s: %s\n", path, e.msg);
        return NULL;
    }
    return b;
}

static void dump_verdict(const occ_attest_verdict *v)
{
    if (getenv("OCC_TEST_VERBOSE"))
        occ_verdict_print(v, stderr);
}
#endif
