/* The emulated enclave for the CLI: see enclave_opts.h.
 *
 * In the emulated build host and enclave share one process. What makes the
 * emulation honest is that the engine (trusted) gets its memory only from the
 * EPC emulator (occ_epc_provider) and reaches the host only through the
 * ocall table, wrapped by the counting boundary (occ_boundary): each weight
 * read is one read_chunk ocall, counted and charged a transition. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/enclave_opts.h"
#include "host/ocalls_file.h"

static void engine_stats(const occ_engine *eng, occ_engine_stats *out)
{
    memset(out, 0, sizeof *out);
    if (eng)
        occ_engine_get_stats(eng, out);
}

const char occ_cli_enclave_usage[] =
    "  --enclave emu|none  run inside the emulated SGX enclave (EPC emulator, counted\n"
    "                      and charged boundary), or natively (default: none)\n"
    "  --epc SIZE          usable EPC: resident enclave memory cap (default 93M)\n"
    "  --cost-model M      sgx1 (40k cycles a fault, 10k a transition; default),\n"
    "                      sgx2 (large EPC: nothing pages), none (count only)\n"
    "  --trace FILE        write the enclave page faults and weight-chunk loads of one\n"
    "                      inference (the first timed one), one event per line\n"
    "  --record-boundary FILE  (tests) append every byte that crosses the enclave\n"
    "                      boundary to FILE (docs/security.md)\n";

struct occ_cli_enclave {
    occ_cli_enclave_opts o;
    occ_packfile *pf;
    occ_epc *epc;
    occ_mem_provider mem;
    occ_host_files files;
    occ_ocalls host_ocalls;
    occ_boundary *bnd;
    occ_ocall_reader reader;
    FILE *trace, *record;
    int traced;      /* the trace was written */
    int tracing;     /* the current inference is traced */
    int measuring;
    occ_epc_stats create0, created, before;
    uint64_t created_transitions;
    occ_boundary_stats bbefore;
    occ_engine_stats ebefore;
    const occ_engine *eng;
    int have_created;
    /* sums over the measured inferences */
    occ_cli_enclave_report sum;
    uint64_t charged_ns, service_ns, handle_ns, wait_ns, excess_ns, overruns;
};

void occ_cli_enclave_opts_default(occ_cli_enclave_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epc_size = OCC_EPC_DEFAULT_CAP;
    o->region_size = 16ull << 30;
    o->cost = OCC_EPC_COST_SGX1;
}

int occ_cli_enclave_arg(occ_cli_enclave_opts *o, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--enclave") && strcmp(a, "--epc") && strcmp(a, "--epc-region") &&
        strcmp(a, "--cost-model") && strcmp(a, "--trace") && strcmp(a, "--record-boundary"))
        return 0;
    if (*i + 1 >= argc) {
        occ_cli_error(cmd, "%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (!strcmp(a, "--enclave")) {
        if (!strcmp(v, "emu"))
            o->emu = 1;
        else if (!strcmp(v, "none"))
            o->emu = 0;
        else {
            occ_cli_error(cmd, "--enclave takes emu or none, got '%s'", v);
            return -1;
        }
    } else if (!strcmp(a, "--epc") || !strcmp(a, "--epc-region")) {
        unsigned long long n;
        if (occ_parse_size(v, &n) || n < 16 * OCC_EPC_PAGE_SIZE || n > (1ull << 46)) {
            occ_cli_error(cmd, "%s takes a size such as 93M or 1G (at least 64K), got '%s'", a, v);
            return -1;
        }
        if (!strcmp(a, "--epc"))
            o->epc_size = n;
        else
            o->region_size = n;
    } else if (!strcmp(a, "--cost-model")) {
        if (occ_epc_cost_parse(v, &o->cost)) {
            occ_cli_error(cmd, "--cost-model takes sgx1, sgx2 or none, got '%s'", v);
            return -1;
        }
    } else if (!strcmp(a, "--trace")) {
        o->trace_path = v;
    } else {
        o->record_path = v;
    }
    return 1;
}

static void on_chunk(void *ctx, uint32_t chunk)
{
    occ_cli_enclave *s = ctx;
    /* A no-op unless the EPC is tracing (the traced inference). */
    occ_epc_trace_event(s->epc, "chunk", chunk);
}

