/* Moves the wall clock of a process (and of every process it starts) by SHIFT_CLOCK_OFFSET_S seconds, for
 * scripts/test_at.sh: the suite run as if it were another hour of the day. Monotonic clocks are left alone, so
 * timeouts and sleeps behave. Loaded with LD_PRELOAD; built by test_at.sh into the cache, never committed built. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset_s(void) {
    static int read = 0;
    static long long off = 0;
    if (!read) {
        const char *v = getenv("SHIFT_CLOCK_OFFSET_S");
        off = v ? atoll(v) : 0;
        read = 1;
    }
    return off;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *) = 0;
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += offset_s();
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    static int (*real)(struct timeval *, void *) = 0;
    if (!real) real = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
    int rc = real(tv, tz);
    if (rc == 0 && tv) tv->tv_sec += offset_s();
    return rc;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
