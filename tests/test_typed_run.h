/* One typed node through the engine, for the typed-tensor tests
 * (test_ops_typed.c, test_ops_dtypes.c): run_op builds a graph of one node
 * over weight or graph inputs of any dtype, runs it once, and keeps the
 * outputs; expect_out / expect_fail check them. */
#ifndef OCC_TEST_TYPED_RUN_H
#define OCC_TEST_TYPED_RUN_H

#include "test_ops_util.h"

typedef struct tv {
    uint32_t dt;
    int ndim;
    int64_t dims[4];
    const void *data;
    int weight;
} tv;

typedef struct res {
    occ_status st;       /* of create (infer) or run */
    int at_run;          /* st came from the run */
    char msg[OCC_ERROR_MSG_SIZE];
    uint32_t nout;
    occ_tensor t[4];
    void *out[4];
} res;

static const char *const tnames[] = {"in0", "in1", "in2", "in3", "in4"};
static const char *const onames[] = {"out0", "out1", "out2", "out3"};

/* One node `op` over the inputs (weights or graph inputs), nout outputs, all
 * graph outputs; runs it once through the engine. */
static void run_op(res *r, const char *op, int nin, const tv *in, uint32_t nout, int na,
                   const occ_attr *a)
{
    tb b;
    occ_error e = {0};
    tb_init(&b);
    memset(r, 0, sizeof *r);
    int ids[8];
    const void *gin[8];
    int ngin = 0;
    for (int k = 0; k < nin; k++) {
        if (!in[k].data) {
            ids[k] = -1;
            continue;
        }
        ids[k] = in[k].weight ? tb_weight(&b, tnames[k], in[k].ndim, in[k].dims, in[k].data)
                              : tb_input(&b, tnames[k], in[k].ndim, in[k].dims);
        occ_tensor *t = &b.t[ids[k]];
        t->dtype = in[k].dt;
        t->size = (uint64_t)occ_tensor_count(t) * occ_dtype_size(in[k].dt);
        if (!in[k].weight)
            gin[ngin++] = in[k].data;
    }
    int outs[4];
    for (uint32_t k = 0; k < nout; k++)
        outs[k] = tb_act(&b, onames[k]);
    occ_node *n = tb_node(&b, op, nin, ids, outs[0], na, a);
    n->n_outputs = nout;
    for (uint32_t k = 0; k < nout; k++) {
        b.io[b.m.n_nodes - 1][1][k] = outs[k];
        tb_output(&b, outs[k]);
    }
    occ_engine *eng = NULL;
    occ_engine_opts o = {.threads = 1};
    r->st = tb_finish(&b, &e);
    if (!r->st)
        r->st = occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e);
    if (!r->st) {
        r->nout = nout;
        for (uint32_t k = 0; k < nout; k++) {
            r->t[k] = b.t[outs[k]];
            r->out[k] = malloc((size_t)r->t[k].size + 8);
            memset(r->out[k], 0xA5, (size_t)r->t[k].size + 8);
        }
        r->at_run = 1;
        r->st = occ_engine_run(eng, gin, r->out, &e);
    }
    snprintf(r->msg, sizeof r->msg, "%s", e.msg);
    occ_engine_free(eng);
    tb_free(&b);
}

static void res_free(res *r)
{
    for (uint32_t k = 0; k < 4; k++)
        free(r->out[k]);
    memset(r, 0, sizeof *r);
}

/* Output k has dtype dt, the given shape and bytes. */
static void expect_out(const char *label, const res *r, uint32_t k, uint32_t dt, int ndim,
                       const int64_t *dims, const void *bytes)
{
    CHECK_MSG(r->st == OCC_OK, "%s: %s", label, r->msg);
    if (r->st || k >= r->nout)
        return;
    const occ_tensor *t = &r->t[k];
    int same = t->ndim == ndim && occ_tensor_dtype(t) == dt;
    for (int d = 0; same && d < ndim; d++)
        same = t->dims[d] == dims[d];
    CHECK_MSG(same, "%s: output %u is %s rank %d", label, k,
              occ_dtype_name(occ_tensor_dtype(t)) ? occ_dtype_name(occ_tensor_dtype(t)) : "?",
              t->ndim);
    if (same)
        CHECK_MSG(!memcmp(r->out[k], bytes, (size_t)t->size), "%s: output %u values differ", label, k);
}

static void expect_fail(const char *label, const res *r, occ_status st, int at_run,
                        const char *needle)
{
    CHECK_MSG(r->st == st && r->at_run == at_run, "%s: status %d at %s (want %d at %s): %s",
              label, (int)r->st, r->at_run ? "run" : "create", (int)st, at_run ? "run" : "create",
              r->msg);
    CHECK_MSG(strstr(r->msg, needle) != NULL, "%s: '%s' lacks '%s'", label, r->msg, needle);
}

#endif
