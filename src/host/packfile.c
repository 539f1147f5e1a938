/* Reading a .occ pack (host side, untrusted): the host checks only what it
 * needs to move bytes safely (header fields against the file size); the
 * trusted side decodes the manifest and verifies every chunk it uses. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "occ/pack.h"

struct occ_packfile {
    int fd;
    uint64_t file_size;
    uint64_t data_offset, data_size;
    uint8_t *manifest;
    size_t manifest_size;
};

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static occ_status pread_all(int fd, void *dst, uint64_t size, uint64_t off, occ_error *e)
{
    uint8_t *d = dst;
    while (size) {
        size_t want = size > (1u << 30) ? (1u << 30) : (size_t)size;
        ssize_t n = pread(fd, d, want, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return occ_fail(e, OCC_ERR_IO, "read failed: %s", strerror(errno));
        }
        if (n == 0)
            return occ_fail(e, OCC_ERR_FORMAT, "pack is truncated");
        d += n;
        off += (uint64_t)n;
        size -= (uint64_t)n;
    }
    return OCC_OK;
}

occ_status occ_packfile_open(const char *path, occ_packfile **out, occ_error *e)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return occ_fail(e, OCC_ERR_IO, "%s is not a regular file", path);
    }
    occ_packfile *p = calloc(1, sizeof *p);
    if (!p) {
        close(fd);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    p->fd = fd;
    p->file_size = (uint64_t)st.st_size;

    uint8_t h[64];
    occ_status s = OCC_OK;
    if (p->file_size < OCC_PACK_HEADER_SIZE) {
        s = occ_fail(e, OCC_ERR_FORMAT, "%s is not an .occ pack (too short)", path);
        goto fail;
    }
    s = pread_all(fd, h, sizeof h, 0, e);
    if (s)
        goto fail;
    if (memcmp(h, OCC_PACK_MAGIC, 8)) {
        s = occ_fail(e, OCC_ERR_FORMAT, "%s is not an .occ pack (bad magic)", path);
        goto fail;
    }
    if (get_u32(h + 8) != OCC_PACK_VERSION) {
        s = occ_fail(e, OCC_ERR_UNSUPPORTED, "%s: pack version %u is not supported (this build reads %u)", path,
                     get_u32(h + 8), OCC_PACK_VERSION);
        goto fail;
    }
    uint64_t man_off = get_u64(h + 16), man_size = get_u64(h + 24);
    p->data_offset = get_u64(h + 32);
    p->data_size = get_u64(h + 40);
    if (man_off < OCC_PACK_HEADER_SIZE || man_size == 0 || man_size > OCC_PACK_MAX_MANIFEST_SIZE ||
        man_off > p->file_size || man_size > p->file_size - man_off || p->data_offset % OCC_PAGE_SIZE ||
        p->data_offset < man_off + man_size || p->data_offset > p->file_size ||
        p->data_size > p->file_size - p->data_offset) {
        s = occ_fail(e, OCC_ERR_FORMAT, "%s: pack header is inconsistent with the file (truncated or corrupt)", path);
        goto fail;
    }
    p->manifest = malloc((size_t)man_size);
    if (!p->manifest) {
        s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    p->manifest_size = (size_t)man_size;
    s = pread_all(fd, p->manifest, man_size, man_off, e);
    if (s)
        goto fail;
    *out = p;
    return OCC_OK;
fail:
    occ_packfile_close(p);
    return s;
}

const uint8_t *occ_packfile_manifest(const occ_packfile *p, size_t *size)
{
    *size = p->manifest_size;
    return p->manifest;
}

uint64_t occ_packfile_data_size(const occ_packfile *p) { return p->data_size; }

occ_status occ_packfile_read(occ_packfile *p, uint64_t offset, void *dst, uint64_t size, occ_error *e)
{
    if (offset > p->data_size || size > p->data_size - offset)
        return occ_fail(e, OCC_ERR_FORMAT, "read of [%llu, +%llu) is outside the pack's data section",
                        (unsigned long long)offset, (unsigned long long)size);
    return pread_all(p->fd, dst, size, p->data_offset + offset, e);
}

void occ_packfile_close(occ_packfile *p)
{
    if (!p)
        return;
    if (p->fd >= 0)
        close(p->fd);
    free(p->manifest);
    free(p);
}
