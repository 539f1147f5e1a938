/* The executor's private types, shared by the files of the executor
 * (exec.c: validation, enclave memory, create, run, free; steps.c;
 * weights.c; memplan.c; stream.c: the segment MAC context and the
 * streaming ring). Not for tools: they use engine_internal.h. */
#ifndef OCC_EXEC_INT_H
#define OCC_EXEC_INT_H

#include <dnnl.h>
#include <pthread.h>
#include <stdint.h>

#include "engine/engine_internal.h"
#include "engine/planner.h"
#include "ops/ops_internal.h"
#include "occ/boundary.h"
#include "occ/weights_crypt.h"
#include <openssl/evp.h>

typedef struct trt {
    int blocked;            /* storage layout is md (else plain) */
    dnnl_memory_desc_t md;
    uint64_t size;          /* storage bytes */
    int32_t alias;          /* shares the storage of this tensor; -1 none */
    uint64_t alias_off;     /* ... from this byte of it (a Concat's input, steps.c) */
    int virt;               /* fused away: never stored */
    int live;               /* produced or a graph input */
    int32_t buf;            /* index in reqs, -1 none */
    int need_plain;         /* blocked and read plain by someone */
    int32_t plain_buf;
    dnnl_primitive_t to_plain;
    dnnl_memory_t from, to;
    int32_t producer_node;  /* -1 for graph inputs and weights */
    uint32_t n_cons;        /* consuming node slots + graph output uses */
    int32_t first_cons;     /* first consuming node */
    int is_output;
} trt;

/* K_MATMUL: a MatMul with a 2-D weight B split by rows of B (pieces of K,
 * partial sums added); K_GATHER: a Gather of a weight table by run-time ids,
 * split by table rows and selected obliviously (occ_gather_select_rows) */
enum { K_NONE = 0, K_CONV, K_GEMM, K_GENERIC, K_MATMUL, K_GATHER };

typedef struct step {
    uint32_t node;
    const occ_op_vtable *v;
    void *state;             /* K_GEMM / K_GENERIC / K_NONE: the op's state */
    int kind;
    uint32_t n_parts;        /* weight segments of this step (K_CONV: part states) */
    void **parts;            /* K_CONV: one conv part per segment */
    int64_t *cols;           /* K_GEMM: column boundaries, n_parts + 1; K_MATMUL: rows
                              * of B; K_GATHER: rows of the table */
    uint64_t row_bytes;      /* K_MATMUL / K_GATHER: bytes of one row of the weight */
    uint32_t first_seg;
    uint64_t wlo, whi;       /* data-section range of the node's weights */
    uint64_t work;           /* working buffer (scratchpad) bytes, max over parts */
    int gemm_c_full;         /* K_GEMM: C is copied whole (scalar), not sliced */
    uint64_t gemm_batch;     /* K_GEMM after split_k: bytes of one image's A (0 = per
                              * image); A and Y of all images are gathered into the
                              * working buffer and run as one sgemm per segment */
    uint8_t in_plain[OCC_MAX_NODE_IO];
    int32_t out;             /* output tensor after fusion */
    int32_t sum_src;         /* residual for the sum post-op; -1 none */
    int sum_alias;           /* out shares sum_src's storage: no copy */
    int fused;               /* K_GEMM, every part streamed: run by fcfuse.c, not the ring */
    int elided;              /* a Concat whose inputs were written in place: nothing to run */
    /* what each context needs to prepare this step's kernel again (context.c)
     * without reading a weight from the host: the fused post-ops, Winograd
     * off, a Conv's part ranges and the blob size and kernel each part had
     * at compile (a context's part must match, its blobs are shared) */
    int n_post;
    occ_post post[OCC_MAX_POST];
    int no_winograd;
    struct conv_sig *sig;    /* K_CONV: n_parts entries */
    uint8_t *wprep;          /* K_NONE ops that copy their weights at prepare: the verified
                              * weight bytes [wlo, whi), kept (shared, read-only) */
} step;

typedef struct conv_sig {
    int64_t o0, o1;          /* o1 = 0: the whole layer */
    uint64_t blob_size;
    char impl[64];
} conv_sig;

