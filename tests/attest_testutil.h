/* Helpers shared by the attestation tests: locating testdata/dcap/ (the
 * vectors vendored in the repository, see testdata/PROVENANCE.md). */
#ifndef OCC_ATTEST_TESTUTIL_H
#define OCC_ATTEST_TESTUTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/attest.h"

static char occ_td_buf[4096];

/* Path of a file under testdata/dcap/ of the source tree (OCC_SRC, which
 * ctest sets; the parent folder when run by hand from build/<type>/). */
static const char *td(const char *rel)
{
    const char *src = getenv("OCC_SRC");
    snprintf(occ_td_buf, sizeof occ_td_buf, "%s/testdata/dcap/%s", src && *src ? src : "../..", rel);
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
