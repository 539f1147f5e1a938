#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/common.h"

occ_status occ_cli_open_model(const char *path, occ_packfile **pf, occ_model **m, occ_error *e)
{
    *pf = NULL;
    *m = NULL;
    occ_status s = occ_packfile_open(path, pf, e);
    if (s)
        return s;
    size_t size;
    const uint8_t *man = occ_packfile_manifest(*pf, &size);
    s = occ_manifest_decode(man, size, m, e);
    if (!s && (*m)->data_size != occ_packfile_data_size(*pf))
        s = occ_fail(e, OCC_ERR_FORMAT, "manifest data size does not match the pack header");
    if (s) {
        occ_error_prefix(e, "%s", path);
        occ_model_free(*m);
        occ_packfile_close(*pf);
        *m = NULL;
        *pf = NULL;
    }
    return s;
}

occ_status occ_cli_read_exact(const char *path, void *dst, size_t size, const char *what, occ_error *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return occ_fail(e, OCC_ERR_IO, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size != size) {
        fclose(f);
        return occ_fail(e, OCC_ERR_SHAPE, "%s has %lld bytes but %s needs %zu bytes", path,
                        (long long)st.st_size, what, size);
    }
    size_t n = size ? fread(dst, 1, size, f) : 0;
    fclose(f);
    if (n != size)
        return occ_fail(e, OCC_ERR_IO, "cannot read %s", path);
    return OCC_OK;
}

occ_status occ_cli_write_file(const char *path, const void *src, size_t size, occ_error *e)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    size_t n = size ? fwrite(src, 1, size, f) : 0;
    if (fclose(f) || n != size)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return OCC_OK;
}

void occ_cli_print_json(cJSON *root)
{
    char *s = cJSON_Print(root);
    if (s) {
        puts(s);
        free(s);
    }
}

void occ_cli_shape(const occ_tensor *t, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, d ? ",%" PRId64 : "%" PRId64, t->dims[d]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

double occ_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int occ_cli_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int occ_cli_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