/* A strip chain (strips.c): steps [s0, s1], each row-local (a Conv with its
 * fused activation, a pool) and each reading the one before, run band by
 * band of `rows` output rows of s1 (the last band may be shorter): only
 * s0's input and s1's output are whole buffers; every tensor between exists
 * one band at a time in the chain's working buffer (two band buffers used in
 * turn, then the largest band kernel's scratchpad), an arena buffer alive
 * over the chain's steps. The bands depend on shapes and the budget only. */
typedef struct strip_chain {
    uint32_t s0, s1;
    int64_t rows;
    uint64_t buf_size;       /* each band buffer */
    uint64_t scratch;        /* the largest band kernel's scratchpad */
    uint64_t work;           /* 2 * buf_size + scratch */
} strip_chain;

/* A weight segment: the unit of residency and streaming. Its plaintext is
 * kernel-ready bytes (a conv part's reordered weights + bias, a Gemm's rows
 * of B + C slice, or an op's raw weight bytes). */
typedef struct seg {
    uint32_t step, part;
    uint64_t size;
    uint8_t *res;            /* resident: enclave copy */
    uint64_t ct_off;         /* streamed: offset of the ciphertext in the stash */
    uint8_t tag[16];
    int streamed;
    int fused;               /* streamed by its step's compute threads (fcfuse.c), not
                              * through the ring */
} seg;

/* Counting allocator over the provider: every enclave byte goes through it. */
typedef struct emem {
    occ_mem_provider p;
    pthread_mutex_t mu;
    uint64_t cur, peak;
    occ_ops_allocator ops;
} emem;

/* The streaming ring shared by the loader threads and the compute thread. */
typedef struct ring {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t slots;
    uint8_t **slot;
    int64_t *ready;          /* per slot: position it holds, ready to use; -1 none */
    uint32_t n;              /* positions this run */
    uint32_t next;           /* next position a loader takes */
    uint32_t released;       /* positions the consumer is done with */
    int stop, failed;
    uint32_t fail_seg;
    uint32_t hooked;         /* positions whose on_chunk hook has run */
    uint32_t skip_from, skip; /* a run of fewer images than the batch: positions from
                                 skip_from on are those of the sequence + skip */
    struct occ_engine *eng;
    /* the engine's loader threads live as long as the engine (made at
     * create, not per run): between runs they sleep on cv with stop set */
    pthread_t *th;
    struct segmac **th_ctx;  /* each loader's MAC/AEAD context */
    uint32_t n_th;
    uint32_t working;        /* loaders inside ring_load (the run's end waits for 0) */
    int quit;                /* engine free: the loaders exit */
} ring;

/* A compiled model (compiled.c) and a context (context.c) are both this
 * struct: the compiled model is an engine made up to its loaded weights
 * whose kernels are then released; a context is a copy of it that shares
 * (never writes, never frees) the compiled model's read-only parts - steps'
 * metadata, tensors' layouts, plan, segments and resident weights, stash
 * and key - and owns its kernels (op states, oneDNN primitives and
 * streams), arena, scratch, ring, loaders and MAC contexts. */
