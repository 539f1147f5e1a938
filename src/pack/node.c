/* ONNX nodes -> occ_node (the packer's node conversion, split out of
 * onnx_import.c): attributes copied and checked, the constant operands an
 * operator's kernel reads as attributes (conv_rule: Reshape's shape, Slice's
 * starts, ...), Constant nodes, RNN activation lists. The ONNX bytes are
 * untrusted: every failure is a status with a message naming the node. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/packer.h"
#include "ops/ops.h"
#include "pack/imp_graph.h"

/* K_FLOATS_OPT: floats when constant, dropped when computed at run time
 * (Resize's roi, which only tf_crop_and_resize reads) */
enum { K_INTS = 1, K_FLOATS, K_FLOAT, K_IGNORE, K_FLOATS_OPT };

typedef struct conv_rule {
    const char *op;
    int idx;
    const char *attr;
    int kind;
} conv_rule;

static const conv_rule rules[] = {
    {"Reshape", 1, "shape", K_INTS},
    {"Pad", 1, "pads", K_INTS}, {"Pad", 2, "value", K_FLOAT}, {"Pad", 3, "axes", K_INTS},
    {"Clip", 1, "min", K_FLOAT}, {"Clip", 2, "max", K_FLOAT},
    {"Squeeze", 1, "axes", K_INTS}, {"Unsqueeze", 1, "axes", K_INTS},
    {"Resize", 1, "roi", K_FLOATS_OPT}, {"Resize", 2, "scales", K_FLOATS}, {"Resize", 3, "sizes", K_INTS},
    {"Upsample", 1, "scales", K_FLOATS},
    {"Slice", 1, "starts", K_INTS}, {"Slice", 2, "ends", K_INTS}, {"Slice", 3, "axes", K_INTS},
    {"Slice", 4, "steps", K_INTS},
    {"Split", 1, "split", K_INTS},
    {"Expand", 1, "shape", K_INTS}, {"Tile", 1, "repeats", K_INTS}, {"TopK", 1, "k", K_INTS},
    {"ReduceMean", 1, "axes", K_INTS}, {"ReduceSum", 1, "axes", K_INTS},
    {"ReduceMax", 1, "axes", K_INTS}, {"ReduceMin", 1, "axes", K_INTS},
    {"ReduceProd", 1, "axes", K_INTS}, {"ReduceL1", 1, "axes", K_INTS},
    {"ReduceL2", 1, "axes", K_INTS}, {"ReduceSumSquare", 1, "axes", K_INTS},
    {"ReduceLogSumExp", 1, "axes", K_INTS}, {"ReduceLogSum", 1, "axes", K_INTS},
    {"LSTM", 4, "sequence_lens", K_INTS}, {"GRU", 4, "sequence_lens", K_INTS},
    {"RNN", 4, "sequence_lens", K_INTS},
    {"OneHot", 1, "depth", K_FLOAT}, {"CumSum", 1, "axis", K_INTS},
    {"HannWindow", 0, "size", K_INTS}, {"HammingWindow", 0, "size", K_INTS},
    {"BlackmanWindow", 0, "size", K_INTS},
    {"DFT", 1, "dft_length", K_INTS}, {"STFT", 1, "frame_step", K_INTS},
    {"STFT", 3, "frame_length", K_INTS}, {"MaxUnpool", 2, "output_shape", K_INTS},
    {"MelWeightMatrix", 0, "num_mel_bins", K_INTS}, {"MelWeightMatrix", 1, "dft_length", K_INTS},
    {"MelWeightMatrix", 2, "sample_rate", K_INTS},
    {"MelWeightMatrix", 3, "lower_edge_hertz", K_FLOAT},
    {"MelWeightMatrix", 4, "upper_edge_hertz", K_FLOAT},
    {NULL, 0, NULL, 0},
};

static const conv_rule resize10 = {"Resize", 1, "scales", K_FLOATS};

