/* occ_pack_onnx: file in, pack out. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "occ/packer.h"

occ_status occ_pack_onnx(const char *onnx_path, const char *out_path, const occ_pack_options *opts,
                         occ_pack_stats *stats, occ_error *e)
{
    if (!onnx_path || !out_path)
        return occ_fail(e, OCC_ERR_INVALID, "missing input or output path");
    int fd = open(onnx_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot open '%s': %s", onnx_path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return occ_fail(e, OCC_ERR_IO, "cannot stat '%s': %s", onnx_path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return occ_fail(e, OCC_ERR_IO, "'%s' is not a regular file", onnx_path);
    }
    if (st.st_size == 0) {
        close(fd);
        return occ_fail(e, OCC_ERR_FORMAT, "'%s' is empty", onnx_path);
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return occ_fail(e, OCC_ERR_IO, "cannot map '%s': %s", onnx_path, strerror(errno));
    madvise(map, size, MADV_SEQUENTIAL);

    occ_import *im = NULL;
    occ_status s = occ_import_onnx(map, size, opts, &im, e);
    munmap(map, size); /* the decoded proto holds its own copy */
    if (s)
        return occ_error_prefix(e, "%s", onnx_path);

    uint8_t *data = NULL;
    s = occ_import_layout(im, opts ? opts->chunk_size : 0, &data, e);
    if (!s) {
        occ_model *m = occ_import_model(im);
        if (opts && opts->encrypt_key)
            s = occ_pack_encrypt(m, data, opts->encrypt_key, e);
        if (!s)
            s = occ_pack_write(out_path, m, data,
                               opts ? opts->progress : NULL, opts ? opts->progress_ctx : NULL, e);
        if (!s && stats) {
            *stats = *occ_import_stats(im);
            memcpy(stats->model_id, m->model_id, sizeof stats->model_id);
            struct stat os;
            stats->file_size = stat(out_path, &os) == 0 ? (uint64_t)os.st_size : 0;
        }
    }
    free(data);
    occ_import_free(im);
    return s;
}

occ_status occ_parse_input_shape(char *s, occ_input_shape *out, occ_error *e)
{
    memset(out, 0, sizeof *out);
    char *eq = s ? strrchr(s, '=') : NULL;
    if (!eq || eq == s)
        return occ_fail(e, OCC_ERR_INVALID, "--input-shape wants NAME=d0,d1,... (got '%s')",
                        s ? s : "");
    const char *p = eq + 1;
    int32_t n = 0;
    while (*p) {
        if (n == OCC_MAX_DIMS)
            return occ_fail(e, OCC_ERR_INVALID, "--input-shape: more than %d dims", OCC_MAX_DIMS);
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > (1ll << 31))
            return occ_fail(e, OCC_ERR_INVALID, "--input-shape: bad dim in '%s'", s);
        out->dims[n++] = v;
        p = end;
        if (*p == ',' || *p == 'x')
            p++;
        else if (*p)
            return occ_fail(e, OCC_ERR_INVALID, "--input-shape: bad dim in '%s'", s);
    }
    if (n == 0)
        return occ_fail(e, OCC_ERR_INVALID, "--input-shape: no dims in '%s'", s);
    out->ndim = n;
    *eq = '\0';
    out->name = s;
    return OCC_OK;
}
