/* occ bench: the paper's comparison (DESIGN §1, issue 4). For each model,
 * these configurations side by side:
 *
 *   native             no enclave (the speed reference), --threads
 *   native-1t          the same on one thread ("native at its best" is the
 *                      faster of the two: a second core does not always help)
 *   baseline           a naive framework in the emulated enclave (sgx1, EPC 93 MiB)
 *   baseline-resident  the same engine in an EPC that holds all of it: its
 *                      compute and transitions without any paging
 *   occlumency-93M     occlumency in the emulated enclave, EPC and budget 93 MiB
 *   occlumency-32M     the same at 32 MiB
 *
 * Two figures per configuration (issue 14, item 7): the measured median, and
 * the cost model alone, where the emulator's own paging work does not count.
 * For a baseline that pages, that is baseline-resident's median plus the
 * fault cost the model charged (its charged time beyond baseline-resident's);
 * for the others, the median less the time the emulator measured beyond the
 * model on their faults (excess_ns, occ/epc.h; zero without faults). Speedups and
 * overheads are given both ways.
 *
 * Design: in-process. All four engines of a model are created once (each
 * emulated one with its own fresh EPC, so no configuration inherits another's
 * resident pages), then every round runs each configuration once, in an
 * order that rotates from round to round (interleaved: drift in machine load
 * hits all alike). The first --warmup rounds are discarded; the figure is the
 * median of the --repeat measured rounds. Counters are per inference, means
 * over the measured rounds (enclave_opts.c). Spawning `occ run` per round
 * would re-create (and, for the baseline, re-page) the whole model every
 * round, which costs more than the measurement on the large models.
 *
 * Writes DIR/results.csv, DIR/results.md, DIR/results.json, DIR/results.svg (gnuplot, when
 * installed; DIR/results.gp is the script either way). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/enclave_opts.h"
#include "occ/engine.h"
#include "occ/model.h"
#include "occ/packer.h"

#define N_CONF 6
enum { C_NATIVE, C_NATIVE1, C_BASE, C_BASE_RES, C_OCC93, C_OCC32 };
#define MAX_MODELS 64

static void usage(FILE *f)
{
    fputs("usage: occ bench --models a,b,c --out DIR [options]\n"
          "\n"
          "For each model runs native (all cores and one thread), baseline in the emulated\n"
          "enclave (sgx1, EPC 93 MiB), the baseline in an EPC that holds all of it (its\n"
          "compute without paging), and occlumency in the emulated enclave at 93 MiB and\n"
          "32 MiB, interleaved, and writes DIR/results.csv, .md, .json and a chart\n"
          "DIR/results.svg. Every latency, speedup and overhead is given measured and on\n"
          "the cost model alone (without the emulator's own paging work).\n"
          "\n"
          "  --models LIST   comma-separated model names: ZOO/NAME.occ (packed from\n"
          "                  ZOO/NAME.onnx if missing), input ZOO/NAME.input.bin\n"
          "  --out DIR       where the results go (created)\n"
          "  --zoo DIR       model folder (default: $OCC_ZOO, else ./zoo)\n"
          "  --packs DIR     where packs are looked up first and written (default: the zoo)\n"
          "  --repeat N      measured rounds (default 5; the median is reported)\n"
          "  --warmup N      discarded rounds first (default 1)\n"
          "  --threads N     compute threads (default: all cores)\n"
          "  --epc SIZE      the EPC of baseline and occlumency-93M (default 93M)\n"
          "  --cost-model M  sgx1 (default), sgx2 or none\n"
          "  --configs LIST  a subset of native,native-1t,baseline,baseline-resident,\n"
          "                  occlumency-93M,occlumency-32M\n"
          "  --json          print the results as one JSON object instead of the table\n"
          "  --quiet         no progress on stderr\n"
          "  -h, --help      this text\n",
          f);
}

typedef struct conf_def {
    const char *name;
    occ_mode mode;
    int emu;
    uint64_t epc; /* 0 = --epc; UINT64_MAX = the whole enclave heap (nothing pages) */
    int threads;  /* 0 = --threads */
} conf_def;

static const conf_def confs[N_CONF] = {
    {"native", OCC_MODE_NATIVE, 0, 0, 0},
    {"native-1t", OCC_MODE_NATIVE, 0, 0, 1},
    {"baseline", OCC_MODE_BASELINE, 1, 0, 0},
    {"baseline-resident", OCC_MODE_BASELINE, 1, UINT64_MAX, 0},
    {"occlumency-93M", OCC_MODE_OCCLUMENCY, 1, 0, 0},
    {"occlumency-32M", OCC_MODE_OCCLUMENCY, 1, 32ull << 20, 0},
};

/* The emulator's per-fault accounting, summed over the measured runs. */
typedef struct fault_acct {
    uint64_t runs, faults, excess_ns, handle_ns, wait_ns, overrun_faults;
    uint64_t fault_ns, roundtrip_ns;
} fault_acct;