static const conv_rule *find_rule(const char *op, int64_t opset, int idx)
{
    if (!strcmp(op, "Resize") && opset < 11)
        return idx == 1 ? &resize10 : NULL;
    for (const conv_rule *r = rules; r->op; r++)
        if (r->idx == idx && !strcmp(r->op, op))
            return r;
    return NULL;
}

static int rule_replaces_attr(const char *op, int64_t opset, const char *attr, const int32_t *ins,
                              size_t nin)
{
    for (size_t k = 0; k < nin; k++) {
        const conv_rule *r = find_rule(op, opset, (int)k);
        if (r && ins[k] >= 0 && !strcmp(r->attr, attr))
            return 1;
    }
    return 0;
}

static occ_status copy_onnx_attr(imp_ctx *c, const Onnx__AttributeProto *a, occ_attr *o)
{
    occ_error *e = c->e;
    if (!a->name || !*a->name)
        return occ_fail(e, OCC_ERR_FORMAT, "attribute without a name");
    o->name = a->name;
    if (!a->has_type)
        return occ_fail(e, OCC_ERR_FORMAT, "attribute '%s' has no type", a->name);
    switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        o->type = OCC_ATTR_INT;
        o->i = a->i;
        o->count = 1;
        return OCC_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        o->type = OCC_ATTR_FLOAT;
        o->f = a->f;
        o->count = 1;
        return OCC_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        if (a->n_ints > UINT32_MAX)
            return occ_fail(e, OCC_ERR_FORMAT, "attribute '%s' too long", a->name);
        o->type = OCC_ATTR_INTS;
        o->ints = a->ints;
        o->count = (uint32_t)a->n_ints;
        return OCC_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        if (a->n_floats > UINT32_MAX)
            return occ_fail(e, OCC_ERR_FORMAT, "attribute '%s' too long", a->name);
        o->type = OCC_ATTR_FLOATS;
        o->floats = a->floats;
        o->count = (uint32_t)a->n_floats;
        return OCC_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
        if (a->s.len > (1u << 20) || (a->s.len && memchr(a->s.data, 0, a->s.len)))
            return occ_fail(e, OCC_ERR_INVALID, "attribute '%s' is not a valid string", a->name);
        char *s = imp_alloc(c->A, a->s.len + 1);
        if (!s)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        if (a->s.len)
            memcpy(s, a->s.data, a->s.len);
        o->type = OCC_ATTR_STRING;
        o->s = s;
        o->count = (uint32_t)a->s.len;
        return OCC_OK;
    }
    default:
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "attribute '%s' has a type (%d) that is not supported "
                        "(tensors, graphs and string lists)", a->name, (int)a->type);
    }
}

/* RNN, GRU and LSTM "activations" is a string list, one entry per gate
 * function per direction. Exporters write it out even when it spells the
 * defaults (torch: RNN ["Tanh", "Tanh"] when bidirectional, ["Relu"] for
 * nonlinearity='relu'), so the defaults are dropped here (*skip) and an
 * all-Relu RNN becomes the one string "Relu", which the kernel implements;
 * anything else is refused with the list's first unsupported entry. */
static int bytes_ieq(const ProtobufCBinaryData *v, const char *w)
{
    size_t n = strlen(w);
    if (v->len != n)
        return 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char a = v->data[k], b = (unsigned char)w[k];
        if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != (b >= 'A' && b <= 'Z' ? b + 32 : b))
            return 0;
    }
    return 1;
}

static occ_status rnn_activations(imp_ctx *c, const char *op, const Onnx__AttributeProto *a,
                                  occ_attr *o, int *skip)
{
    static const char *const defs[3][3] = {{"Tanh"}, {"Sigmoid", "Tanh"},
                                           {"Sigmoid", "Tanh", "Tanh"}};
    const int kind = !strcmp(op, "RNN") ? 0 : !strcmp(op, "GRU") ? 1 : 2;
    const size_t per = (size_t)kind + 1, n = a->n_strings;
    if (n == 0 || n % per || n > 2 * per)
        return occ_fail(c->e, OCC_ERR_INVALID, "%s: 'activations' has %zu entries (%zu per "
                        "direction expected)", op, n, per);
    int dflt = 1, relu = kind == 0;
    for (size_t k = 0; k < n; k++) {
        const ProtobufCBinaryData *v = &a->strings[k];
        const char *d = defs[kind][k % per];
        dflt &= bytes_ieq(v, d);
        relu &= bytes_ieq(v, "Relu");
    }
    *skip = dflt;
    if (dflt)
        return OCC_OK;
    if (!relu)
        return occ_fail(c->e, OCC_ERR_UNSUPPORTED, "%s with custom activations is not supported "
                        "(the defaults, or Relu for every direction of an RNN)", op);
    *o = (occ_attr){.name = "activations", .type = OCC_ATTR_STRING, .count = 4, .s = "Relu"};
    return OCC_OK;
}

