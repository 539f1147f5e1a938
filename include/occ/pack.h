/* The .occ pack container: a header page, the manifest, the data section.
 *
 *  offset 0    header (one page): magic "OCCPACK\0", u32 version (1),
 *              u32 reserved (0), u64 manifest_offset, u64 manifest_size,
 *              u64 data_offset, u64 data_size; the rest of the page is zero.
 *              All integers little-endian.
 *  manifest    at manifest_offset (= 4096), manifest_size bytes (see
 *              docs/pack-format.md and src/engine/manifest.c).
 *  data        at data_offset (page-aligned, after the manifest): the weight
 *              chunks in execution order (each node's weights start on a page, cut
 *              into chunks on output-row boundaries), already in the
 *              layout the kernels consume.
 *
 * Writing is host-side (src/pack). Reading the file is host-side too
 * (src/host/packfile.c): the host only moves bytes; the trusted side decodes
 * the manifest and verifies each chunk against its SHA-256. */
#ifndef OCC_PACK_H
#define OCC_PACK_H

#include <stdint.h>
#include <stdio.h>

#include "occ/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCC_PACK_MAGIC "OCCPACK"  /* 8 bytes with the NUL */
#define OCC_PACK_VERSION 2u /* 2: typed tensors (manifest version 2) */
#define OCC_PACK_HEADER_SIZE 4096u
#define OCC_PACK_DEFAULT_CHUNK_SIZE (1u << 20)
#define OCC_PACK_MAX_MANIFEST_SIZE (256u << 20)

/* ---- writing (src/pack/writer.c) ---- */

/* Assigns data_offset to every weight tensor (each node's weights contiguous,
 * starting on a page boundary, in node order) and builds m->chunks: each
 * node's region split into chunks of at most chunk_max bytes, cut on row
 * boundaries of the tensor's leading dimension where possible. Sets
 * m->data_size. m->chunks is allocated with malloc (caller frees). */
occ_status occ_pack_layout(occ_model *m, uint64_t chunk_max, occ_error *e) OCC_MUST_CHECK;

/* Encrypts every chunk of data (laid out by occ_pack_layout) in place with
 * AES-256-GCM under keys derived from key (32 bytes) and a fresh random pack
 * id, and records the scheme, pack id, key check and each chunk's tag in m
 * (occ/weights_crypt.h; docs/pack-format.md "Encrypted packs"). Call it
 * before occ_pack_write, which then hashes the ciphertext. On failure data
 * may be partly encrypted. */
occ_status occ_pack_encrypt(occ_model *m, uint8_t *data, const uint8_t key[32],
                            occ_error *e) OCC_MUST_CHECK;

/* Progress callback: done and total in bytes. */
typedef void (*occ_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Writes the pack: computes every chunk's SHA-256 over data (data_size bytes,
 * laid out by occ_pack_layout), encodes the manifest (which sets
 * m->model_id), and writes header, manifest and data to path. */
occ_status occ_pack_write(const char *path, occ_model *m, const uint8_t *data,
                          occ_progress_fn progress, void *progress_ctx,
                          occ_error *e) OCC_MUST_CHECK;

/* ---- reading (src/host/packfile.c, untrusted side) ---- */

typedef struct occ_packfile occ_packfile;

occ_status occ_packfile_open(const char *path, occ_packfile **out, occ_error *e) OCC_MUST_CHECK;
/* The raw, still untrusted manifest bytes. */
const uint8_t *occ_packfile_manifest(const occ_packfile *p, size_t *size);
uint64_t occ_packfile_data_size(const occ_packfile *p);
/* Copies [offset, offset+size) of the data section into dst. */
occ_status occ_packfile_read(occ_packfile *p, uint64_t offset, void *dst, uint64_t size,
                             occ_error *e) OCC_MUST_CHECK;
void occ_packfile_close(occ_packfile *p);

#ifdef __cplusplus
}
#endif
#endif