typedef struct result {
    int ran;          /* the configuration was selected */
    char error[OCC_ERROR_MSG_SIZE];
    double median_ms, min_ms;
    int runs;
    occ_cli_enclave_report rep;
    occ_engine_stats es;
    double load_ms;
    fault_acct fa;
    double excess_ms; /* per inference: emulator time beyond the model */
    double model_ms;  /* the cost model alone (see the top of this file) */
} result;

typedef struct model_result {
    char name[128];
    uint64_t weight_bytes;
    double gflops;
    result r[N_CONF];
} model_result;

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static void engine_stats(const occ_engine *eng, occ_engine_stats *out)
{
    memset(out, 0, sizeof *out);
    if (eng)
        occ_engine_get_stats(eng, out);
}

typedef struct bench_opts {
    const char *zoo, *packs, *out;
    int repeat, warmup, threads, quiet, json;
    unsigned long long epc;
    occ_epc_cost_model cost;
    int use[N_CONF];
} bench_opts;

typedef struct conf_state {
    occ_cli_enclave *enc;
    occ_engine *eng;
    double *times;
    int n;
    fault_acct fa;
} conf_state;

static void progress(const bench_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(const bench_opts *o, const char *fmt, ...)
{
    if (o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

/* Finds or makes the pack of `name`. */
static occ_status find_pack(const bench_opts *o, const char *name, char *pack, size_t size, occ_error *e)
{
    const char *dirs[2] = {o->packs, o->zoo};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i])
            continue;
        snprintf(pack, size, "%s/%s.occ", dirs[i], name);
        if (file_exists(pack))
            return OCC_OK;
    }
    char onnx[4096];
    snprintf(onnx, sizeof onnx, "%s/%s.onnx", o->zoo, name);
    if (!file_exists(onnx))
        return occ_fail(e, OCC_ERR_IO, "model %s: neither %s/%s.occ nor %s exists", name,
                        o->packs ? o->packs : o->zoo, name, onnx);
    snprintf(pack, size, "%s/%s.occ", o->packs ? o->packs : o->zoo, name);
    progress(o, "[%s] packing %s -> %s\n", name, onnx, pack);
    occ_pack_stats st;
    occ_status s = occ_pack_onnx(onnx, pack, NULL, &st, e);
    if (s)
        occ_error_prefix(e, "packing %s", onnx);
    return s;
}

static void free_conf(conf_state *c)
{
    occ_engine_free(c->eng);
    occ_cli_enclave_close(c->enc);
    free(c->times);
    memset(c, 0, sizeof *c);
}

static int ok(const result *r)
{
    return r->ran && !r->error[0] && r->runs > 0;
}

/* The cost model alone (see the top of this file). */
static void model_figures(model_result *mr)
{
    for (int c = 0; c < N_CONF; c++) {
        result *r = &mr->r[c];
        if (!ok(r))
            continue;
        r->model_ms = r->median_ms - r->excess_ms;
        if (r->model_ms < 0)
            r->model_ms = 0;
    }
    const result *res = &mr->r[C_BASE_RES];
    result *base = &mr->r[C_BASE];
    /* only when the baseline pages: otherwise the two are the same run
     * measured twice, and the baseline's own median is the better figure */
    if (ok(base) && ok(res) && base->rep.epc_faults > 0) {
        double fault_ms = base->rep.charged_ms - res->rep.charged_ms; /* same transitions, plus the faults */
        base->model_ms = res->median_ms + (fault_ms > 0 ? fault_ms : 0);
    }
}

/* The faster of native and native-1t, or NULL. */
static const result *native_best(const model_result *mr)
{
    const result *a = &mr->r[C_NATIVE], *b = &mr->r[C_NATIVE1];
    if (ok(a) && ok(b))
        return b->median_ms < a->median_ms ? b : a;
    return ok(a) ? a : ok(b) ? b : NULL;
}