struct occ_engine {
    const occ_model *m;
    const struct occ_engine *shared; /* a context: the compiled model's engine; NULL: compiled */
    struct occ_compiled *own;  /* occ_engine_create: the compiled model this context owns */
    int threads;
    int loader_threads;
    occ_mode mode;
    uint64_t budget;
    uint32_t batch;
    void (*on_chunk)(void *ctx, uint32_t chunk);
    void *hook_ctx;
    emem mem;
    dnnl_engine_t deng;
    dnnl_stream_t stream;
    trt *t;
    step *steps;
    uint32_t n_steps;
    int32_t *node_step;      /* node -> step that runs it (fused: the Conv's) */
    occ_buf_req *reqs;
    uint32_t n_reqs;
    uint64_t *offsets;       /* per (image, req): arena offset */
    uint64_t *work_off;      /* occlumency: per iteration (see split_k), its step's working
                              * buffer's arena offset (alive during that iteration only);
                              * NULL = one shared buffer */
    uint32_t split_k;        /* batch > 1, occlumency: steps [0, split_k) run image by
                              * image, the rest for the whole batch; 0 = all batched */
    uint8_t *arena;
    uint64_t arena_size;
    uint8_t *scratch;        /* shared working buffer */
    uint64_t scratch_size;
    uint64_t weights_size;
    uint32_t n_fused, n_reorders, n_concats_elided;
    /* weights */
    seg *segs;
    uint32_t n_segs;
    uint64_t seg_max;        /* target segment size for partitioned layers */
    uint32_t wino_div;       /* Winograd only while its scratchpad <= budget / wino_div */
    uint32_t *streamed;      /* seg indices streamed, in order */
    uint32_t n_streamed;
    uint32_t n_streamed_img; /* split_k: positions per image at the start of streamed */
    uint8_t *stash;          /* untrusted ciphertext of streamed segments */
    uint64_t stash_size;
    uint8_t *key;            /* AES-256 key (derives the MAC keys; encrypted packs: the stash's
                              * AES-256-GCM key), enclave memory, wiped at free */
    int encrypted;           /* the pack's weights are encrypted: chunks are decrypted at load,
                              * the stash holds AES-256-GCM ciphertext (weights_crypt_int.h) */
    ring ring;
    struct segmac *help_ctx; /* the compute thread's, for loading while it waits */
    EVP_MAC *mac_alg;        /* Poly1305, fetched once */
    uint64_t window_slot;    /* bytes per ring slot */
    uint64_t fixed_bytes;    /* op-owned enclave memory (held outside the plan) */
    occ_plan plan;
    int planned;
    uint32_t n_layers;
    occ_plan_layer *layers;
    /* stats */
    uint64_t chunks_loaded, bytes_loaded, bytes_verified, integrity_failures, bytes_decrypted;
    int profiling;
    uint64_t *times;
    uint64_t stall_ns;       /* last run: compute waiting for streamed weights */
    struct occ_fcfuse *fuse; /* fused streamed FC: per-thread MAC contexts and buffers */
    uint64_t fuse_reserve;   /* enclave bytes the plan keeps aside for them */
    uint64_t wprep_bytes;    /* steps' kept prepare weights (step.wprep), enclave bytes */
    strip_chain *chains;     /* strip chains (strips.c; occlumency, batch 1 or before
                              * split_k), by s0; shared */
    uint32_t n_chains;
    struct strip_run *srun;  /* per chain: its band kernels (a context's own) */
    int32_t plan_bn;         /* the last failed plan's bottleneck step; -1 none */
    int strips_ok;           /* a failed plan may try strip chains (create's second pass) */
};

struct occ_compiled {
    occ_engine *e;           /* made up to its weights, kernels released */
};

#define GEMM_SEG_MAX (UINT64_C(1) << 20)

typedef struct vreader {
    occ_engine *eng;
    occ_read_fn read;
    void *ctx;
    uint8_t *cache;          /* one verified chunk, enclave memory */
    uint64_t cache_cap;
    int64_t cached;          /* chunk index in cache, -1 none */
    occ_wcrypt *wc;          /* encrypted pack: the chunk cipher (NULL: plain) */
} vreader;

/* ---- exec.c: enclave memory ---- */

void *occ_eng_emem_alloc(emem *m, uint64_t size, occ_error *e);
void occ_eng_emem_free(emem *m, void *p, uint64_t size);
uint64_t occ_eng_emem_round(const emem *m, uint64_t size);
uint8_t *occ_eng_untrusted_alloc(uint64_t size);

/* ---- exec.c: create and free ---- */

/* plan_only: 0 = an engine that runs, 1 = up to its plan, 2 = compiled
 * (weights loaded, no run memory; compiled.c releases its kernels) */
occ_status occ_eng_create(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                          void *read_ctx, int plan_only, occ_engine **out, occ_error *e);
void occ_eng_set_threads(const occ_engine *eng);
void occ_eng_free_kernels(occ_engine *eng);
uint64_t occ_eng_streamed_per_run(const occ_engine *eng);

/* ---- context.c ---- */

occ_status occ_eng_alloc_run_memory(occ_engine *eng, occ_error *e);
void occ_eng_free_run_memory(occ_engine *eng);

/* ---- steps.c ---- */

int32_t occ_eng_root_of(const occ_engine *eng, int32_t t);
occ_status occ_eng_build_steps(occ_engine *eng, vreader *vr, occ_error *e);

/* ---- weights.c ---- */

