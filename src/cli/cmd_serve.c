/* occ serve: the confidential inference server (KServe v2 over RA-TLS).
 *
 * Wiring: host ocalls (src/host/ocalls_server.c) -> counted boundary
 * (occ/boundary_emu.h) -> enclave (src/enclave/server.c) -> its ecalls ->
 * counted boundary -> host loop (src/host/net.c). In `--enclave emu` the
 * engine's memory comes from the EPC emulator and quotes from the emulated
 * quoting folder (--emu-dir). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "engine/engine_internal.h"
#include "occ/attest.h"
#include "occ/boundary_emu.h"
#include "occ/engine.h"
#include "occ/epc.h"
#include "occ/net.h"
#include "occ/pack.h"
#include "occ/quote.h"
#include "occ/server.h"
#include "occ/weights_crypt.h"
#include "ops/ops.h"

#define MAX_MODELS 16

static occ_status pack_read(void *ctx, uint64_t offset, void *dst, uint64_t size, occ_error *e)
{
    return occ_packfile_read(ctx, offset, dst, size, e);
}

/* The host's plans must be the enclave's: the emulated enclave hands out
 * whole 4 KiB EPC pages (occ_epc_provider), and the engine plans each
 * allocation rounded up to its provider's granularity, so a host plan at
 * 64-byte rounding may fit a pool that the enclave then cannot load. */
static occ_status page_alloc(void *ctx, size_t size, void **out, occ_error *e)
{
    (void)ctx;
    if (posix_memalign(out, 64, size ? size : 64))
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory planning the pool");
    return OCC_OK;
}

static void page_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    free(p);
}

/* Weight bytes copied in and checked per image by one engine of a pool of
 * `engines` sharing `budget` (plan only, on the host: the plan is a function
 * of the public manifest and the budget; the engines' budget by the
 * enclave's own rule, occ_engine_pool_budget: resident weights counted
 * once) at the batch the enclave will run; UINT64_MAX when it does not fit
 * or cannot be planned here (an encrypted pack: its key is fetched by the
 * enclave). `page` plans with the emulated enclave's page granularity. */
static uint64_t stream_per_image(const occ_model *m, occ_packfile *pf, uint64_t budget,
                                 uint32_t engines, uint32_t batch, int page)
{
    if (m->weights_crypt != OCC_WCRYPT_NONE)
        return UINT64_MAX;
    static const occ_mem_provider paged = {NULL, page_alloc, page_free, 4096};
    occ_engine_opts o = {.threads = 1, .mode = OCC_MODE_OCCLUMENCY, .budget = budget, .batch = batch,
                         .mem = page ? &paged : NULL};
    occ_plan_summary s;
    uint64_t b = 0;
    occ_error e = {0};
    /* as the enclave decides (server.c): a model that streams nothing at
     * batch 1 runs one request at a time, and so does one whose batch does
     * not fit */
    uint64_t one = UINT64_MAX;
    if (batch > 1) {
        o.batch = 1;
        if (occ_engine_pool_budget(m, &o, pack_read, pf, engines, budget, &b, &s, &e) == OCC_OK)
            one = s.streamed;
        if (!one)
            return 0;
        o.batch = batch;
    }
    if (occ_engine_pool_budget(m, &o, pack_read, pf, engines, budget, &b, &s, &e) != OCC_OK)
        return one;
    return s.streamed / batch;
}

/* The default pool in occlumency mode (no --workers): E engines of
 * threads / E threads each, E a divisor of the threads. One single-threaded
 * engine per core runs whole requests with no per-layer barrier; an engine
 * of t > 1 threads splits every layer and waits at each layer's end for the
 * thread the host (the event loop, the clients) preempted. But the engines
 * share the model's budget, so more engines may stream more per image. Per
 * image, an engine pays its compute, times (1 + SPLIT_LOSS) when it splits
 * layers, plus its streamed bytes at the copy-and-check rate. Both are put
 * in streamed-byte equivalents through BYTES_PER_FLOP (one core's copy +
 * Poly1305 rate over its convolution rate), summed over the models, and the
 * cheapest pool wins (ties: more engines). A model whose weights are all
 * resident streams nothing at any E, so it gets one engine per core.
 * Measured here (docs/benchmarks.md, "Choosing the pool"): ResNet-50 at 93M
 * streams 10.5 MiB per image with one engine and 25 MB with two, and two
 * engines serve 0.90 of the native reference where one 2-thread engine
 * serves 0.80; a 2-thread engine's layers cost 1.15x (alone) to 1.47x (in
 * the server, 8 clients on the same cores) what they cost on one thread. */
