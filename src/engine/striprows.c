/* Strip arithmetic: see striprows.h. */
#include "engine/striprows.h"

void occ_rows_needed(const occ_rows_win *w, int64_t o0, int64_t o1, occ_rows *r)
{
    int64_t lo = o0 * w->s - w->pt;
    int64_t hi = (o1 - 1) * w->s - w->pt + (w->k - 1) * w->d + 1;
    r->pt = lo < 0 ? -lo : 0;
    r->pb = hi > w->in ? hi - w->in : 0;
    r->lo = lo < 0 ? 0 : lo > w->in ? w->in : lo;
    r->hi = hi > w->in ? w->in : hi < r->lo ? r->lo : hi;
}

void occ_rows_chain(const occ_rows_win *w, uint32_t n, int64_t o0, int64_t o1, occ_rows *r)
{
    for (uint32_t i = n; i-- > 0;) {
        occ_rows_needed(&w[i], o0, o1, &r[i]);
        o0 = r[i].lo;
        o1 = r[i].hi;
    }
}

uint32_t occ_rows_strips(const occ_rows_win *w, uint32_t n, int64_t rows, int64_t *max_rows)
{
    if (!n || rows < 1)
        return 0;
    const int64_t out = w[n - 1].out;
    int64_t mx[65] = {0};
    if (n > 64)
        return 0;
    uint32_t count = 0;
    for (int64_t o0 = 0; o0 < out; o0 += rows, count++) {
        int64_t o1 = o0 + rows < out ? o0 + rows : out;
        occ_rows r[64];
        occ_rows_chain(w, n, o0, o1, r);
        if (o1 - o0 > mx[n])
            mx[n] = o1 - o0;
        for (uint32_t i = 0; i < n; i++) {
            if (r[i].hi <= r[i].lo)
                return 0;
            if (r[i].hi - r[i].lo > mx[i])
                mx[i] = r[i].hi - r[i].lo;
        }
    }
    for (uint32_t i = 0; i <= n; i++)
        max_rows[i] = mx[i];
    return count;
}
