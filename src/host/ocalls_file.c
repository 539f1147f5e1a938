/* File-backed ocalls (untrusted side of `occ run` / `occ bench`). */
#include <time.h>

#include "host/ocalls_file.h"
#include "occ/fault.h"

static occ_status files_read_chunk(void *host, uint32_t pack_id, uint64_t offset, void *dst,
                                   uint64_t size, occ_error *e)
{
    occ_host_files *f = host;
    if (pack_id >= f->n_packs || !f->packs[pack_id])
        return occ_fail(e, OCC_ERR_INVALID, "read_chunk: no pack %u", pack_id);
    occ_status st = occ_fault_read(&size, e); /* test-only: short read or error */
    return st ? st : occ_packfile_read(f->packs[pack_id], offset, dst, size, e);
}

static occ_status files_send(void *host, uint64_t conn, const void *buf, size_t size, occ_error *e)
{
    return occ_fail(e, OCC_ERR_UNSUPPORTED, "send: this host has no connections (conn %llu)",
                    (unsigned long long)conn);
}

static void files_close(void *host, uint64_t conn)
{
}

static uint64_t files_now_ns(void *host)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void occ_host_files_ocalls(occ_host_files *files, occ_ocalls *out)
{
    out->host = files;
    out->read_chunk = files_read_chunk;
    out->send = files_send;
    out->close = files_close;
    out->now_ns = files_now_ns;
}
