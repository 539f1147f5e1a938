/* libFuzzer target: the host-side pack reader plus the manifest decoder, on
 * a file made of arbitrary bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "occ/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/occ-fuzz-pack-%d.occ", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    occ_packfile *p = NULL;
    occ_error e;
    if (occ_packfile_open(path, &p, &e) == OCC_OK) {
        size_t msize;
        const uint8_t *man = occ_packfile_manifest(p, &msize);
        occ_model *m = NULL;
        if (occ_manifest_decode(man, msize, &m, &e) == OCC_OK) {
            uint8_t buf[4096];
            for (uint32_t i = 0; i < m->n_chunks && i < 4; i++) {
                uint64_t n = m->chunks[i].size < sizeof buf ? m->chunks[i].size : sizeof buf;
                (void)occ_packfile_read(p, m->chunks[i].offset, buf, n, &e);
            }
            occ_model_free(m);
        }
        occ_packfile_close(p);
    }
    return 0;
}