#define SPLIT_LOSS 0.25
#define BYTES_PER_FLOP 0.05

static double model_flops(const occ_model *m)
{
    double f = 0;
    for (uint32_t i = 0; i < m->n_nodes; i++)
        f += (double)occ_op_flops(m, &m->nodes[i]);
    return f;
}

static uint32_t default_workers(occ_model **models, occ_packfile **packs, int n_models,
                                uint64_t budget, uint32_t threads, uint32_t batch, int page,
                                uint64_t *streamed, char *why, size_t why_size)
{
    size_t wn = 0;
    uint32_t best = 1;
    double best_cost = -1;
    uint64_t s_w[MAX_MODELS];
    for (int i = 0; i < n_models; i++)
        if (models[i]->weights_crypt != OCC_WCRYPT_NONE)
            return threads; /* not plannable here (its key is the enclave's): the split, as before */
    for (uint32_t w = threads < 64 ? threads : 64; w >= 1; w--) {
        if (threads % w)
            continue;
        double cost = 0;
        for (int i = 0; i < n_models && cost >= 0; i++) {
            uint64_t s = s_w[i] = stream_per_image(models[i], packs[i], budget, w, batch, page);
            if (s == UINT64_MAX)
                cost = -1; /* does not fit at this split */
            else
                cost += (double)s +
                        model_flops(models[i]) * BYTES_PER_FLOP * (threads / w > 1 ? 1 + SPLIT_LOSS : 1);
        }
        int k = snprintf(why + wn, why_size - wn, cost < 0 ? "%s%u: does not fit" : "%s%u: %.1f",
                         wn ? ", " : "", w, cost / 1e6);
        if (k > 0 && (size_t)k < why_size - wn)
            wn += (size_t)k;
        if (cost >= 0 && (best_cost < 0 || cost < best_cost)) {
            best = w;
            best_cost = cost;
            memcpy(streamed, s_w, (size_t)n_models * sizeof *s_w);
        }
    }
    return best;
}