occ_status occ_cli_enclave_open(const occ_cli_enclave_opts *o, occ_packfile *pf,
                                occ_cli_enclave **out, occ_error *e)
{
    *out = NULL;
    if (!o->emu && (o->trace_path || o->record_path))
        return occ_fail(e, OCC_ERR_INVALID, "--trace and --record-boundary need --enclave emu");
    occ_cli_enclave *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->pf = pf;
    occ_status st = OCC_OK;
    if (o->emu) {
        occ_epc_opts eo;
        occ_epc_opts_default(&eo);
        eo.cap_size = o->epc_size;
        eo.region_size = o->region_size > o->epc_size ? o->region_size : o->epc_size;
        eo.cost = o->cost;
        if ((st = occ_epc_create(&eo, &s->epc, e)))
            goto fail;
        occ_epc_provider(s->epc, &s->mem);
        if (o->trace_path && !(s->trace = fopen(o->trace_path, "w"))) {
            st = occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", o->trace_path, strerror(errno));
            goto fail;
        }
        if (o->record_path && !(s->record = fopen(o->record_path, "wb"))) {
            st = occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", o->record_path, strerror(errno));
            goto fail;
        }
    }
    s->files.packs = &s->pf;
    s->files.n_packs = 1;
    occ_host_files_ocalls(&s->files, &s->host_ocalls);
    occ_boundary_opts bo = {.epc = s->epc, .record_file = s->record};
    if ((st = occ_boundary_create(&bo, &s->host_ocalls, NULL, &s->bnd, e)))
        goto fail;
    s->reader.ocalls = occ_boundary_ocalls(s->bnd);
    s->reader.pack_id = 0;
    if (s->epc)
        occ_epc_get_stats(s->epc, &s->create0);
    *out = s;
    return OCC_OK;
fail:
    occ_cli_enclave_close(s);
    return st;
}

void occ_cli_enclave_close(occ_cli_enclave *s)
{
    if (!s)
        return;
    if (s->epc)
        occ_epc_trace_stop(s->epc);
    occ_boundary_free(s->bnd);
    /* Only after the engine using it is gone (the caller's order). */
    occ_epc_destroy(s->epc);
    if (s->trace)
        fclose(s->trace);
    if (s->record)
        fclose(s->record);
    free(s);
}

void occ_cli_enclave_engine(occ_cli_enclave *s, occ_engine_opts *opts, occ_read_fn *read,
                            void **read_ctx)
{
    if (s->epc) {
        opts->mem = &s->mem;
        opts->on_chunk = on_chunk;
        opts->hook_ctx = s;
    }
    *read = occ_ocall_read;
    *read_ctx = &s->reader;
}

void occ_cli_enclave_created(occ_cli_enclave *s, const occ_engine *eng)
{
    s->eng = eng;
    s->have_created = 1;
    occ_boundary_stats b;
    occ_boundary_get_stats(s->bnd, &b);
    s->created_transitions = b.transitions;
    if (s->epc)
        occ_epc_get_stats(s->epc, &s->created);
}

int occ_cli_enclave_is_emu(const occ_cli_enclave *s)
{
    return s && s->epc != NULL;
}

occ_epc *occ_cli_enclave_epc(occ_cli_enclave *s)
{
    return s->epc;
}

occ_boundary *occ_cli_enclave_boundary(occ_cli_enclave *s)
{
    return s->bnd;
}

void occ_cli_enclave_begin(occ_cli_enclave *s, int measure, int trace)
{
    s->measuring = measure;
    if (s->epc)
        occ_epc_get_stats(s->epc, &s->before);
    occ_boundary_get_stats(s->bnd, &s->bbefore);
    engine_stats(s->eng, &s->ebefore);
    s->tracing = trace && s->trace && !s->traced;
    if (s->tracing)
        occ_epc_trace_start(s->epc, s->trace, 0);
}

