/* Test harness shared by the server tests: packs the bundled model, an
 * emulated quoting folder, and helpers to pull JSON fields. */
#ifndef OCC_TEST_SERVER_HARNESS_H
#define OCC_TEST_SERVER_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes a fresh 0700 temp folder; returns a static path. */
static const char *harness_tmpdir(void)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/occ-srv-XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    return dir;
}

/* Packs models/fmnist.onnx into DIR/fmnist.occ with the occ binary. */
static int harness_pack(const char *dir, char *out, size_t size)
{
    const char *bin = getenv("OCC_BIN"), *src = getenv("OCC_SRC");
    if (!bin || !src)
        return -1;
    snprintf(out, size, "%s/fmnist.occ", dir);
    char args[512] = {0};
    char p[1024];
    snprintf(p, sizeof p, "%s/models/fmnist.packargs", src);
    FILE *f = fopen(p, "r");
    if (!f || !fgets(args, sizeof args, f)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    args[strcspn(args, "\n")] = 0;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' pack '%s/models/fmnist.onnx' -o '%s' --labels '%s/models/fmnist.labels' %s --quiet",
             bin, src, out, src, args);
    return system(cmd) == 0 ? 0 : -1;
}

static void harness_rmrf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

#endif