static void usage(FILE *f)
{
    fputs("usage: occ serve --model [NAME=]FILE.occ [--model ...] --listen ADDR:PORT [options]\n"
          "\n"
          "Serves the models over HTTPS (KServe v2 / Open Inference Protocol) from an enclave: TLS 1.3\n"
          "terminates inside it with an RA-TLS certificate whose quote binds the TLS key and the model\n"
          "id(s). Clients verify it with `occ attest` / `occ infer` (or pin it, see docs/server.md).\n"
          "\n"
          "  --model [NAME=]FILE    a pack; NAME defaults to the pack's model name (repeatable)\n"
          "  --listen ADDR:PORT     e.g. 127.0.0.1:8443 (port 0: any free port, printed)\n"
          "  --enclave emu|gramine  emu (default): emulated enclave, EPC emulator, emulated quotes;\n"
          "                         gramine: quotes from /dev/attestation (run under gramine-sgx)\n"
          "  --emu-dir DIR          emulated quoting folder (DIR/root.pem is made on first use; give\n"
          "                         it to clients with --root); required with --enclave emu\n"
          "  --epc SIZE             emulated EPC (resident cap; default 93M)\n"
          "  --cost-model M         sgx1 (default), sgx2 or none\n"
          "  --budget SIZE          enclave memory budget of each model, split evenly among its engines\n"
          "                         (implies --mode occlumency; default 93M in that mode)\n"
          "  --mode M               native (default without --budget), baseline or occlumency\n"
          "  --threads N            compute threads in all (default: all cores)\n"
          "  --workers N            enclave workers, each with its own engine of every model, running\n"
          "                         requests side by side with threads/workers threads each (at least 1;\n"
          "                         default: --threads, i.e. one single-threaded engine per core; in\n"
          "                         occlumency mode fewer, with more threads each, when a share of the\n"
          "                         budget would make a model stream more than 1 MiB more per image)\n"
          "  --max-batch N          up to N queued requests per engine run (default 4); in occlumency\n"
          "                         mode only for models that stream weights (one pass serves them all)\n"
          "  --batch-wait-us US     wait this long for a batch to fill (default 0: take what is queued)\n"
          "  --batch-fill-us US     while requests are partly received, wait up to this long for them\n"
          "                         to join the batch (default 20000; 0: never)\n"
          "  --max-body SIZE        largest request body (default 64M); an inference's body is also\n"
          "                         limited to what its model's inputs need\n"
          "  --request-memory SIZE  enclave memory for request bodies, tensors and JSON beyond 64K per\n"
          "                         connection, shared by all (default 64M); beyond it: 503\n"
          "  --max-connections N    open connections (default 256; more are refused at accept)\n"
          "  --request-timeout MS   a handshake or a started request must complete in time (default 30000)\n"
          "  --idle-timeout MS      close connections idle this long (default 60000)\n"
          "  --metrics ADDR:PORT    plaintext Prometheus endpoint (GET /metrics; aggregates only)\n"
          "  --san NAME             extra subjectAltName (DNS name or IP) in the certificate, for plain\n"
          "                         clients that pin it (the listen host and localhost are always in)\n"
          "  --key-server HOST:PORT the model owner's key broker (occ keys serve): the enclave fetches the\n"
          "                         key of every encrypted pack over TLS with its RA-TLS certificate\n"
          "                         before it serves, and does not start without them (docs/keys.md)\n"
          "  --key-server-ca FILE   the broker's certificate (PEM) the enclave pins; without it any broker\n"
          "                         is accepted and a key is trusted only through the pack's key check\n"
          "  --seal-keys            seal the keys received to this enclave (emulated sealing key under\n"
          "                         --emu-dir, blobs in DIR/sealed/): a restart needs no broker\n"
          "  --record-boundary FILE test only: record every byte crossing the boundary\n"
          "  -h, --help             this text\n"
          "\n"
          "Stops cleanly on SIGINT/SIGTERM and prints its counters. Exits 3 when the enclave is lost\n"
          "(an evicted EPC page failed authentication on reload: the host changed enclave memory).\n",
          f);
}

static occ_net *g_net;
static volatile sig_atomic_t g_lost;

static void on_signal(int sig)
{
    (void)sig;
    if (g_net)
        occ_net_stop(g_net);
}

/* The EPC emulator lost the enclave (a reload failed authentication): the
 * boundary already refuses everything; stop serving and exit. */
static void on_lost(void *ctx)
{
    (void)ctx;
    g_lost = 1;
    if (g_net)
        occ_net_stop(g_net);
}

typedef struct metrics_ctx {
    occ_epc *epc;
    occ_boundary *bo, *be;
} metrics_ctx;