/* Turns the constant operand `val` into attribute `o` following rule r. */
static occ_status operand_to_attr(imp_ctx *c, const conv_rule *r, const imp_val *val, occ_attr *o,
                                  int *skip)
{
    occ_error *e = c->e;
    const imp_cval *cv = &val->c;
    *skip = r->kind == K_IGNORE || cv->count == 0;
    if (*skip)
        return OCC_OK;
    if (cv->ndim > 1)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "constant input for '%s' must be 1-D", r->attr);
    if (cv->count > 4096)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "constant input for '%s' has %lld values",
                        r->attr, (long long)cv->count);
    o->name = r->attr;
    switch (r->kind) {
    case K_INTS: {
        if (cv->type != CV_INT)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "input for '%s' must be an integer tensor",
                            r->attr);
        int64_t *v = imp_alloc(c->A, (size_t)cv->count * sizeof *v);
        if (!v)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        memcpy(v, cv->i, (size_t)cv->count * sizeof *v);
        o->type = OCC_ATTR_INTS;
        o->ints = v;
        o->count = (uint32_t)cv->count;
        return OCC_OK;
    }
    case K_FLOATS:
    case K_FLOATS_OPT: {
        float *v = imp_alloc(c->A, (size_t)cv->count * sizeof *v);
        if (!v)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        for (int64_t k = 0; k < cv->count; k++)
            v[k] = cv->type == CV_FLOAT ? cv->f[k] : (float)cv->i[k];
        o->type = OCC_ATTR_FLOATS;
        o->floats = v;
        o->count = (uint32_t)cv->count;
        return OCC_OK;
    }
    default:
        if (cv->count != 1)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "input for '%s' must be a scalar", r->attr);
        o->type = OCC_ATTR_FLOAT;
        o->f = cv->type == CV_FLOAT ? cv->f[0] : (float)cv->i[0];
        o->count = 1;
        return OCC_OK;
    }
}

static occ_status parse_constant_node(imp_ctx *c, const Onnx__NodeProto *n, imp_cval *cv)
{
    occ_error *e = c->e;
    memset(cv, 0, sizeof *cv);
    if (n->n_attribute != 1 || !n->attribute[0] || !n->attribute[0]->name)
        return occ_fail(e, OCC_ERR_FORMAT, "Constant needs exactly one value attribute");
    const Onnx__AttributeProto *a = n->attribute[0];
    const char *nm = a->name;
    if (!strcmp(nm, "value")) {
        if (!a->t)
            return occ_fail(e, OCC_ERR_FORMAT, "Constant 'value' is not a tensor");
        return imp_tensor_parse(a->t, cv, e);
    }
    int isf = !strcmp(nm, "value_float") || !strcmp(nm, "value_floats");
    int isi = !strcmp(nm, "value_int") || !strcmp(nm, "value_ints");
    if (!isf && !isi)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "Constant attribute '%s' is not supported", nm);
    int list = nm[strlen(nm) - 1] == 's';
    cv->type = isf ? CV_FLOAT : CV_INT;
    if (list) {
        size_t cnt = isf ? a->n_floats : a->n_ints;
        if (cnt > (size_t)IMP_MAX_ELEMS)
            return occ_fail(e, OCC_ERR_FORMAT, "Constant too large");
        cv->ndim = 1;
        cv->dims[0] = (int64_t)cnt;
        cv->count = (int64_t)cnt;
    } else {
        if (isf ? !a->has_f : !a->has_i)
            return occ_fail(e, OCC_ERR_FORMAT, "Constant '%s' has no value", nm);
        cv->count = 1;
    }
    occ_status s = imp_cval_alloc(cv, e);
    if (s)
        return s;
    for (int64_t k = 0; k < cv->count; k++) {
        if (isf)
            cv->f[k] = list ? a->floats[k] : a->f;
        else
            cv->i[k] = list ? a->ints[k] : a->i;
    }
    return OCC_OK;
}