occ_status occ_cli_enclave_end(occ_cli_enclave *s, occ_error *e)
{
    occ_status st = OCC_OK;
    if (s->tracing) {
        occ_epc_trace_stop(s->epc);
        if (fflush(s->trace))
            st = occ_fail(e, OCC_ERR_IO, "cannot write %s", s->o.trace_path);
        s->traced = 1;
        s->tracing = 0;
    }
    if (s->epc) {
        occ_status c = occ_epc_check(s->epc, e);
        if (c)
            return c;
    }
    if (st)
        return st;
    if (s->measuring) {
        occ_boundary_stats b;
        occ_boundary_get_stats(s->bnd, &b);
        occ_engine_stats es;
        engine_stats(s->eng, &es);
        s->sum.inferences++;
        s->sum.transitions += b.transitions - s->bbefore.transitions;
        s->sum.boundary_bytes_in += b.bytes_in - s->bbefore.bytes_in;
        s->sum.weight_bytes_verified += es.bytes_verified - s->ebefore.bytes_verified;
        s->sum.chunks_loaded += es.chunks_loaded - s->ebefore.chunks_loaded;
        if (s->epc) {
            occ_epc_stats a;
            occ_epc_get_stats(s->epc, &a);
            s->sum.epc_faults += a.charged_faults - s->before.charged_faults;
            s->sum.epc_reloads += a.faults - s->before.faults;
            s->sum.epc_first_touch += a.first_touch - s->before.first_touch;
            s->sum.evictions += a.evictions - s->before.evictions;
            s->sum.epc_bytes_verified += a.bytes_verified - s->before.bytes_verified;
            s->charged_ns += a.charged_ns - s->before.charged_ns;
            s->service_ns += a.service_ns - s->before.service_ns;
            s->handle_ns += a.handle_ns - s->before.handle_ns;
            s->wait_ns += a.wait_ns - s->before.wait_ns;
            s->excess_ns += a.excess_ns - s->before.excess_ns;
            s->overruns += a.overrun_faults - s->before.overrun_faults;
        }
    }
    s->measuring = 0;
    return OCC_OK;
}

static uint64_t per(uint64_t sum, uint64_t n)
{
    return n ? (sum + n / 2) / n : 0;
}

void occ_cli_enclave_get_report(occ_cli_enclave *s, const occ_engine *eng, occ_cli_enclave_report *r)
{
    uint64_t n = s->sum.inferences;
    memset(r, 0, sizeof *r);
    r->inferences = n;
    r->epc_faults = per(s->sum.epc_faults, n);
    r->epc_reloads = per(s->sum.epc_reloads, n);
    r->epc_first_touch = per(s->sum.epc_first_touch, n);
    r->evictions = per(s->sum.evictions, n);
    r->transitions = per(s->sum.transitions, n);
    r->epc_bytes_verified = per(s->sum.epc_bytes_verified, n);
    r->weight_bytes_verified = per(s->sum.weight_bytes_verified, n);
    r->bytes_verified = r->epc_bytes_verified + r->weight_bytes_verified;
    r->chunks_loaded = per(s->sum.chunks_loaded, n);
    r->boundary_bytes_in = per(s->sum.boundary_bytes_in, n);
    r->charged_ms = n ? (double)s->charged_ns / 1e6 / (double)n : 0;
    r->service_ms = n ? (double)s->service_ns / 1e6 / (double)n : 0;
    r->handle_ms = n ? (double)s->handle_ns / 1e6 / (double)n : 0;
    r->wait_ms = n ? (double)s->wait_ns / 1e6 / (double)n : 0;
    r->excess_ms = n ? (double)s->excess_ns / 1e6 / (double)n : 0;
    r->overrun_faults = per(s->overruns, n);
    r->create_transitions = s->created_transitions;
    if (s->epc) {
        occ_epc_stats a;
        occ_epc_get_stats(s->epc, &a);
        r->epc_cap_bytes = a.cap_size;
        r->epc_peak_bytes = a.peak_allocated_size;
        r->epc_resident_bytes = a.resident_size;
        if (s->have_created) {
            r->create_epc_faults = s->created.charged_faults - s->create0.charged_faults;
            r->create_charged_ms = (double)(s->created.charged_ns - s->create0.charged_ns) / 1e6;
        }
    }
    if (eng) {
        occ_engine_stats es;
        engine_stats(eng, &es);
        r->peak_enclave_bytes = es.peak_enclave_bytes;
        r->budget_bytes = es.budget_bytes;
        r->plan_peak_bytes = es.plan_peak_bytes;
    }
}