static void bench_model(const bench_opts *o, const char *name, model_result *mr)
{
    memset(mr, 0, sizeof *mr);
    snprintf(mr->name, sizeof mr->name, "%s", name);
    for (int c = 0; c < N_CONF; c++)
        mr->r[c].ran = o->use[c];
    occ_error e = {0};
    char pack[4096], input[4096];
    occ_packfile *pf = NULL;
    occ_model *m = NULL;
    float *x = NULL, *y = NULL;
    conf_state cs[N_CONF];
    memset(cs, 0, sizeof cs);
    occ_status s = find_pack(o, name, pack, sizeof pack, &e);
    if (!s)
        s = occ_cli_open_model(pack, &pf, &m, &e);
    if (!s && (m->n_inputs != 1 || m->n_outputs < 1))
        s = occ_fail(&e, OCC_ERR_UNSUPPORTED, "%s: bench takes models with one input", name);
    if (s) {
        for (int c = 0; c < N_CONF; c++)
            snprintf(mr->r[c].error, sizeof mr->r[c].error, "%s", e.msg);
        fprintf(stderr, "occ bench: %s: error: %s\n", name, e.msg);
        goto done;
    }
    mr->weight_bytes = m->data_size;
    const occ_tensor *it = &m->tensors[m->inputs[0]];
    x = malloc(it->size);
    size_t out_size = 0;
    for (uint32_t i = 0; i < m->n_outputs; i++)
        out_size += m->tensors[m->outputs[i]].size;
    y = malloc(out_size ? out_size : 1);
    snprintf(input, sizeof input, "%s/%s.input.bin", o->zoo, name);
    if (!x || !y || occ_cli_read_exact(input, x, it->size, "input", &e)) {
        if (!x || !y)
            snprintf(e.msg, sizeof e.msg, "out of memory");
        for (int c = 0; c < N_CONF; c++)
            snprintf(mr->r[c].error, sizeof mr->r[c].error, "%s", e.msg);
        fprintf(stderr, "occ bench: %s: error: %s\n", name, e.msg);
        goto done;
    }
    float *outs[16];
    {
        size_t off = 0;
        for (uint32_t i = 0; i < m->n_outputs && i < 16; i++) {
            outs[i] = y + off / 4;
            off += m->tensors[m->outputs[i]].size;
        }
    }
    const float *ins[1] = {x};

    /* Create every configuration. */
    for (int c = 0; c < N_CONF; c++) {
        if (!o->use[c])
            continue;
        occ_cli_enclave_opts eo;
        occ_cli_enclave_opts_default(&eo);
        eo.emu = confs[c].emu;
        eo.cost = o->cost;
        eo.epc_size = confs[c].epc ? confs[c].epc : o->epc;
        if (confs[c].epc == UINT64_MAX) /* cap = the heap: nothing pages, transitions still charged */
            eo.epc_size = eo.region_size;
        occ_engine_opts opts = {.threads = confs[c].threads ? confs[c].threads : o->threads,
                                .mode = confs[c].mode};
        if (confs[c].mode == OCC_MODE_OCCLUMENCY)
            opts.budget = eo.epc_size;
        occ_read_fn rf;
        void *rctx;
        progress(o, "[%s] creating %s ...", name, confs[c].name);
        double t0 = occ_cli_now_ms();
        s = occ_cli_enclave_open(&eo, pf, &cs[c].enc, &e);
        if (!s) {
            occ_cli_enclave_engine(cs[c].enc, &opts, &rf, &rctx);
            s = occ_engine_create(m, &opts, rf, rctx, &cs[c].eng, &e);
        }
        if (!s) {
            occ_cli_enclave_created(cs[c].enc, cs[c].eng);
            cs[c].times = calloc((size_t)o->repeat, sizeof *cs[c].times);
            if (!cs[c].times)
                s = occ_fail(&e, OCC_ERR_NOMEM, "out of memory");
        }
        mr->r[c].load_ms = occ_cli_now_ms() - t0;
        if (s) {
            snprintf(mr->r[c].error, sizeof mr->r[c].error, "%s", e.msg);
            progress(o, "\n");
            fprintf(stderr, "occ bench: %s %s: error: %s\n", name, confs[c].name, e.msg);
            free_conf(&cs[c]);
        } else {
            progress(o, " %.0f ms\n", mr->r[c].load_ms);
        }
    }

    /* Rounds: each configuration once, the order rotating. */
    int rounds = o->warmup + o->repeat;
    for (int r = 0; r < rounds; r++) {
        int measured = r >= o->warmup;
        progress(o, "[%s] round %d/%d%s:", name, r + 1, rounds, measured ? "" : " (warm-up)");
        for (int k = 0; k < N_CONF; k++) {
            int c = (k + r) % N_CONF;
            if (!cs[c].eng)
                continue;
            occ_epc *epc = occ_cli_enclave_epc(cs[c].enc);
            occ_epc_stats a, b;
            occ_epc_get_stats(epc, &a); /* zeros without an EPC */
            occ_cli_enclave_begin(cs[c].enc, measured, 0);
            double t0 = occ_cli_now_ms();
            s = occ_engine_run(cs[c].eng, (const void *const *)ins, (void *const *)outs, &e);
            double ms = occ_cli_now_ms() - t0;
            if (!s)
                s = occ_cli_enclave_end(cs[c].enc, &e);
            occ_epc_get_stats(epc, &b);
            if (!s && measured) {
                fault_acct *fa = &cs[c].fa;
                fa->runs++;
                fa->faults += b.charged_faults - a.charged_faults;
                fa->excess_ns += b.excess_ns - a.excess_ns;
                fa->handle_ns += b.handle_ns - a.handle_ns;
                fa->wait_ns += b.wait_ns - a.wait_ns;
                fa->overrun_faults += b.overrun_faults - a.overrun_faults;
                fa->fault_ns = b.fault_ns;
                fa->roundtrip_ns = b.roundtrip_ns;
            }
            if (s) {
                snprintf(mr->r[c].error, sizeof mr->r[c].error, "%s", e.msg);
                fprintf(stderr, "\nocc bench: %s %s: error: %s\n", name, confs[c].name, e.msg);
                mr->r[c].runs = 0;
                free_conf(&cs[c]);
                continue;
            }
            if (measured)
                cs[c].times[cs[c].n++] = ms;
            progress(o, " %s %.1f ms", confs[c].name, ms);
        }
        progress(o, "\n");
    }

    for (int c = 0; c < N_CONF; c++) {
        result *res = &mr->r[c];
        if (!cs[c].eng || !cs[c].n)
            continue;
        qsort(cs[c].times, (size_t)cs[c].n, sizeof *cs[c].times, occ_cli_cmp_double);
        int n = cs[c].n;
        res->runs = n;
        res->min_ms = cs[c].times[0];
        res->median_ms = n % 2 ? cs[c].times[n / 2] : 0.5 * (cs[c].times[n / 2 - 1] + cs[c].times[n / 2]);
        occ_cli_enclave_get_report(cs[c].enc, cs[c].eng, &res->rep);
        engine_stats(cs[c].eng, &res->es);
        res->fa = cs[c].fa;
        res->excess_ms = res->fa.runs ? (double)res->fa.excess_ns / 1e6 / (double)res->fa.runs : 0;
    }
    model_figures(mr);
done:
    for (int c = 0; c < N_CONF; c++)
        free_conf(&cs[c]);
    free(x);
    free(y);
    occ_model_free(m);
    occ_packfile_close(pf);
}

