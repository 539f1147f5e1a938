/* A tiny test harness: CHECK records a failure and goes on; TEST_MAIN prints
 * "N passed, N failed" and exits non-zero on any failure. */
#ifndef OCC_TEST_H
#define OCC_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int occ_test_pass_count, occ_test_fail_count;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            occ_test_pass_count++;                                               \
        } else {                                                                 \
            occ_test_fail_count++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        if (cond) {                                                              \
            occ_test_pass_count++;                                               \
        } else {                                                                 \
            occ_test_fail_count++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

#define RUN(fn)                                                                  \
    do {                                                                         \
        fprintf(stderr, "-- %s\n", #fn);                                         \
        fn();                                                                    \
    } while (0)

#define TEST_DONE()                                                              \
    do {                                                                         \
        printf("%d passed, %d failed\n", occ_test_pass_count, occ_test_fail_count); \
        return occ_test_fail_count ? 1 : 0;                                      \
    } while (0)

#endif