occ_status occ_eng_vread(vreader *r, uint64_t lo, uint64_t hi, uint8_t *dst, occ_error *e);
void occ_eng_node_weight_range(const occ_model *m, const occ_node *n, uint64_t *lo, uint64_t *hi);
occ_status occ_eng_make_segments(occ_engine *eng, occ_error *e);
uint64_t occ_eng_seg_plain_size(const occ_engine *eng, const seg *g);
occ_status occ_eng_load_weights(occ_engine *eng, vreader *vr, occ_error *e);

/* ---- memplan.c ---- */

occ_status occ_eng_collect_buffers(occ_engine *eng, occ_error *e);
uint32_t occ_eng_window_slots(const occ_engine *eng);
uint32_t occ_eng_iteration(const occ_engine *eng, uint32_t i, uint32_t b);
uint32_t occ_eng_step_of(uint32_t K, uint32_t n, uint32_t it);
uint32_t occ_eng_choose_split(const occ_engine *eng, int split_all);
occ_status occ_eng_make_plan(occ_engine *eng, occ_error *e);

void occ_eng_drop_plan(occ_engine *eng);
occ_status occ_eng_make_plan_once(occ_engine *eng, occ_error *e);
/* steps' working buffers as planned: bytes and lifetime [first, last] of
 * step i's, 0 for steps of a strip chain but its first (whose is the chain's) */
uint64_t occ_eng_step_work(const occ_engine *eng, uint32_t i, uint32_t *last);

/* ---- strips.c: strip chains ---- */

/* The chain whose first step is i, or NULL. */
const strip_chain *occ_eng_chain_at(const occ_engine *eng, uint32_t i);
int32_t occ_eng_chain_of(const occ_engine *eng, uint32_t i);
/* After a plan that failed (eng->plan_bn its bottleneck): forms or
 * lengthens strip chains and sizes their bands until a plan fits, or
 * says why none does. */
occ_status occ_eng_plan_strips(occ_engine *eng, occ_error *e);
/* A context's band kernels (after its steps' kernels), and their end. */
occ_status occ_eng_strips_prepare(occ_engine *eng, occ_error *e);
void occ_eng_strips_free(occ_engine *eng);
/* Runs chain ch: input whole at `in`, output whole at `out`, its working
 * buffer at `work`. */
occ_status occ_eng_strips_run(occ_engine *eng, const strip_chain *ch, const void *in, void *out,
                              uint8_t *work, occ_error *e);

/* ---- stream.c: segment MAC/AEAD context and the streaming ring ---- */

typedef struct segmac segmac;

segmac *occ_eng_segmac_new(const occ_engine *eng);
void occ_eng_segmac_free(segmac *c);
occ_status occ_eng_seal(occ_engine *eng, segmac *c, uint32_t i, uint8_t *pt,
                        uint64_t size, uint8_t *stash, uint8_t tag[16], occ_error *e);
occ_status occ_eng_loaders_start(occ_engine *eng, uint32_t n, occ_error *e);
void occ_eng_loaders_quit(occ_engine *eng);
void occ_eng_ring_begin(occ_engine *eng, uint32_t n, uint32_t skip_from, uint32_t skip);
const uint8_t *occ_eng_ring_get(occ_engine *eng, uint32_t pos, occ_error *e);
void occ_eng_ring_release(occ_engine *eng, uint32_t pos);
void occ_eng_ring_end(occ_engine *eng);

int occ_eng_seg_begin(const occ_engine *eng, segmac *c, uint32_t i, uint64_t size);
int occ_eng_seg_piece(segmac *c, uint8_t *dst, const uint8_t *src, uint64_t n);
int occ_eng_seg_end(segmac *c, const uint8_t tag[16]);

/* ---- fcfuse.c: fused streamed fully connected layers ---- */

int occ_eng_fuse_candidate(const occ_engine *eng, const step *s);
uint64_t occ_eng_fuse_reserve(const occ_engine *eng);
void occ_eng_fuse_mark(occ_engine *eng, int fuse, uint64_t reserve);
occ_status occ_eng_fuse_alloc(occ_engine *eng, occ_error *e);
void occ_eng_fuse_free(occ_engine *eng);
occ_status occ_eng_fuse_run_n(occ_engine *eng, const step *s, const float *const *a,
                              float *const *y, uint32_t n_img, int64_t rows_per, occ_error *e);

/* A name for messages (moved from exec.c: both files use it). */
static inline const char *nm(const char *s)
{
    return s ? s : "?";
}

#endif