/* Sets a number, replacing a field of the same name (occ run's engine stats
 * report cumulative figures under some of the same names; with --enclave emu
 * they are per inference). */
static void set_num(cJSON *root, const char *key, double v)
{
    if (cJSON_GetObjectItemCaseSensitive(root, key))
        cJSON_ReplaceItemInObjectCaseSensitive(root, key, cJSON_CreateNumber(v));
    else
        cJSON_AddNumberToObject(root, key, v);
}

void occ_cli_enclave_json(occ_cli_enclave *s, const occ_engine *eng, cJSON *root)
{
    if (!occ_cli_enclave_is_emu(s))
        return;
    occ_cli_enclave_report r;
    occ_cli_enclave_get_report(s, eng, &r);
    cJSON_AddStringToObject(root, "enclave", "emu");
    cJSON_AddStringToObject(root, "cost_model", occ_epc_cost_name(s->o.cost));
    set_num(root, "epc_cap_bytes", (double)r.epc_cap_bytes);
    /* Per inference (mean over the timed runs): */
    set_num(root, "epc_faults", (double)r.epc_faults);
    set_num(root, "epc_reloads", (double)r.epc_reloads);
    set_num(root, "epc_first_touch", (double)r.epc_first_touch);
    set_num(root, "evictions", (double)r.evictions);
    set_num(root, "transitions", (double)r.transitions);
    set_num(root, "bytes_verified", (double)r.bytes_verified);
    set_num(root, "epc_bytes_verified", (double)r.epc_bytes_verified);
    set_num(root, "weight_bytes_verified", (double)r.weight_bytes_verified);
    set_num(root, "chunks_loaded", (double)r.chunks_loaded);
    set_num(root, "boundary_bytes_in", (double)r.boundary_bytes_in);
    set_num(root, "charged_ms", r.charged_ms);
    set_num(root, "emu_service_ms", r.service_ms);
    /* each fault's charge against the emulator's own time for it
     * (docs/emulation.md, "What a fault costs") */
    set_num(root, "emu_handle_ms", r.handle_ms);
    set_num(root, "emu_wait_ms", r.wait_ms);
    set_num(root, "emu_excess_ms", r.excess_ms);
    set_num(root, "emu_overrun_faults", (double)r.overrun_faults);
    /* Whole session: */
    set_num(root, "epc_peak_bytes", (double)r.epc_peak_bytes);
    set_num(root, "epc_resident_bytes", (double)r.epc_resident_bytes);
    set_num(root, "create_epc_faults", (double)r.create_epc_faults);
    set_num(root, "create_charged_ms", r.create_charged_ms);
    set_num(root, "create_transitions", (double)r.create_transitions);
    if (!cJSON_GetObjectItemCaseSensitive(root, "peak_enclave_bytes"))
        set_num(root, "peak_enclave_bytes", (double)r.peak_enclave_bytes);
    cJSON_AddStringToObject(root, "integrity", "ok");
}

void occ_cli_enclave_print(occ_cli_enclave *s, const occ_engine *eng, FILE *f)
{
    if (!occ_cli_enclave_is_emu(s))
        return;
    occ_cli_enclave_report r;
    occ_cli_enclave_get_report(s, eng, &r);
    fprintf(f,
            "enclave (emu, %s, EPC %.1f MiB), per inference: %llu EPC faults, %llu evictions, "
            "%llu transitions, %.1f MiB verified, %.2f ms charged (emulator time beyond the "
            "cost model %.2f ms); EPC peak %.1f MiB; integrity ok\n",
            occ_epc_cost_name(s->o.cost), (double)r.epc_cap_bytes / (1 << 20),
            (unsigned long long)r.epc_faults, (unsigned long long)r.evictions,
            (unsigned long long)r.transitions, (double)r.bytes_verified / (1 << 20), r.charged_ms,
            r.excess_ms, (double)r.epc_peak_bytes / (1 << 20));
}