static double geomean(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += log(v[i]);
    return n ? exp(s / n) : NAN;
}

static double ratio(double a, double b)
{
    return a > 0 && b > 0 ? a / b : NAN;
}

static void fmt_ratio(char *buf, size_t size, const char *fmt, double v)
{
    if (isfinite(v))
        snprintf(buf, size, fmt, v);
    else
        buf[0] = '\0';
}

/* Speedups over the baseline and overheads over native at its best, measured
 * and on the cost model alone, over the models whose weights exceed the EPC
 * (speedups; the others do not page) or all models (overheads). */
typedef struct summary {
    double sp[2][MAX_MODELS], sp32[2][MAX_MODELS], ov[2][MAX_MODELS];
    int nsp, nsp32, nov;
    /* a baseline fault here: measured (baseline - baseline-resident) / faults */
    double fault_us[MAX_MODELS];
    int nfault;
    double fault_model_us;
} summary;

static void summarize(const bench_opts *o, const model_result *mrs, int n_models, summary *sm)
{
    memset(sm, 0, sizeof *sm);
    for (int i = 0; i < n_models && i < MAX_MODELS; i++) {
        const model_result *mr = &mrs[i];
        const result *base = &mr->r[C_BASE], *res = &mr->r[C_BASE_RES], *o93 = &mr->r[C_OCC93],
                     *o32 = &mr->r[C_OCC32], *nb = native_best(mr);
        int pages = mr->weight_bytes > o->epc;
        if (pages && ok(base) && ok(o93)) {
            sm->sp[0][sm->nsp] = ratio(base->median_ms, o93->median_ms);
            sm->sp[1][sm->nsp++] = ratio(base->model_ms, o93->model_ms);
        }
        if (pages && ok(base) && ok(o32)) {
            sm->sp32[0][sm->nsp32] = ratio(base->median_ms, o32->median_ms);
            sm->sp32[1][sm->nsp32++] = ratio(base->model_ms, o32->model_ms);
        }
        if (nb && ok(o93)) {
            sm->ov[0][sm->nov] = ratio(o93->median_ms, nb->median_ms);
            sm->ov[1][sm->nov++] = ratio(o93->model_ms, nb->median_ms);
        }
        if (ok(base) && ok(res) && base->rep.epc_faults > 0) {
            sm->fault_us[sm->nfault++] = (base->median_ms - res->median_ms) * 1e3 / (double)base->rep.epc_faults;
            sm->fault_model_us = (double)base->fa.fault_ns / 1e3;
        }
    }
}

