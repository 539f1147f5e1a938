/* How long a sleeping thread takes to run again after a futex wake, by the
 * pause before it (docs/benchmarks.md, "Paired runs"): on a shared VM the
 * woken thread's vCPU may itself have to be scheduled by the host. Not built
 * by CMake:
 *   cc -O2 bench/wake.c -o build/wake -lpthread && build/wake 30   (pause ms) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { SAMPLES = 41 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go;
static _Atomic double woke;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static void *sleeper(void *arg)
{
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!go)
            pthread_cond_wait(&cv, &mu);
        go = 0;
        pthread_mutex_unlock(&mu);
        woke = now_ms();
    }
    return arg;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int pause_ms = argc > 1 ? atoi(argv[1]) : 30;
    pthread_t t;
    double s[SAMPLES];
    if (pthread_create(&t, NULL, sleeper, NULL))
        return 1;
    for (int i = 0; i < SAMPLES; i++) {
        usleep((useconds_t)pause_ms * 1000u);
        woke = 0;
        double t0 = now_ms();
        pthread_mutex_lock(&mu);
        go = 1;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        while (woke == 0) /* the waker spins: its own core stays awake */
            ;
        s[i] = woke - t0;
    }
    qsort(s, SAMPLES, sizeof *s, cmp);
    printf("pause %d ms: wake median %.3f ms p10 %.3f p90 %.3f max %.3f\n", pause_ms,
           s[SAMPLES / 2], s[SAMPLES / 10], s[SAMPLES * 9 / 10], s[SAMPLES - 1]);
    return 0;
}
