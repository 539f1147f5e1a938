/* How long a sleeping thread takes to run again after a futex wake, by the
 * pause before it (docs/benchmarks.md, "Paired runs"): on a shared VM the
 * woken thread's vCPU may itself have to be scheduled by the host. Not built
 * by CMake:
 *   cc -O2 bench/wake.c -o build/wake -lpthread && build/wake 30   (pause ms) */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <stdatomic.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec*1e-6;}
pthread_mutex_t mu=PTHREAD_MUTEX_INITIALIZER; pthread_cond_t cv=PTHREAD_COND_INITIALIZER;
int go=0; _Atomic double woke; 
void *w(void*a){ for(;;){ pthread_mutex_lock(&mu); while(!go) pthread_cond_wait(&cv,&mu); go=0; pthread_mutex_unlock(&mu); woke=now(); } return a;}
int main(int c,char**v){ int gap=atoi(v[1]); pthread_t t; pthread_create(&t,0,w,0); double s[41];
 for(int i=0;i<41;i++){ usleep(gap*1000); woke=0; double t0=now(); pthread_mutex_lock(&mu); go=1; pthread_cond_signal(&cv); pthread_mutex_unlock(&mu);
   volatile double x=0; while(woke==0) x+=1; s[i]=woke-t0; }
 // sort
 for(int i=0;i<41;i++)for(int j=i+1;j<41;j++)if(s[j]<s[i]){double q=s[i];s[i]=s[j];s[j]=q;}
 printf("gap %d ms: wake median %.3f ms p10 %.3f p90 %.3f max %.3f\n",gap,s[20],s[4],s[36],s[40]);}