static double median_of(double *v, int n)
{
    if (!n)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, occ_cli_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void json_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* The whole run as one JSON object (--json). */
static cJSON *results_json(const bench_opts *o, const model_result *mrs, int n_models)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "cost_model", occ_epc_cost_name(o->cost));
    json_num(root, "epc_bytes", (double)o->epc);
    json_num(root, "threads", o->threads);
    json_num(root, "repeat", o->repeat);
    json_num(root, "warmup", o->warmup);
    cJSON *models = cJSON_AddArrayToObject(root, "models");
    for (int i = 0; i < n_models; i++) {
        const model_result *mr = &mrs[i];
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(models, m);
        cJSON_AddStringToObject(m, "model", mr->name);
        json_num(m, "weight_bytes", (double)mr->weight_bytes);
        const result *base = &mr->r[C_BASE], *nb = native_best(mr);
        if (nb)
            cJSON_AddStringToObject(m, "native_best", confs[nb - mr->r].name);
        cJSON *cf = cJSON_AddObjectToObject(m, "configs");
        for (int c = 0; c < N_CONF; c++) {
            const result *r = &mr->r[c];
            if (!r->ran)
                continue;
            cJSON *x = cJSON_AddObjectToObject(cf, confs[c].name);
            if (!ok(r)) {
                cJSON_AddStringToObject(x, "error", r->error[0] ? r->error : "failed");
                continue;
            }
            json_num(x, "median_ms", r->median_ms);
            json_num(x, "model_ms", r->model_ms);
            json_num(x, "min_ms", r->min_ms);
            json_num(x, "runs", r->runs);
            json_num(x, "speedup_vs_baseline", ok(base) ? ratio(base->median_ms, r->median_ms) : NAN);
            json_num(x, "speedup_vs_baseline_model", ok(base) ? ratio(base->model_ms, r->model_ms) : NAN);
            json_num(x, "overhead_vs_native_best", nb ? ratio(r->median_ms, nb->median_ms) : NAN);
            json_num(x, "overhead_vs_native_best_model", nb ? ratio(r->model_ms, nb->median_ms) : NAN);
            json_num(x, "peak_enclave_bytes", (double)r->es.peak_enclave_bytes);
            json_num(x, "epc_faults", (double)r->rep.epc_faults);
            json_num(x, "evictions", (double)r->rep.evictions);
            json_num(x, "transitions", (double)r->rep.transitions);
            json_num(x, "bytes_verified", (double)r->rep.bytes_verified);
            json_num(x, "charged_ms", r->rep.charged_ms);
            json_num(x, "excess_ms", r->excess_ms);
            if (r->fa.faults) {
                double f = (double)r->fa.faults;
                json_num(x, "fault_cost_us", (double)r->fa.fault_ns / 1e3);
                json_num(x, "fault_handle_us", (double)r->fa.handle_ns / 1e3 / f);
                json_num(x, "fault_wait_us", (double)r->fa.wait_ns / 1e3 / f);
                json_num(x, "fault_roundtrip_us", (double)r->fa.roundtrip_ns / 1e3);
                json_num(x, "fault_overrun_share", (double)r->fa.overrun_faults / f);
            }
            json_num(x, "epc_cap_bytes", (double)r->rep.epc_cap_bytes);
            json_num(x, "load_ms", r->load_ms);
        }
    }
    summary sm;
    summarize(o, mrs, n_models, &sm);
    cJSON *su = cJSON_AddObjectToObject(root, "summary");
    json_num(su, "speedup_93M_vs_baseline_geomean", sm.nsp ? geomean(sm.sp[0], sm.nsp) : NAN);
    json_num(su, "speedup_93M_vs_baseline_model_geomean", sm.nsp ? geomean(sm.sp[1], sm.nsp) : NAN);
    json_num(su, "speedup_32M_vs_baseline_geomean", sm.nsp32 ? geomean(sm.sp32[0], sm.nsp32) : NAN);
    json_num(su, "speedup_32M_vs_baseline_model_geomean", sm.nsp32 ? geomean(sm.sp32[1], sm.nsp32) : NAN);
    json_num(su, "speedup_models", sm.nsp);
    json_num(su, "speedup_32M_models", sm.nsp32);
    json_num(su, "overhead_93M_vs_native_best_geomean", sm.nov ? geomean(sm.ov[0], sm.nov) : NAN);
    json_num(su, "overhead_93M_vs_native_best_model_geomean", sm.nov ? geomean(sm.ov[1], sm.nov) : NAN);
    json_num(su, "overhead_models", sm.nov);
    json_num(su, "baseline_fault_measured_us_median", median_of(sm.fault_us, sm.nfault));
    json_num(su, "baseline_fault_model_us", sm.nfault ? sm.fault_model_us : NAN);
    return root;
}