static size_t metrics_extra(void *p, char *buf, size_t cap)
{
    metrics_ctx *m = p;
    occ_boundary_stats a = {0}, b = {0};
    if (m->bo)
        occ_boundary_get_stats(m->bo, &a);
    if (m->be)
        occ_boundary_get_stats(m->be, &b);
    int n = snprintf(buf, cap,
                     "# TYPE occ_enclave_transitions_total counter\nocc_enclave_transitions_total %llu\n"
                     "# TYPE occ_enclave_ecalls_total counter\nocc_enclave_ecalls_total %llu\n"
                     "# TYPE occ_enclave_ocalls_total counter\nocc_enclave_ocalls_total %llu\n"
                     "# TYPE occ_boundary_bytes_in_total counter\nocc_boundary_bytes_in_total %llu\n"
                     "# TYPE occ_boundary_bytes_out_total counter\nocc_boundary_bytes_out_total %llu\n",
                     (unsigned long long)(a.transitions + b.transitions), (unsigned long long)(a.ecalls + b.ecalls),
                     (unsigned long long)(a.ocalls + b.ocalls), (unsigned long long)(a.bytes_in + b.bytes_in),
                     (unsigned long long)(a.bytes_out + b.bytes_out));
    if (n < 0 || (size_t)n >= cap)
        return 0;
    size_t used = (size_t)n;
    /* per kind: what a request path costs in crossings is the first thing
     * to look at when the server is slower than its engines */
    n = snprintf(buf + used, cap - used, "# TYPE occ_enclave_crossings_total counter\n");
    if (n < 0 || (size_t)n >= cap - used)
        return 0;
    used += (size_t)n;
    for (int c = 0; c < OCC_BCALL_COUNT; c++) {
        unsigned long long k = (unsigned long long)(a.calls[c] + b.calls[c]);
        if (!k)
            continue;
        n = snprintf(buf + used, cap - used, "occ_enclave_crossings_total{call=\"%s\"} %llu\n",
                     occ_boundary_call_name((occ_boundary_call)c), k);
        if (n < 0 || (size_t)n >= cap - used)
            return 0;
        used += (size_t)n;
    }
    if (m->epc) {
        occ_epc_stats s;
        occ_epc_get_stats(m->epc, &s);
        n = snprintf(buf + used, cap - used,
                     "# TYPE occ_epc_faults_total counter\nocc_epc_faults_total %llu\n"
                     "# TYPE occ_epc_first_touch_total counter\nocc_epc_first_touch_total %llu\n"
                     "# TYPE occ_epc_evictions_total counter\nocc_epc_evictions_total %llu\n"
                     "# TYPE occ_epc_integrity_failures_total counter\nocc_epc_integrity_failures_total %llu\n"
                     "# TYPE occ_epc_charged_seconds_total counter\nocc_epc_charged_seconds_total %.6f\n"
                     "# TYPE occ_epc_resident_bytes gauge\nocc_epc_resident_bytes %llu\n"
                     "# TYPE occ_epc_cap_bytes gauge\nocc_epc_cap_bytes %llu\n"
                     "# TYPE occ_epc_peak_allocated_bytes gauge\nocc_epc_peak_allocated_bytes %llu\n",
                     (unsigned long long)s.faults, (unsigned long long)s.first_touch,
                     (unsigned long long)s.evictions, (unsigned long long)s.integrity_failures,
                     (double)s.charged_ns / 1e9, (unsigned long long)s.resident_size,
                     (unsigned long long)s.cap_size, (unsigned long long)s.peak_allocated_size);
        if (n > 0 && (size_t)n < cap - used)
            used += (size_t)n;
    }
    return used;
}