occ_status imp_add_node(imp_ctx *c, occ_node **out)
{
    if (c->nn == c->ncap) {
        uint32_t cap = c->ncap ? c->ncap * 2 : 128;
        occ_node *nodes = realloc(c->nodes, cap * sizeof *nodes);
        if (!nodes)
            return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        c->nodes = nodes;
        uint8_t *dead = realloc(c->dead, cap);
        if (!dead)
            return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        c->dead = dead;
        c->ncap = cap;
    }
    c->dead[c->nn] = 0;
    *out = &c->nodes[c->nn];
    memset(*out, 0, sizeof **out);
    c->nn++;
    return OCC_OK;
}

/* Converts one ONNX node (inputs already known). */
occ_status imp_convert_node(imp_ctx *c, const Onnx__NodeProto *n, const char *name, int32_t *ins)
{
    occ_error *e = c->e;
    const char *op = n->op_type;
    size_t nin = n->n_input, nout = n->n_output;
    occ_status s;

    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "operator domain '%s' is not supported", n->domain);
    /* trailing outputs nobody reads (MaxPool's Indices, BatchNormalization's
     * training statistics, Dropout's mask) are dropped */
    /* (not Split's: their count sets the part sizes) */
    while (nout > 1 && strcmp(op, "Split") &&
           (!*n->output[nout - 1] || imp_map_get(&c->consumed, n->output[nout - 1]) < 0))
        nout--;
    while (nout && !*n->output[nout - 1])
        nout--;
    if (nout == 0)
        return occ_fail(e, OCC_ERR_FORMAT, "node has no outputs");

    for (size_t k = 0; k < nin; k++) {
        const char *in = n->input[k];
        ins[k] = *in ? imp_map_get(&c->names, in) : -1;
        if (*in && ins[k] < 0)
            return occ_fail(e, OCC_ERR_FORMAT, "input '%s' is undefined", in);
        if (ins[k] >= 0 && c->v[ins[k]].undefined)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "input '%s' is the mask output of a Dropout, "
                            "which does not exist at inference", in);
    }

    if (!strcmp(op, "Constant")) {
        imp_cval cv;
        s = parse_constant_node(c, n, &cv);
        if (s) {
            imp_cval_clear(&cv);
            return s;
        }
        int32_t idx = imp_val_new(c, n->output[0]);
        if (idx < 0) {
            imp_cval_clear(&cv);
            return idx;
        }
        imp_val_set_const(c, idx, &cv);
        c->stats.folded++;
        return OCC_OK;
    }
    if (!strcmp(op, "If"))
        return imp_inline_if(c, n, name, ins, nin, nout);
    if (!strcmp(op, "Einsum") && nin > 2)
        return imp_split_einsum(c, n, name, nin);
    if (!strcmp(op, "Concat") && nin > 1) {
        /* empty inputs add nothing and are dropped, whatever their rank:
         * torch.cat takes a 1-D [0] tensor next to any other (Emformer's
         * empty memory), and exports it so, which the ranks would refuse */
        size_t kept = 0, nonempty = 0;
        for (size_t k = 0; k < nin; k++)
            nonempty += ins[k] >= 0 && imp_count(c->t[ins[k]].ndim, c->t[ins[k]].dims) != 0;
        for (size_t k = 0; k < nin && nonempty; k++)
            if (ins[k] < 0 || imp_count(c->t[ins[k]].ndim, c->t[ins[k]].dims) != 0)
                ins[kept++] = ins[k];
        if (nonempty)
            nin = kept;
    }
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) {
        if (nin < 1 || ins[0] < 0)
            return occ_fail(e, OCC_ERR_FORMAT, "missing input");
        if (nin >= 3 && ins[2] >= 0) {
            const imp_val *tm = &c->v[ins[2]];
            if (!tm->is_const)
                return occ_fail(e, OCC_ERR_UNSUPPORTED, "training_mode must be a constant");
            /* torch exports F.dropout(p=0.0, training=True) (swin_t's attention) as
             * training_mode true with ratio 0: the identity, mask all true. */
            const imp_val *ra = nin >= 2 && ins[1] >= 0 ? &c->v[ins[1]] : NULL;
            int ratio0 = ra && ra->is_const && ra->c.count == 1 &&
                         (ra->c.type == CV_INT ? ra->c.i[0] == 0 : ra->c.f[0] == 0.0f);
            if (tm->c.count >= 1 && (tm->c.type == CV_INT ? tm->c.i[0] != 0 : tm->c.f[0] != 0) &&
                !ratio0)
                return occ_fail(e, OCC_ERR_UNSUPPORTED,
                                "training_mode is true with a ratio that is not a constant 0");
        }
        if ((s = imp_map_put(&c->names, n->output[0], ins[0], e)))
            return s;
        for (size_t k = 1; k < nout; k++) {
            if (!*n->output[k])
                continue;
            int32_t idx = imp_val_new(c, n->output[k]);
            if (idx < 0)
                return idx;
            /* Dropout's mask at inference: all true, a bool constant of the
             * input's shape (kept small; a larger one stays refused if read) */
            const occ_tensor *xt = &c->t[ins[0]];
            int64_t cnt = imp_count(xt->ndim, xt->dims);
            if (strcmp(op, "Dropout") || cnt <= 0 || cnt > (1 << 20)) {
                c->v[idx].undefined = 1;
                continue;
            }
            imp_cval cv;
            memset(&cv, 0, sizeof cv);
            cv.type = CV_INT;
            cv.dt = OCC_DTYPE_BOOL;
            cv.ndim = xt->ndim;
            memcpy(cv.dims, xt->dims, sizeof cv.dims);
            cv.count = cnt;
            if ((s = imp_cval_alloc(&cv, e)))
                return s;
            for (int64_t j = 0; j < cnt; j++)
                cv.i[j] = 1;
            imp_val_set_const(c, idx, &cv);
        }
        c->stats.removed++;
        return OCC_OK;
    }

    /* Constant folding. */
    int all_const = nin > 0, has_data_in = 0;
    for (size_t k = 0; k < nin; k++) {
        if (ins[k] < 0)
            continue;
        has_data_in = 1;
        if (!c->v[ins[k]].is_const)
            all_const = 0;
    }
    int shape_only = (!strcmp(op, "Shape") || !strcmp(op, "Size")) && nin == 1 && ins[0] >= 0;
    if ((all_const && has_data_in) || shape_only) {
        const imp_cval **cin = calloc(nin ? nin : 1, sizeof *cin);
        imp_cval *cout = calloc(nout, sizeof *cout);
        imp_cval shp;
        if (!cin || !cout) {
            free(cin);
            free(cout);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        for (size_t k = 0; k < nin; k++)
            cin[k] = ins[k] >= 0 ? &c->v[ins[k]].c : NULL;
        if (shape_only && !c->v[ins[0]].is_const) {
            memset(&shp, 0, sizeof shp);
            shp.ndim = c->t[ins[0]].ndim;
            memcpy(shp.dims, c->t[ins[0]].dims, sizeof shp.dims);
            cin[0] = &shp;
        }
        int r = imp_fold(n, c->opset, cin, (uint32_t)nin, cout, (uint32_t)nout, e);
        free(cin);
        if (r == IMP_FOLD_DONE) {
            for (size_t k = 0; k < nout; k++) {
                if (!*n->output[k]) {
                    imp_cval_clear(&cout[k]);
                    continue;
                }
                int32_t idx = imp_val_new(c, n->output[k]);
                if (idx < 0) {
                    for (size_t j = k; j < nout; j++)
                        imp_cval_clear(&cout[j]);
                    free(cout);
                    return idx;
                }
                imp_val_set_const(c, idx, &cout[k]);
            }
            free(cout);
            c->stats.folded++;
            return OCC_OK;
        }
        for (size_t k = 0; k < nout; k++)
            imp_cval_clear(&cout[k]);
        free(cout);
        if (r < 0)
            return r;
    }

    /* A runtime node. Range's and ConstantOfShape's inputs set the output
     * shape: not folded means not known at pack time. */
    if (!strcmp(op, "Range") || !strcmp(op, "ConstantOfShape")) {
        for (size_t k = 0; k < nin; k++) {
            const char *gi = ins[k] >= 0 && !c->v[ins[k]].is_const ? imp_steering_input(c, ins[k]) : NULL;
            if (gi)
                return occ_fail(e, OCC_ERR_UNSUPPORTED, "input %zu ('%s') sets the output shape "
                                "but depends on graph input '%s'; fix it at pack time with "
                                "--bind %s=FILE", k, n->input[k], gi, gi);
        }
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "its inputs set the output shape and are not "
                        "known at pack time (static shapes are needed to plan memory)");
    }
    /* CastLike(x, like) is Cast(x, to = like's type): like's data is never read */
    uint32_t castlike_to = 0;
    if (!strcmp(op, "CastLike") && nin == 2 && ins[0] >= 0 && ins[1] >= 0) {
        castlike_to = occ_tensor_dtype(&c->t[ins[1]]);
        op = "Cast";
        nin = 1;
    }
    if (!occ_op_supported(op)) {
        /* say why when no kernel could ever exist under static shapes */
        static const char *const dyn_flow[] = {"Loop", "Scan", NULL};
        static const char *const dyn_shape[] = {"NonZero", "Unique", "NonMaxSuppression",
                                                "Compress", NULL};
        for (int k = 0; dyn_flow[k]; k++)
            if (!strcmp(op, dyn_flow[k]))
                return occ_fail(e, OCC_ERR_UNSUPPORTED, "control flow decided at run time is not "
                                "supported (static shapes are needed to plan memory; unroll it "
                                "before export)");
        for (int k = 0; dyn_shape[k]; k++)
            if (!strcmp(op, dyn_shape[k]))
                return occ_fail(e, OCC_ERR_UNSUPPORTED, "its output shape depends on the data, "
                                "which is not supported (static shapes are needed to plan memory)");
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "operator not supported (no kernel)");
    }
    if (nin > OCC_MAX_NODE_IO || nout > OCC_MAX_NODE_IO)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "more than %d inputs or outputs", OCC_MAX_NODE_IO);
    occ_attr *attrs = imp_alloc(c->A, (n->n_attribute + 8) * sizeof *attrs);
    int32_t *nins = imp_alloc(c->A, (nin + 3) * sizeof *nins);
    int32_t *nouts = imp_alloc(c->A, nout * sizeof *nouts);
    if (!attrs || !nins || !nouts)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    uint32_t na = 0, ni = 0;
    for (size_t k = 0; k < n->n_attribute; k++) {
        const Onnx__AttributeProto *a = n->attribute[k];
        if (a->name && rule_replaces_attr(op, c->opset, a->name, ins, nin))
            continue;
        for (uint32_t j = 0; j < na; j++)
            if (a->name && !strcmp(attrs[j].name, a->name))
                return occ_fail(e, OCC_ERR_FORMAT, "attribute '%s' given twice", a->name);
        if (a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS && a->name &&
            !strcmp(a->name, "activations") &&
            (!strcmp(op, "RNN") || !strcmp(op, "GRU") || !strcmp(op, "LSTM"))) {
            int skip;
            if ((s = rnn_activations(c, op, a, &attrs[na], &skip)))
                return s;
            na += !skip;
            continue;
        }
        if ((s = copy_onnx_attr(c, a, &attrs[na])))
            return s;
        na++;
    }
    if (castlike_to)
        attrs[na++] = (occ_attr){.name = "to", .type = OCC_ATTR_INT, .count = 1, .i = castlike_to};
    if (c->opset < 13 && (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax") ||
                          !strcmp(op, "Hardmax"))) {
        /* before opset 13 these flatten the input to 2-D at "axis" (default
         * 1): said explicitly, so the manifest does not depend on the opset */
        int has_axis = 0;
        for (uint32_t j = 0; j < na; j++)
            has_axis |= !strcmp(attrs[j].name, "axis");
        if (!has_axis)
            attrs[na++] = (occ_attr){.name = "axis", .type = OCC_ATTR_INT, .count = 1, .i = 1};
        attrs[na++] = (occ_attr){.name = "coerce_2d", .type = OCC_ATTR_INT, .count = 1, .i = 1};
    }
    for (size_t k = 0; k < nin; k++) {
        const conv_rule *r = find_rule(op, c->opset, (int)k); /* input 0: the windows' size */
        if (r) {
            if (ins[k] < 0) {
                nins[ni++] = -1;
                continue;
            }
            const imp_val *v = &c->v[ins[k]];
            if (!v->is_const) {
                if (r->kind == K_IGNORE || r->kind == K_FLOATS_OPT) {
                    nins[ni++] = -1;
                    continue;
                }
                const char *gi = imp_steering_input(c, ins[k]);
                if (gi)
                    return occ_fail(e, OCC_ERR_UNSUPPORTED,
                                    "input %zu ('%s', for '%s') steers output shapes but depends on "
                                    "graph input '%s'; fix it at pack time with --bind %s=FILE",
                                    k, n->input[k], r->attr, gi, gi);
                return occ_fail(e, OCC_ERR_UNSUPPORTED,
                                "input %zu ('%s', for '%s') must be a constant known at pack time",
                                k, n->input[k], r->attr);
            }
            int skip;
            if ((s = operand_to_attr(c, r, v, &attrs[na], &skip)))
                return occ_error_prefix(e, "input '%s'", n->input[k]);
            if (!skip)
                na++;
            /* the slot stays, empty, so later inputs keep their positions
             * (LSTM's initial_h after sequence_lens); trailing ones go */
            nins[ni++] = -1;
            continue;
        }
        /* a typed constant (int64 Gather indices, a bool mask) stays a weight
         * of its type; the registry refuses it where the operator does not
         * take that type */
        nins[ni++] = ins[k];
    }
    while (ni && nins[ni - 1] < 0)
        ni--;
    /* (all inputs constant but not foldable here, e.g. Not or LessOrEqual:
     * the kernel computes it from its weights at run time) */
    for (size_t k = 0; k < nout; k++) {
        const char *o = n->output[k];
        if (!*o) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s:%zu", name, k);
            o = imp_unique_name(c, buf);
            if (!o)
                return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        int32_t idx = imp_val_new(c, o);
        if (idx < 0)
            return idx;
        c->v[idx].producer = (int32_t)c->nn;
        nouts[k] = idx;
    }
    occ_node *node = NULL;
    if ((s = imp_add_node(c, &node)))
        return s;
    node->name = name;
    node->op = op;
    node->n_inputs = ni;
    node->inputs = nins;
    node->n_outputs = (uint32_t)nout;
    node->outputs = nouts;
    node->n_attrs = na;
    node->attrs = attrs;
    occ_model m = {0};
    m.tensors = c->t;
    m.n_tensors = c->nv;
    m.nodes = c->nodes;
    m.n_nodes = c->nn;
    s = occ_op_infer(&m, node, e);
    if (s)
        return s;
    for (size_t k = 0; k < nout; k++) {
        occ_tensor *t = &c->t[nouts[k]];
        int64_t cnt = imp_count(t->ndim, t->dims);
        if (cnt < 0)
            return occ_fail(e, OCC_ERR_SHAPE, "output '%s' has an absurd shape", t->name);
        t->size = occ_dtype_size(occ_tensor_dtype(t)) * (uint64_t)cnt;
    }
    return OCC_OK;
}