static occ_status write_outputs(const bench_opts *o, model_result *mrs, int n_models, occ_error *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/results.csv", o->out);
    FILE *f = fopen(path, "w");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "model,config,median_ms,speedup_vs_baseline,overhead_vs_native,peak_enclave_bytes,"
               "epc_faults,evictions,transitions,bytes_verified,charged_ms,min_ms,runs,epc_cap_bytes,"
               "epc_peak_bytes,weight_bytes,weight_bytes_verified,epc_bytes_verified,chunks_loaded,"
               "load_ms,status,model_ms,speedup_vs_baseline_model,overhead_vs_native_best,"
               "overhead_vs_native_best_model,excess_ms\n");
    for (int i = 0; i < n_models; i++) {
        model_result *mr = &mrs[i];
        const result *nat = &mr->r[C_NATIVE], *base = &mr->r[C_BASE], *nb = native_best(mr);
        for (int c = 0; c < N_CONF; c++) {
            const result *r = &mr->r[c];
            if (!r->ran)
                continue;
            if (!ok(r)) {
                char msg[OCC_ERROR_MSG_SIZE];
                snprintf(msg, sizeof msg, "%s", r->error[0] ? r->error : "failed");
                for (char *p = msg; *p; p++)
                    if (*p == '"' || *p == ',' || *p == '\n')
                        *p = ' ';
                fprintf(f, "%s,%s,,,,,,,,,,,,,,%llu,,,,,\"error: %s\",,,,,\n", mr->name, confs[c].name,
                        (unsigned long long)mr->weight_bytes, msg);
                continue;
            }
            char sp[32] = "", ov[32] = "", spm[32] = "", ob[32] = "", obm[32] = "";
            if (ok(base)) {
                fmt_ratio(sp, sizeof sp, "%.3f", ratio(base->median_ms, r->median_ms));
                fmt_ratio(spm, sizeof spm, "%.3f", ratio(base->model_ms, r->model_ms));
            }
            if (ok(nat))
                fmt_ratio(ov, sizeof ov, "%.3f", ratio(r->median_ms, nat->median_ms));
            if (nb) {
                fmt_ratio(ob, sizeof ob, "%.3f", ratio(r->median_ms, nb->median_ms));
                fmt_ratio(obm, sizeof obm, "%.3f", ratio(r->model_ms, nb->median_ms));
            }
            uint64_t peak = r->es.peak_enclave_bytes;
            fprintf(f, "%s,%s,%.3f,%s,%s,%llu,%llu,%llu,%llu,%llu,%.3f,%.3f,%d,%llu,%llu,%llu,%llu,%llu,%llu,%.1f,ok,"
                       "%.3f,%s,%s,%s,%.3f\n",
                    mr->name, confs[c].name, r->median_ms, sp, ov, (unsigned long long)peak,
                    (unsigned long long)r->rep.epc_faults, (unsigned long long)r->rep.evictions,
                    (unsigned long long)r->rep.transitions, (unsigned long long)r->rep.bytes_verified,
                    r->rep.charged_ms, r->min_ms, r->runs, (unsigned long long)r->rep.epc_cap_bytes,
                    (unsigned long long)r->rep.epc_peak_bytes, (unsigned long long)mr->weight_bytes,
                    (unsigned long long)r->rep.weight_bytes_verified,
                    (unsigned long long)r->rep.epc_bytes_verified, (unsigned long long)r->rep.chunks_loaded,
                    r->load_ms, r->model_ms, spm, ob, obm, r->excess_ms);
        }
    }
    if (fclose(f))
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", path);

    /* Markdown */
    snprintf(path, sizeof path, "%s/results.md", o->out);
    f = fopen(path, "w");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "| model | weights MiB | config | median ms | model ms | vs baseline | vs baseline (model) "
               "| vs native best | vs native best (model) | peak enclave MiB | EPC faults | evictions "
               "| transitions | MiB verified | charged ms | excess ms |\n");
    fprintf(f, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n_models; i++) {
        model_result *mr = &mrs[i];
        const result *base = &mr->r[C_BASE], *nb = native_best(mr);
        for (int c = 0; c < N_CONF; c++) {
            const result *r = &mr->r[c];
            if (!r->ran)
                continue;
            if (!ok(r)) {
                fprintf(f, "| %s | %.1f | %s | error: %s | | | | | | | | | | | | |\n", mr->name,
                        (double)mr->weight_bytes / (1 << 20), confs[c].name, r->error);
                continue;
            }
            char s1[32] = "", s1m[32] = "", s2[32] = "", s2m[32] = "";
            if (ok(base)) {
                fmt_ratio(s1, sizeof s1, "%.2fx", ratio(base->median_ms, r->median_ms));
                fmt_ratio(s1m, sizeof s1m, "%.2fx", ratio(base->model_ms, r->model_ms));
            }
            if (nb) {
                fmt_ratio(s2, sizeof s2, "%.2fx", ratio(r->median_ms, nb->median_ms));
                fmt_ratio(s2m, sizeof s2m, "%.2fx", ratio(r->model_ms, nb->median_ms));
            }
            fprintf(f, "| %s | %.1f | %s | %.2f | %.2f | %s | %s | %s | %s | %.1f | %llu | %llu | %llu | %.1f | %.2f "
                       "| %.2f |\n",
                    mr->name, (double)mr->weight_bytes / (1 << 20), confs[c].name, r->median_ms, r->model_ms, s1,
                    s1m, s2, s2m, (double)r->es.peak_enclave_bytes / (1 << 20),
                    (unsigned long long)r->rep.epc_faults, (unsigned long long)r->rep.evictions,
                    (unsigned long long)r->rep.transitions, (double)r->rep.bytes_verified / (1 << 20),
                    r->rep.charged_ms, r->excess_ms);
        }
    }
    summary sm;
    summarize(o, mrs, n_models, &sm);
    fprintf(f, "\n");
    if (sm.nsp)
        fprintf(f, "- occlumency-93M over baseline, geometric mean over the %d model(s) whose weights "
                   "exceed the EPC (%.0f MiB): **%.2fx measured, %.2fx on the cost model alone**\n",
                sm.nsp, (double)o->epc / (1 << 20), geomean(sm.sp[0], sm.nsp), geomean(sm.sp[1], sm.nsp));
    if (sm.nsp32)
        fprintf(f, "- occlumency-32M over baseline, over the %d of those where it ran: **%.2fx measured, %.2fx on "
                   "the cost model alone**\n",
                sm.nsp32, geomean(sm.sp32[0], sm.nsp32), geomean(sm.sp32[1], sm.nsp32));
    if (sm.nov)
        fprintf(f, "- occlumency-93M over native at its best (the faster of native and native-1t), geometric "
                   "mean over %d model(s): **%.3f measured, %.3f on the cost model alone**\n",
                sm.nov, geomean(sm.ov[0], sm.nov), geomean(sm.ov[1], sm.nov));
    if (sm.nfault)
        fprintf(f, "- one baseline EPC fault, (baseline - baseline-resident) / faults, median over %d model(s): "
                   "**%.1f µs measured**; the cost model charges %.1f µs\n",
                sm.nfault, median_of(sm.fault_us, sm.nfault), sm.fault_model_us);
    fprintf(f, "\nCost model %s; %d measured round(s) after %d warm-up round(s), median; threads %d "
               "(0 = all cores). Counters are per inference. \"model\": the cost model alone — the "
               "baseline, when it pages, as baseline-resident plus the fault cost charged, the rest less the "
               "emulator's measured time beyond the model (excess ms).\n",
            occ_epc_cost_name(o->cost), o->repeat, o->warmup, o->threads);
    if (fclose(f))
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", path);

    snprintf(path, sizeof path, "%s/results.json", o->out);
    cJSON *root = results_json(o, mrs, n_models);
    char *js = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    f = js ? fopen(path, "w") : NULL;
    int werr = !f || fputs(js, f) < 0 || fputc('\n', f) < 0;
    if (f && fclose(f))
        werr = 1;
    free(js);
    if (werr)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", path);

    /* Chart: gnuplot script over a data file, rendered when gnuplot exists. */
    snprintf(path, sizeof path, "%s/results.dat", o->out);
    f = fopen(path, "w");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "model");
    /* only configurations with at least one result: gnuplot refuses a
     * column without any point */
    int ncols = 0, col[N_CONF] = {0};
    for (int c = 0; c < N_CONF; c++)
        for (int i = 0; i < n_models; i++)
            col[c] |= ok(&mrs[i].r[c]);
    for (int c = 0; c < N_CONF; c++)
        if (col[c]) {
            fprintf(f, " %s", confs[c].name);
            ncols++;
        }
    fprintf(f, "\n");
    for (int i = 0; i < n_models; i++) {
        fprintf(f, "%s", mrs[i].name);
        for (int c = 0; c < N_CONF; c++)
            if (!col[c])
                continue;
            else if (ok(&mrs[i].r[c]))
                fprintf(f, " %.3f", mrs[i].r[c].median_ms);
            else
                fprintf(f, " NaN");
        fprintf(f, "\n");
    }
    if (fclose(f))
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", path);
    snprintf(path, sizeof path, "%s/results.gp", o->out);
    f = fopen(path, "w");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "set terminal svg size 1000,520 dynamic font 'sans,12'\n"
               "set output 'results.svg'\n"
               "set title 'occ bench: median latency per inference (emulated SGX, %s)'\n"
               "set style data histogram\nset style histogram clustered gap 1\n"
               "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
               "set logscale y\nset ylabel 'ms (log scale)'\nset grid ytics\n"
               "set key top left\nset xtics rotate by -30\n"
               "plot 'results.dat' using 2:xtic(1) title columnheader(2)",
            occ_epc_cost_name(o->cost));
    for (int k = 3; k <= ncols + 1; k++)
        fprintf(f, ", '' using %d title columnheader(%d)", k, k);
    fprintf(f, "\n");
    if (fclose(f))
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", path);
    if (!access("/usr/bin/gnuplot", X_OK)) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "cd '%s' && /usr/bin/gnuplot results.gp 2>/dev/null", o->out);
        if (strchr(o->out, '\'') || system(cmd) != 0)
            fprintf(stderr, "occ bench: warning: gnuplot failed; the chart script is %s/results.gp\n", o->out);
    }
    return OCC_OK;
}

