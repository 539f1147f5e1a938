#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/engine_internal.h"

int occ_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "occ %s: error: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static void usage(FILE *f)
{
    fputs("usage: occ <command> [options]\n"
          "\n"
          "Occlumency: confidential CNN inference in an (emulated) SGX enclave.\n"
          "\n"
          "commands:\n"
          "  pack      convert an ONNX model into a .occ pack\n"
          "  inspect   show a pack's model id, inputs, outputs and layers\n"
          "  run       run inference on a tensor file or an image\n"
          "  bench     native vs baseline vs occlumency in the emulated enclave, per model\n"
#ifdef OCC_HAVE_ATTEST
          "  attest    verify an SGX quote, an RA-TLS certificate or a server against a policy\n"
          "  serve     serve models over HTTPS (KServe v2) from an (emulated) enclave\n"
          "  infer     attested inference against an occ serve server\n"
          "  keys      occ keys serve: the model owner's key broker for encrypted packs\n"
#endif
          "\n"
          "Run `occ <command> --help` for the options of a command.\n",
          f);
}

/* OpenMP's spin-waiting, chosen here rather than left to the operator's
 * environment (docs/streaming.md, "Pipelining and threads"). libgomp reads
 * OMP_WAIT_POLICY and GOMP_SPINCOUNT once, in its constructor, before main:
 * a setenv here is too late for this process, so a command that runs an
 * engine re-executes itself once with GOMP_SPINCOUNT set. libgomp's default
 * (300,000 pauses, ~8.4 ms at the 28 ns a pause takes on this AMD EPYC)
 * keeps an idle team member spinning through a whole streamed fully
 * connected layer, taking a core from the threads that copy and
 * authenticate its weights, and on a shared machine from threads with work.
 * 1,000 pauses (~28 us) spins through the gap between two primitives and
 * sleeps soon otherwise; it measured as well as passive waiting and better
 * than 10,000 (docs/benchmarks.md, "All cores"). The operator's own
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept as is, and OCC_OMP_ENV=keep
 * turns the re-execution off. */
#define OCC_GOMP_SPINCOUNT "1000"

static void omp_env(const char *cmd, char **argv)
{
    if (strcmp(cmd, "run") && strcmp(cmd, "bench") && strcmp(cmd, "serve"))
        return;
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("OCC_OMP_ENV"))
        return;
    /* OCC_OMP_ENV marks the second execution: never more than one */
    if (setenv("GOMP_SPINCOUNT", OCC_GOMP_SPINCOUNT, 1) || setenv("OCC_OMP_ENV", "set", 1))
        return;
    execv("/proc/self/exe", argv);
    /* no /proc (or exec refused): run on with libgomp's defaults */
    unsetenv("GOMP_SPINCOUNT");
}

int main(int argc, char **argv)
{
    if (argc >= 2)
        omp_env(argv[1], argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* OCC_FUSED_FC=0: streamed Gemms through the ring, to compare (docs/streaming.md) */
    const char *ff = getenv("OCC_FUSED_FC");
    if (ff && ff[0] == '0')
        occ_engine_fuse_fc = 0;
    /* OCC_LOADER_IDLE=0: loader threads in the normal class, to compare */
    const char *li = getenv("OCC_LOADER_IDLE");
    if (li)
        occ_engine_loader_idle = li[0] == '1';
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "pack"))
        return occ_cmd_pack(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect"))
        return occ_cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return occ_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return occ_cmd_bench(argc - 1, argv + 1);
#ifdef OCC_HAVE_ATTEST
    if (!strcmp(cmd, "attest"))
        return occ_cmd_attest(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return occ_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "infer"))
        return occ_cmd_infer(argc - 1, argv + 1);
    if (!strcmp(cmd, "keys"))
        return occ_cmd_keys(argc - 1, argv + 1);
#endif
    fprintf(stderr, "occ: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