static int parse_u32(const char *s, unsigned lo, unsigned hi, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi || *s == '-')
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int occ_cmd_serve(int argc, char **argv)
{
    const char *model_args[MAX_MODELS];
    int n_models = 0;
    const char *alt[MAX_MODELS + 2];
    size_t n_alt = 0;
    char listen_host[256] = "";
    const char *listen = NULL, *metrics = NULL, *emu_dir = NULL, *record = NULL, *enclave = "emu";
    const char *key_server = NULL, *key_server_ca = NULL;
    int seal_keys = 0;
    /* A server's cores also run the event loop, TLS and often its clients:
     * an idle-class loader that has claimed a segment could wait behind
     * them while its engine waits for that segment (docs/streaming.md).
     * Normal-class loaders unless OCC_LOADER_IDLE=1 asks otherwise. */
    if (!getenv("OCC_LOADER_IDLE"))
        occ_engine_loader_idle = 0;
    uint8_t *ca_pem = NULL;
    size_t ca_size = 0;
    unsigned long long epc_size = 0, budget = 0, max_body = 0, req_mem = 0;
    occ_epc_cost_model cost = OCC_EPC_COST_SGX1;
    occ_mode mode = OCC_MODE_NATIVE;
    int mode_set = 0;
    /* Defaults measured with bench/serve.sh (docs/benchmarks.md): one
     * single-threaded engine per core, each running whole requests, beats one
     * engine splitting every layer across the cores (no per-layer barrier, no
     * spinning OpenMP team); batches of up to 4 share one pass over the
     * streamed weights (ResNet-50 at 93M: 27.1 requests/s with them, 23.4
     * without, against occ run's 28-31). A worker about to start a batch
     * waits (up to --batch-fill-us) for requests already arriving: without
     * that, the requests answered by one run come back a few ms apart and the
     * next run starts with the first alone (ResNet-50: 2.6 requests per run
     * on average, 3.9 with it; docs/benchmarks.md). In occlumency mode the
     * engines share the model's budget, so the pool is narrowed when the
     * split would make a model stream more than the barriers it saves cost
     * (default_workers). */
    uint32_t threads = 0, workers = 0, max_batch = 4, batch_wait = 0, batch_fill = 20000, max_conns = 256,
             req_to = 30000, idle_to = 60000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            usage(stderr);
            return occ_cli_error("serve", "unexpected argument '%s'", a);
        }
        if (!strcmp(a, "--seal-keys")) {
            seal_keys = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return occ_cli_error("serve", "%s needs a value (see --help)", a);
        i++;
        if (!strcmp(a, "--model")) {
            if (n_models == MAX_MODELS)
                return occ_cli_error("serve", "at most %d models", MAX_MODELS);
            model_args[n_models++] = v;
        } else if (!strcmp(a, "--listen")) {
            listen = v;
        } else if (!strcmp(a, "--san")) {
            if (n_alt == MAX_MODELS)
                return occ_cli_error("serve", "at most %d --san names", MAX_MODELS);
            alt[n_alt++] = v;
        } else if (!strcmp(a, "--metrics")) {
            metrics = v;
        } else if (!strcmp(a, "--emu-dir")) {
            emu_dir = v;
        } else if (!strcmp(a, "--record-boundary")) {
            record = v;
        } else if (!strcmp(a, "--key-server")) {
            if (!strncmp(v, "https://", 8))
                v += 8;
            key_server = v;
        } else if (!strcmp(a, "--key-server-ca")) {
            key_server_ca = v;
        } else if (!strcmp(a, "--enclave")) {
            if (strcmp(v, "emu") && strcmp(v, "gramine"))
                return occ_cli_error("serve", "--enclave takes emu or gramine, got '%s'", v);
            enclave = v;
        } else if (!strcmp(a, "--epc") || !strcmp(a, "--budget") || !strcmp(a, "--max-body") ||
                   !strcmp(a, "--request-memory")) {
            unsigned long long x;
            if (occ_parse_size(v, &x) || !x)
                return occ_cli_error("serve", "%s needs a size such as 93M, got '%s'", a, v);
            *(!strcmp(a, "--epc")              ? &epc_size
              : !strcmp(a, "--budget")         ? &budget
              : !strcmp(a, "--request-memory") ? &req_mem
                                               : &max_body) = x;
        } else if (!strcmp(a, "--cost-model")) {
            if (occ_epc_cost_parse(v, &cost))
                return occ_cli_error("serve", "--cost-model takes sgx1, sgx2 or none, got '%s'", v);
        } else if (!strcmp(a, "--mode")) {
            mode_set = 1;
            if (!strcmp(v, "occlumency"))
                mode = OCC_MODE_OCCLUMENCY;
            else if (!strcmp(v, "baseline"))
                mode = OCC_MODE_BASELINE;
            else if (!strcmp(v, "native"))
                mode = OCC_MODE_NATIVE;
            else
                return occ_cli_error("serve", "--mode takes occlumency, baseline or native, got '%s'", v);
        } else {
            uint32_t *slot = !strcmp(a, "--threads")           ? &threads
                             : !strcmp(a, "--workers")         ? &workers
                             : !strcmp(a, "--max-batch")       ? &max_batch
                             : !strcmp(a, "--batch-wait-us")   ? &batch_wait
                             : !strcmp(a, "--batch-fill-us")   ? &batch_fill
                             : !strcmp(a, "--max-connections") ? &max_conns
                             : !strcmp(a, "--request-timeout") ? &req_to
                             : !strcmp(a, "--idle-timeout")    ? &idle_to
                                                               : NULL;
            if (!slot) {
                usage(stderr);
                return occ_cli_error("serve", "unknown option '%s'", a);
            }
            unsigned lo = slot == &batch_wait || slot == &batch_fill ? 0 : 1;
            unsigned hi = slot == &max_batch ? 256 : slot == &workers ? 64 : slot == &threads ? 1024 : 100000000;
            if (parse_u32(v, lo, hi, slot))
                return occ_cli_error("serve", "%s needs a number in %u..%u, got '%s'", a, lo, hi, v);
        }
    }
    if (!n_models)
        return occ_cli_error("serve", "give at least one --model [NAME=]FILE.occ");
    if (budget && !mode_set)
        mode = OCC_MODE_OCCLUMENCY; /* a budget means: plan to it */
    if (!threads) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 && nc <= 1024 ? (uint32_t)nc : 1;
    }
    int workers_given = workers != 0;
    if (!workers)
        workers = threads < 64 ? threads : 64;
    /* threads per engine; more workers than threads oversubscribe the cores */
    uint32_t per_engine = threads / workers ? threads / workers : 1;
    if (!listen)
        return occ_cli_error("serve", "give --listen ADDR:PORT (e.g. 127.0.0.1:8443)");
    int emu = !strcmp(enclave, "emu");
    /* The listen host (and localhost) go into the certificate's
     * subjectAltName, so `curl --cacert CERT` passes its name check. */
    {
        const char *colon = strrchr(listen, ':');
        size_t hl = colon ? (size_t)(colon - listen) : 0;
        if (hl && hl < sizeof listen_host) {
            memcpy(listen_host, listen[0] == '[' ? listen + 1 : listen, listen[0] == '[' ? hl - 2 : hl);
            listen_host[listen[0] == '[' ? hl - 2 : hl] = 0;
        }
        if (*listen_host && strcmp(listen_host, "0.0.0.0") && strcmp(listen_host, "::"))
            alt[n_alt++] = listen_host;
        alt[n_alt++] = "localhost";
    }
    if (emu && !emu_dir)
        return occ_cli_error("serve", "--enclave emu needs --emu-dir DIR (the emulated quoting folder; clients "
                                      "verify with --root DIR/root.pem)");

    if (key_server_ca && !key_server)
        return occ_cli_error("serve", "--key-server-ca goes with --key-server HOST:PORT");
    if (seal_keys && strcmp(enclave, "emu"))
        return occ_cli_error("serve", "--seal-keys needs --enclave emu (sealing under Gramine is not done)");
    occ_error e = {0};
    int rc = 1;
    if (key_server_ca && occ_attest_read_file(key_server_ca, 64u << 10, &ca_pem, &ca_size, &e))
        return occ_cli_error("serve", "--key-server-ca: %s", e.msg);
    occ_packfile *packs[MAX_MODELS] = {0};
    occ_model *models[MAX_MODELS] = {0};
    occ_server_model sm[MAX_MODELS];
    char names[MAX_MODELS][160];
    occ_net *net = NULL;
    occ_epc *epc = NULL;
    occ_boundary *bo = NULL, *be = NULL;
    occ_enclave *enc = NULL;
    occ_emu_provider prov = {0};
    FILE *rec = NULL;
    occ_mem_provider mem;
    metrics_ctx mctx = {0};

    for (int i = 0; i < n_models; i++) {
        const char *arg = model_args[i], *eq = strchr(arg, '='), *path = eq ? eq + 1 : arg;
        if (occ_cli_open_model(path, &packs[i], &models[i], &e)) {
            occ_cli_error("serve", "%s", e.msg);
            goto done;
        }
        if (eq)
            snprintf(names[i], sizeof names[i], "%.*s", (int)(eq - arg), arg);
        else
            snprintf(names[i], sizeof names[i], "%s", models[i]->name && *models[i]->name ? models[i]->name : "model");
        size_t msize = 0;
        sm[i].name = names[i];
        sm[i].pack_id = (uint32_t)i;
        sm[i].manifest = occ_packfile_manifest(packs[i], &msize);
        sm[i].manifest_size = msize;
    }

    if (!workers_given && mode == OCC_MODE_OCCLUMENCY && workers > 1) {
        uint64_t streamed[MAX_MODELS];
        char why[512] = "";
        for (int i = 0; i < n_models; i++)
            streamed[i] = UINT64_MAX;
        workers = default_workers(models, packs, n_models, budget ? budget : OCC_DEFAULT_BUDGET,
                                  threads, max_batch, emu, streamed, why, sizeof why);
        per_engine = threads / workers;
        fprintf(stderr, "occ serve: %u engine%s of %u thread%s per model (the pool with the least estimated "
                "CPU per image: compute, plus weights streamed; --workers overrides)\n", workers,
                workers > 1 ? "s" : "", per_engine, per_engine > 1 ? "s" : "");
        if (*why)
            fprintf(stderr, "occ serve: estimated CPU per image by engines in the pool, in streamed-MB "
                    "equivalents: %s\n", why);
        for (int i = 0; i < n_models; i++)
            if (streamed[i] && streamed[i] != UINT64_MAX)
                fprintf(stderr, "occ serve: %s streams %.1f MiB per image (at the batch its pool runs, full)\n",
                        names[i], (double)streamed[i] / 1048576.0);
    }
    occ_net_config nc = {listen, metrics, max_conns, idle_to, (int)workers};
    if (occ_net_create(&nc, &net, &e)) {
        occ_cli_error("serve", "%s", e.msg);
        goto done;
    }
    occ_host_ctx hctx = {.net = net, .packs = packs, .n_packs = (uint32_t)n_models};
    occ_ocalls host_ocalls;
    occ_host_ocalls(&hctx, &host_ocalls);

    occ_enclave_config cfg = {0};
    cfg.models = sm;
    cfg.n_models = (size_t)n_models;
    cfg.engine.threads = (int)per_engine; /* a remainder of threads stays idle */
    cfg.engines = workers;
    cfg.engine.mode = mode;
    cfg.engine.budget = budget;
    cfg.max_batch = max_batch;
    cfg.batch_wait_us = batch_wait;
    cfg.batch_fill_us = batch_fill;
    cfg.max_body_size = max_body;
    cfg.request_memory = req_mem;
    cfg.request_timeout_ms = req_to;
    cfg.alt_names = alt;
    cfg.n_alt_names = n_alt;
    cfg.key_server = key_server;
    cfg.key_server_ca = ca_pem;
    cfg.key_server_ca_size = ca_size;
    if (emu) {
        occ_epc_opts eo;
        occ_epc_opts_default(&eo);
        if (epc_size)
            eo.cap_size = epc_size;
        eo.cost = cost;
        eo.on_lost = on_lost;
        if (occ_epc_create(&eo, &epc, &e)) {
            occ_cli_error("serve", "EPC emulator: %s", e.msg);
            goto done;
        }
        occ_epc_provider(epc, &mem);
        cfg.engine.mem = &mem;
        if (occ_emu_quote_open(emu_dir, &prov.quoter, &e) || occ_emu_identity_default(prov.quoter, &prov.identity, &e)) {
            occ_cli_error("serve", "%s", e.msg);
            goto done;
        }
        hctx.quote = occ_emu_quote_provider;
        hctx.quote_ctx = &prov;
        if (seal_keys) {
            char sdir[4200];
            snprintf(sdir, sizeof sdir, "%.4000s/sealed", emu_dir);
            if (occ_host_seal_dir(sdir, &e)) {
                occ_cli_error("serve", "--seal-keys: %s", e.msg);
                goto done;
            }
            cfg.seal_key = occ_emu_seal_key;
            cfg.seal_ctx = &prov;
        }
    } else {
        hctx.quote = occ_gramine_quote_provider;
        hctx.quote_ctx = NULL;
    }
    occ_boundary_opts bopts = {epc, NULL, 0};
    if (occ_boundary_create(&bopts, &host_ocalls, NULL, &bo, &e)) {
        occ_cli_error("serve", "%s", e.msg);
        goto done;
    }
    if (record) {
        /* from the start: the key fetch crosses during occ_enclave_create */
        rec = fopen(record, "wb");
        if (!rec) {
            occ_cli_error("serve", "cannot write %s: %s", record, strerror(errno));
            goto done;
        }
        occ_boundary_record_start(bo, rec, 0);
    }
    mctx.epc = epc;
    mctx.bo = bo;
    hctx.metrics = metrics_extra;
    hctx.metrics_ctx = &mctx;
    double t0 = occ_cli_now_ms();
    if (occ_enclave_create(&cfg, occ_boundary_ocalls(bo), &enc, &e)) {
        occ_cli_error("serve", "%s", e.msg);
        goto done;
    }
    double start_ms = occ_cli_now_ms() - t0;
    occ_ecalls ecalls;
    occ_enclave_ecalls(enc, &ecalls);
    if (occ_boundary_create(&bopts, NULL, &ecalls, &be, &e)) {
        occ_cli_error("serve", "%s", e.msg);
        goto done;
    }
    mctx.be = be;
    if (rec)
        occ_boundary_record_start(be, rec, 0);

    /* What a client needs to write its policy. */
    uint8_t binding[32];
    char hex[65];
    occ_enclave_binding(enc, binding);
    if (emu) {
        printf("occ serve: EMULATED enclave (NOT hardware-backed): quotes signed under %s\n",
               occ_emu_quote_root_path(prov.quoter));
        occ_hex(prov.identity.mrenclave, 32, hex);
        printf("mrenclave %s\n", hex);
        occ_hex(prov.identity.mrsigner, 32, hex);
        printf("mrsigner %s\n", hex);
    } else {
        printf("occ serve: gramine enclave: quotes from /dev/attestation\n");
    }
    for (int i = 0; i < n_models; i++) {
        occ_hex(models[i]->model_id, 32, hex);
        printf("model %s %s\n", names[i], hex);
    }
    occ_hex(binding, 32, hex);
    printf("report_data_model_binding %s\n", hex);
    if (key_server)
        printf("keys: fetched inside the enclave from %s (%s)\n", key_server,
               ca_pem ? "its certificate pinned by --key-server-ca"
                      : "UNPINNED: trusted only through each pack's key check");
    if (seal_keys)
        printf("keys: sealed to this enclave under %s/sealed (a key sealed there earlier is used first)\n", emu_dir);
    printf("engines: %u per model, %u thread%s each\n", workers, per_engine, per_engine == 1 ? "" : "s");
    printf("batching: %s\n", occ_enclave_batching(enc) ? "the engine runs batches of concurrent requests"
                                                       : "not every model runs batches (see the batch lines)");
    for (int i = 0; i < n_models; i++) {
        const char *note = NULL;
        uint32_t nb = occ_enclave_model_batch(enc, (size_t)i, &note);
        if (nb > 1)
            printf("batch %s up to %u requests per run\n", names[i], nb);
        else
            printf("batch %s 1 request per run (%s)\n", names[i], note);
    }
    printf("started in %.0f ms\n", start_ms);
    if (metrics)
        printf("metrics http://%.*s:%u/metrics (port %u)\n", (int)(strrchr(metrics, ':') - metrics), metrics,
               occ_net_metrics_port(net), occ_net_metrics_port(net));
    printf("listening https://%.*s:%u (port %u)\n", (int)(strrchr(listen, ':') - listen), listen, occ_net_port(net),
           occ_net_port(net));
    fflush(stdout);

    g_net = net;
    if (g_lost)
        occ_net_stop(net);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    occ_status run_st = occ_net_run(net, occ_boundary_ecalls(be), &e);
    if (g_lost || (epc && occ_epc_lost(epc))) {
        occ_error le = {0};
        if (occ_epc_check(epc, &le) == OCC_OK)
            snprintf(le.msg, sizeof le.msg, "an evicted EPC page failed authentication on reload");
        occ_cli_error("serve", "the enclave is lost, every request since was refused; restart the server on a "
                               "host that does not touch enclave memory: %s",
                      le.msg);
        rc = 3;
        goto done;
    }
    if (run_st) {
        occ_cli_error("serve", "%s", e.msg);
        goto done;
    }
    /* Final counters. */
    char *text = occ_enclave_metrics(enc);
    if (text) {
        fprintf(stderr, "occ serve: stopped; counters:\n");
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        {
            size_t len = strlen(line);
            if (line[0] != '#' && !strstr(line, "_bucket{") && !(len >= 2 && !strcmp(line + len - 2, " 0")))
                fprintf(stderr, "  %s\n", line);
        }
        free(text);
    }
    rc = 0;
done:
    g_net = NULL;
    free(ca_pem);
    if (bo)
        occ_boundary_record_stop(bo);
    if (be)
        occ_boundary_record_stop(be);
    if (rec)
        fclose(rec);
    occ_enclave_free(enc);
    occ_boundary_free(be);
    occ_boundary_free(bo);
    occ_net_free(net);
    occ_emu_quote_close(prov.quoter);
    occ_epc_destroy(epc);
    for (int i = 0; i < n_models; i++) {
        occ_model_free(models[i]);
        occ_packfile_close(packs[i]);
    }
    return rc;
}
