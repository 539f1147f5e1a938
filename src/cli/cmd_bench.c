/* occ bench: the paper's comparison (DESIGN §1, issue 4). For each model,
 * four configurations side by side:
 *
 *   native          no enclave (the speed reference)
 *   baseline        a naive framework in the emulated enclave (sgx1, EPC 93 MiB)
 *   occlumency-93M  occlumency in the emulated enclave, EPC and budget 93 MiB
 *   occlumency-32M  the same at 32 MiB
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
 * Writes DIR/results.csv, DIR/results.md, DIR/results.svg (gnuplot, when
 * installed; DIR/results.gp is the script either way). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/enclave_opts.h"
#include "occ/engine.h"
#include "occ/model.h"
#include "occ/packer.h"

#define N_CONF 4
#define MAX_MODELS 64

static void usage(FILE *f)
{
    fputs("usage: occ bench --models a,b,c --out DIR [options]\n"
          "\n"
          "For each model runs native, baseline in the emulated enclave (sgx1, EPC 93 MiB)\n"
          "and occlumency in the emulated enclave at 93 MiB and 32 MiB, interleaved, and\n"
          "writes DIR/results.csv, DIR/results.md and a chart DIR/results.svg.\n"
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
          "  --configs LIST  a subset of native,baseline,occlumency-93M,occlumency-32M\n"
          "  --quiet         no progress on stderr\n"
          "  -h, --help      this text\n",
          f);
}

typedef struct conf_def {
    const char *name;
    occ_mode mode;
    int emu;
    uint64_t epc; /* 0 = --epc */
} conf_def;

static const conf_def confs[N_CONF] = {
    {"native", OCC_MODE_NATIVE, 0, 0},
    {"baseline", OCC_MODE_BASELINE, 1, 0},
    {"occlumency-93M", OCC_MODE_OCCLUMENCY, 1, 0},
    {"occlumency-32M", OCC_MODE_OCCLUMENCY, 1, 32ull << 20},
};

typedef struct result {
    int ran;          /* the configuration was selected */
    char error[OCC_ERROR_MSG_SIZE];
    double median_ms, min_ms;
    int runs;
    occ_cli_enclave_report rep;
    occ_engine_stats es;
    double load_ms;
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
    int repeat, warmup, threads, quiet;
    unsigned long long epc;
    occ_epc_cost_model cost;
    int use[N_CONF];
} bench_opts;

typedef struct conf_state {
    occ_cli_enclave *enc;
    occ_engine *eng;
    double *times;
    int n;
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
        occ_engine_opts opts = {.threads = o->threads, .mode = confs[c].mode};
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
            occ_cli_enclave_begin(cs[c].enc, measured, 0);
            double t0 = occ_cli_now_ms();
            s = occ_engine_run(cs[c].eng, (const void *const *)ins, (void *const *)outs, &e);
            double ms = occ_cli_now_ms() - t0;
            if (!s)
                s = occ_cli_enclave_end(cs[c].enc, &e);
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
    }
done:
    for (int c = 0; c < N_CONF; c++)
        free_conf(&cs[c]);
    free(x);
    free(y);
    occ_model_free(m);
    occ_packfile_close(pf);
}

static int ok(const result *r)
{
    return r->ran && !r->error[0] && r->runs > 0;
}