int occ_cmd_bench(int argc, char **argv)
{
    bench_opts o = {0};
    o.repeat = 5;
    o.warmup = 1;
    o.epc = OCC_EPC_DEFAULT_CAP;
    o.cost = OCC_EPC_COST_SGX1;
    o.zoo = getenv("OCC_ZOO") ? getenv("OCC_ZOO") : "zoo";
    for (int c = 0; c < N_CONF; c++)
        o.use[c] = 1;
    const char *models = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--json")) {
            o.json = 1;
        } else if (!strcmp(a, "--models") || !strcmp(a, "--out") || !strcmp(a, "--zoo") ||
                   !strcmp(a, "--packs") || !strcmp(a, "--repeat") || !strcmp(a, "--warmup") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--epc") || !strcmp(a, "--cost-model") ||
                   !strcmp(a, "--configs")) {
            if (!v)
                return occ_cli_error("bench", "%s needs a value", a);
            i++;
            if (!strcmp(a, "--models"))
                models = v;
            else if (!strcmp(a, "--out"))
                o.out = v;
            else if (!strcmp(a, "--zoo"))
                o.zoo = v;
            else if (!strcmp(a, "--packs"))
                o.packs = v;
            else if (!strcmp(a, "--repeat") && occ_cli_parse_int(v, 1, 100000, &o.repeat))
                return occ_cli_error("bench", "--repeat needs a count >= 1, got '%s'", v);
            else if (!strcmp(a, "--warmup") && occ_cli_parse_int(v, 0, 100000, &o.warmup))
                return occ_cli_error("bench", "--warmup needs a count >= 0, got '%s'", v);
            else if (!strcmp(a, "--threads") && occ_cli_parse_int(v, 0, 1024, &o.threads))
                return occ_cli_error("bench", "--threads needs 0..1024, got '%s'", v);
            else if (!strcmp(a, "--epc") && (occ_parse_size(v, &o.epc) || o.epc < (1ull << 20)))
                return occ_cli_error("bench", "--epc takes a size of at least 1M such as 93M, got '%s'", v);
            else if (!strcmp(a, "--cost-model") && occ_epc_cost_parse(v, &o.cost))
                return occ_cli_error("bench", "--cost-model takes sgx1, sgx2 or none, got '%s'", v);
            else if (!strcmp(a, "--configs")) {
                for (int c = 0; c < N_CONF; c++)
                    o.use[c] = 0;
                char buf[512];
                snprintf(buf, sizeof buf, "%s", v);
                for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                    int found = 0;
                    for (int c = 0; c < N_CONF; c++)
                        if (!strcmp(t, confs[c].name))
                            o.use[c] = found = 1;
                    if (!found)
                        return occ_cli_error("bench", "unknown configuration '%s' (native, native-1t, baseline, "
                                                      "baseline-resident, occlumency-93M, occlumency-32M)", t);
                }
            }
        } else {
            usage(stderr);
            return occ_cli_error("bench", "unknown argument '%s'", a);
        }
    }
    if (!models || !*models)
        return occ_cli_error("bench", "--models a,b,c is required");
    if (!o.out)
        return occ_cli_error("bench", "--out DIR is required");
    if (mkdir(o.out, 0777) && errno != EEXIST)
        return occ_cli_error("bench", "cannot create %s: %s", o.out, strerror(errno));

    char *list = strdup(models);
    model_result *mrs = calloc(MAX_MODELS, sizeof *mrs);
    if (!list || !mrs) {
        free(list);
        free(mrs);
        return occ_cli_error("bench", "out of memory");
    }
    int n = 0, rc = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == MAX_MODELS) {
            rc = occ_cli_error("bench", "at most %d models", MAX_MODELS);
            goto done;
        }
        if (!*t || strchr(t, '/')) {
            rc = occ_cli_error("bench", "bad model name '%s'", t);
            goto done;
        }
        progress(&o, "== %s (%d)\n", t, n + 1);
        bench_model(&o, t, &mrs[n++]);
        /* Write after every model: a long run leaves partial results. */
        occ_error e = {0};
        if (write_outputs(&o, mrs, n, &e)) {
            rc = occ_cli_error("bench", "%s", e.msg);
            goto done;
        }
    }
    /* Print the Markdown table, or the JSON. */
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/results.%s", o.out, o.json ? "json" : "md");
        FILE *f = fopen(path, "r");
        if (f) {
            char line[2048];
            while (fgets(line, sizeof line, f))
                fputs(line, stdout);
            fclose(f);
        }
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < N_CONF; c++)
            if (mrs[i].r[c].ran && !ok(&mrs[i].r[c]))
                rc = 1;
    if (rc)
        fprintf(stderr, "occ bench: some configurations failed (see %s/results.csv)\n", o.out);
done:
    free(list);
    free(mrs);
    return rc;
}
