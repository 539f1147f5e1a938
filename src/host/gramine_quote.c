/* Gramine quote provider: write REPORTDATA to <base>/user_report_data, read
 * the quote from <base>/quote. The base is /dev/attestation under
 * Gramine-SGX; tests point it at a fake folder. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "occ/quote.h"

#define MAX_QUOTE_SIZE (1u << 20)

static occ_status read_all(const char *path, uint8_t **out, size_t *size, occ_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 8192, n = 0;
    uint8_t *b = malloc(cap);
    if (!b) {
        close(fd);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_QUOTE_SIZE) {
                free(b);
                close(fd);
                return occ_fail(e, OCC_ERR_FORMAT, "%s: larger than %u bytes", path, MAX_QUOTE_SIZE);
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                close(fd);
                return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            free(b);
            close(fd);
            return occ_fail(e, OCC_ERR_IO, "cannot read %s: %s", path, strerror(err));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *out = b;
    *size = n;
    return OCC_OK;
}

occ_status occ_gramine_quote(const char *base, const uint8_t report_data[64], uint8_t **quote, size_t *quote_size,
                             occ_error *e)
{
    char path[4096];
    if (!report_data || !quote || !quote_size)
        return occ_fail(e, OCC_ERR_INVALID, "gramine quote: NULL argument");
    *quote = NULL;
    *quote_size = 0;
    if (!base)
        base = OCC_GRAMINE_ATTEST_DIR;
    /* attestation_type, when present, must be "dcap" */
    if ((size_t)snprintf(path, sizeof path, "%s/attestation_type", base) >= sizeof path)
        return occ_fail(e, OCC_ERR_INVALID, "gramine quote: base path too long");
    uint8_t *type = NULL;
    size_t tn = 0;
    if (access(path, F_OK) == 0) {
        occ_status st = read_all(path, &type, &tn, e);
        if (st)
            return st;
        while (tn && (type[tn - 1] == '\n' || type[tn - 1] == '\0'))
            tn--;
        int dcap = tn == 4 && !memcmp(type, "dcap", 4);
        free(type);
        if (!dcap)
            return occ_fail(e, OCC_ERR_UNSUPPORTED,
                            "gramine: attestation type is not \"dcap\" (set sgx.remote_attestation = \"dcap\")");
    }
    snprintf(path, sizeof path, "%s/user_report_data", base);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot open %s: %s (not running under Gramine-SGX with remote attestation?)",
                        path, strerror(errno));
    ssize_t w;
    do
        w = write(fd, report_data, 64);
    while (w < 0 && errno == EINTR);
    int werr = errno;
    close(fd);
    if (w != 64)
        return occ_fail(e, OCC_ERR_IO, "cannot write 64 bytes to %s: %s", path, w < 0 ? strerror(werr) : "short write");
    snprintf(path, sizeof path, "%s/quote", base);
    occ_status st = read_all(path, quote, quote_size, e);
    if (st)
        return st;
    if (*quote_size < 48) {
        free(*quote);
        *quote = NULL;
        *quote_size = 0;
        return occ_fail(e, OCC_ERR_FORMAT, "%s: too short to be a quote", path);
    }
    return OCC_OK;
}

occ_status occ_gramine_quote_provider(void *ctx, const uint8_t report_data[64], uint8_t **quote, size_t *quote_size,
                                      occ_error *e)
{
    return occ_gramine_quote((const char *)ctx, report_data, quote, quote_size, e);
}