static double geomean(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += log(v[i]);
    return n ? exp(s / n) : NAN;
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
               "load_ms,status\n");
    for (int i = 0; i < n_models; i++) {
        model_result *mr = &mrs[i];
        const result *nat = &mr->r[0], *base = &mr->r[1];
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
                fprintf(f, "%s,%s,,,,,,,,,,,,,,%llu,,,,,\"error: %s\"\n", mr->name, confs[c].name,
                        (unsigned long long)mr->weight_bytes, msg);
                continue;
            }
            char sp[32] = "", ov[32] = "";
            if (ok(base))
                snprintf(sp, sizeof sp, "%.3f", base->median_ms / r->median_ms);
            if (ok(nat))
                snprintf(ov, sizeof ov, "%.3f", r->median_ms / nat->median_ms);
            uint64_t peak = r->es.peak_enclave_bytes;
            fprintf(f, "%s,%s,%.3f,%s,%s,%llu,%llu,%llu,%llu,%llu,%.3f,%.3f,%d,%llu,%llu,%llu,%llu,%llu,%llu,%.1f,ok\n",
                    mr->name, confs[c].name, r->median_ms, sp, ov, (unsigned long long)peak,
                    (unsigned long long)r->rep.epc_faults, (unsigned long long)r->rep.evictions,
                    (unsigned long long)r->rep.transitions, (unsigned long long)r->rep.bytes_verified,
                    r->rep.charged_ms, r->min_ms, r->runs, (unsigned long long)r->rep.epc_cap_bytes,
                    (unsigned long long)r->rep.epc_peak_bytes, (unsigned long long)mr->weight_bytes,
                    (unsigned long long)r->rep.weight_bytes_verified,
                    (unsigned long long)r->rep.epc_bytes_verified, (unsigned long long)r->rep.chunks_loaded,
                    r->load_ms);
        }
    }
    if (fclose(f))
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", path);

    /* Markdown */
    snprintf(path, sizeof path, "%s/results.md", o->out);
    f = fopen(path, "w");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "| model | weights MiB | config | median ms | vs baseline | vs native | peak enclave MiB "
               "| EPC faults | evictions | transitions | MiB verified | charged ms |\n");
    fprintf(f, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double sp[MAX_MODELS], ov[MAX_MODELS], sp32[MAX_MODELS];
    int nsp = 0, nov = 0, nsp32 = 0;
    for (int i = 0; i < n_models; i++) {
        model_result *mr = &mrs[i];
        const result *nat = &mr->r[0], *base = &mr->r[1];
        for (int c = 0; c < N_CONF; c++) {
            const result *r = &mr->r[c];
            if (!r->ran)
                continue;
            if (!ok(r)) {
                fprintf(f, "| %s | %.1f | %s | error: %s | | | | | | | | |\n", mr->name,
                        (double)mr->weight_bytes / (1 << 20), confs[c].name, r->error);
                continue;
            }
            char s1[32] = "", s2[32] = "";
            if (ok(base))
                snprintf(s1, sizeof s1, "%.2fx", base->median_ms / r->median_ms);
            if (ok(nat))
                snprintf(s2, sizeof s2, "%.2fx", r->median_ms / nat->median_ms);
            fprintf(f, "| %s | %.1f | %s | %.2f | %s | %s | %.1f | %llu | %llu | %llu | %.1f | %.2f |\n",
                    mr->name, (double)mr->weight_bytes / (1 << 20), confs[c].name, r->median_ms, s1, s2,
                    (double)r->es.peak_enclave_bytes / (1 << 20), (unsigned long long)r->rep.epc_faults,
                    (unsigned long long)r->rep.evictions, (unsigned long long)r->rep.transitions,
                    (double)r->rep.bytes_verified / (1 << 20), r->rep.charged_ms);
        }
        const result *o93 = &mr->r[2], *o32 = &mr->r[3];
        if (nsp < MAX_MODELS && ok(base) && ok(o93) && mr->weight_bytes > o->epc)
            sp[nsp++] = base->median_ms / o93->median_ms;
        if (nsp32 < MAX_MODELS && ok(base) && ok(o32) && mr->weight_bytes > o->epc)
            sp32[nsp32++] = base->median_ms / o32->median_ms;
        if (nov < MAX_MODELS && ok(nat) && ok(o93))
            ov[nov++] = o93->median_ms / nat->median_ms;
    }
    fprintf(f, "\n");
    if (nsp)
        fprintf(f, "- occlumency-93M over baseline, geometric mean over the %d model(s) whose weights "
                   "exceed the EPC (%.0f MiB): **%.2fx**\n",
                nsp, (double)o->epc / (1 << 20), geomean(sp, nsp));
    if (nsp32)
        fprintf(f, "- occlumency-32M over baseline, same models: **%.2fx**\n", geomean(sp32, nsp32));
    if (nov)
        fprintf(f, "- occlumency-93M over native, geometric mean over %d model(s): **%.3f**\n", nov,
                geomean(ov, nov));
    fprintf(f, "\nCost model %s; %d measured round(s) after %d warm-up round(s), median; threads %d "
               "(0 = all cores). Counters are per inference.\n",
            occ_epc_cost_name(o->cost), o->repeat, o->warmup, o->threads);
    if (fclose(f))
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
                        return occ_cli_error("bench", "unknown configuration '%s' (native, baseline, "
                                                      "occlumency-93M, occlumency-32M)", t);
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
    /* Print the Markdown table. */
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/results.md", o.out);
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
