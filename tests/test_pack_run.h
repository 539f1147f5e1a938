/* Packer tests that import what they build and run it (test_pack_import.c,
 * test_pack_typed.c, test_zerosize.c, test_seq_gconv.c): the graph b packed
 * and imported, and the weights read from memory. */
#ifndef OCC_TEST_PACK_RUN_H
#define OCC_TEST_PACK_RUN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "occ/packer.h"
#include "occ/status.h"
#include "test_pack_onnx.h"

/* Packs b into ONNX bytes and imports them with options o (NULL: defaults). */
static inline occ_status tb_import(tb *b, const occ_pack_options *o, occ_import **im, occ_error *e)
{
    uint8_t *buf;
    size_t size;
    tb_pack(b, &buf, &size);
    memset(e, 0, sizeof *e);
    *im = NULL;
    occ_status s = occ_import_onnx(buf, size, o, im, e);
    free(buf);
    return s;
}

/* An engine's read function over weights in memory. */
typedef struct tb_mem {
    const uint8_t *data;
    uint64_t size;
} tb_mem;

static inline occ_status tb_mem_read(void *ctx, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    const tb_mem *r = ctx;
    if (off > r->size || size > r->size - off)
        return occ_fail(e, OCC_ERR_IO, "read outside the data");
    memcpy(dst, r->data + off, size);
    return OCC_OK;
}

#endif
